"""``python -m edge`` is the ``edge`` command."""

from edge.cli.main import cli

if __name__ == "__main__":
    cli()
