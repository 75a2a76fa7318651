"""`hwnas init DIR`: make an empty workspace (devices/, profiles/, predictors/, runs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli._common import out
from hwnas.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(path: Annotated[Path, typer.Argument(help="Folder to make into a workspace.")]) -> None:
    """Make an empty workspace; existing files are left as they are."""
    ws = Workspace.init(path)
    out.print(f"workspace ready at {ws.root} (devices/, profiles/, predictors/, runs/)")
