"""The ``mirage`` command line (placeholder until the subcommands land)."""

import click


@click.group()
def main() -> None:
    """Mirage operator."""
