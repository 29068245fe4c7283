"""`cloudguard` commands for the gate area."""

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
