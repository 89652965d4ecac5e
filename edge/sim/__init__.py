"""Simulated devices for development and tests: real protocols over real (pseudo) links."""
