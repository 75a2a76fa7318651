"""`hwnas export`: not wired yet (its issue is in progress)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
