"""`hwnas init DIR`: make a workspace (devices/ with the local devices, profiles/, predictors/, runs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli._common import out


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(path: Annotated[Path, typer.Argument(help="Folder to make into a workspace.")],
         no_local: Annotated[bool, typer.Option("--no-local", help="Leave out this machine's local devices.")]
         = False) -> None:
    """Make a workspace with this machine's local devices (local-cpu, local-cpu-ort); existing files are kept."""
    from hwnas.workflows import init_workspace

    ws, added = init_workspace(path, local_devices=not no_local)
    out.print(f"workspace ready at {ws.root} (devices/, profiles/, predictors/, runs/)"
              + (f"; added devices {', '.join(added)}" if added else ""))
