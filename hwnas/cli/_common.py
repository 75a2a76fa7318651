"""Options and helpers shared by the command modules (defined once)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hwnas.errors import HwnasError
from hwnas.workspace import Workspace

console = Console(stderr=True)
out = Console()

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: $HWNAS_WORKSPACE or the current folder)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def workspace(path: Path | None) -> Workspace:
    return Workspace.find(path)


def read_json_arg(arg: str, what: str = "arch") -> Any:
    """An argument that is a JSON file path, inline JSON, or '-' for standard input."""
    if arg == "-":
        text = sys.stdin.read()
        source = "standard input"
    elif arg.lstrip().startswith(("{", "[")):
        text, source = arg, "the argument"
    else:
        path = Path(arg)
        if not path.exists():
            return arg  # not a file: maybe an arch key; the space decides
        if path.is_dir():
            raise HwnasError(f"{path} is a folder; pass a JSON file holding the {what}")
        text, source = path.read_text(encoding="utf-8", errors="replace"), str(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HwnasError(
            f"{source} is not valid JSON ({exc.msg}, line {exc.lineno}); pass the {what} as JSON"
        ) from None
