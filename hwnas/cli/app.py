"""The `hwnas` command. This file only wires the command groups; each lives in its own module."""

from __future__ import annotations

import os
import sys

import typer

from hwnas import __version__
from hwnas.cli import bench, device, export, fit, optimize, profile, search, space, train, workspace
from hwnas.errors import HwnasError

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware deployment of weight-sharing supernets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hwnas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Profile devices, learn latency predictors, search subnets, deploy validated models."""


for _module in (workspace, space, device, export, train, profile, fit, bench, search, optimize):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: known errors and OS errors (disk full, read-only) become one line on stderr and exit code 1
    (HWNAS_DEBUG=1: traceback)."""
    try:
        app(args=argv, standalone_mode=True)
    except HwnasError as exc:
        if os.environ.get("HWNAS_DEBUG"):
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # read-only workspace, full disk, permissions: one line that names the path
        if os.environ.get("HWNAS_DEBUG"):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}; free space or fix the permissions there, then re-run "
                   "(finished work is kept)", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
