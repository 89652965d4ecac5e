"""Running in production: systemd notification, watchdog, metrics."""
