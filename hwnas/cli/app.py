"""The `hwnas` command. This file only wires the command groups; each lives in its own module."""

from __future__ import annotations

import os
import sys

import typer
from typer import Abort

try:  # typer bundles its own click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on the real click
    from click.exceptions import NoArgsIsHelpError, UsageError

from hwnas import __version__
from hwnas.cli import bench, device, export, fit, optimize, profile, search, space, supernet, train, workspace
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


for _module in (workspace, space, device, export, train, profile, fit, bench, search, optimize, supernet):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: known errors, usage errors and OS errors (disk full, read-only) become one line on stderr and
    exit code 1 (HWNAS_DEBUG=1: traceback); a command's own exit code (e.g. 3, an incomplete profile) passes."""
    try:
        code = app(args=argv, standalone_mode=False)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else "see `hwnas --help`")
        code = 0
    except UsageError as exc:  # an unknown option, a bad value: one line that names the help to read
        command = exc.ctx.command_path if exc.ctx is not None else "hwnas"
        _fail(f"{exc.format_message()} (see `{command} --help`)", exc)
    except HwnasError as exc:
        _fail(str(exc), exc)
    except OSError as exc:  # read-only workspace, full disk, permissions: one line that names the path
        where = f" ({exc.filename})" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}; free space or fix the permissions there, then re-run (finished work "
              "is kept)", exc)
    except (KeyboardInterrupt, Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, exc: BaseException) -> None:
    if os.environ.get("HWNAS_DEBUG"):
        raise exc
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
