"""Options and helpers shared by the command modules (defined once): the shared options, reading a JSON
argument, and progress display for the library's progress events."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hwnas.errors import HwnasError
from hwnas.progress import ProgressEvent, ProgressFn
from hwnas.workspace import Workspace

console = Console(stderr=True)
out = Console()

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: $HWNAS_WORKSPACE or the current folder)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Random seed (0 to 2^32-1).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DeviceArg = Annotated[str, typer.Argument(help="Device name (devices/<name>.toml in the workspace).")]
SpaceOpt = Annotated[str | None, typer.Option("--space", help="Search space name (see `hwnas spaces`); default: "
                                                                "the supernet's, else the device's only one, "
                                                                "else ofa-mbv3.")]
SupernetOpt = Annotated[Path | None, typer.Option("--supernet", help="Supernet checkpoint.")]
RuntimeOpt = Annotated[str | None, typer.Option("--runtime", help="Runtime (default: the device's only one).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="fp32 or int8 profile.")]
BudgetCoverageOpt = Annotated[float, typer.Option("--budget-coverage", min=0.0, max=0.999, help="Hold latency "
                                                  "budgets on the upper end of the predictor's interval of this "
                                                  "coverage (0: on the point prediction).")]

RayOpt = Annotated[bool, typer.Option("--ray", help="Run on a Ray started on this machine for the length of the "
                                      "command (needs Ray: `pip install 'hwnas\\[ray]'`).")]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", metavar="ADDRESS",
                                                   help="Run on the Ray cluster at ADDRESS (HOST:PORT, "
                                                        "ray://HOST:PORT or auto). Neither option: in-process.")]


def ray_settings(ray: bool, ray_address: str | None) -> Any:
    """The `hwnas.distributed.RaySettings` of --ray/--ray-address (None: in-process)."""
    from hwnas.distributed import RaySettings

    settings = RaySettings.from_options(ray=ray, ray_address=ray_address)
    return settings if settings.enabled else None


LOG_EVERY_S = 10.0  # without a terminal, a progress line at most this often per stage (and at each stage's end)


def workspace(path: Path | None) -> Workspace:
    return Workspace.find(path)


def print_json(data: Any) -> None:
    """One JSON document on stdout (the --json output of every command)."""
    out.print_json(json.dumps(data))


def plain(text: str) -> None:
    """A line on stderr printed as it is: never wrapped (a command or path stays pasteable), no markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


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
    except RecursionError:
        raise HwnasError(f"{source} is nested too deeply to be an {what}; pass the {what} as JSON") from None


def ints(text: str | None, option: str) -> list[int] | None:
    """A comma-separated list of integers (`--resolutions 160,192,224`); None when not given."""
    if text is None:
        return None
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise HwnasError(f"{option} must be comma-separated integers like 3,5,7; got {text!r}") from None
    if not values:
        raise HwnasError(f"{option} needs at least one value")
    return values


@contextmanager
def progress_display(disable: bool = False) -> Iterator[ProgressFn]:
    """A `ProgressFn` that shows each stage: rich bars on a terminal (appearing with the first event, so an
    error found before any work prints on its own line), log lines otherwise (nohup, CI, `| tee`)."""
    if disable:
        yield lambda event: None
    elif console.is_terminal:
        with _Bars() as bars:
            yield bars.update
    else:
        yield _LogLines().update


class _Bars:
    """One rich bar per stage; resumed work (`skipped`) is not counted in the rate, so the ETA stays honest."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar.live.is_started:  # a bar never started would still print an empty line
            self.bar.stop()

    def update(self, event: ProgressEvent) -> None:
        if not self.bar.live.is_started:
            self.bar.start()
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.bar.add_task(event.stage, total=event.total, completed=event.skipped)
        self.bar.update(self.tasks[event.stage], completed=event.done, total=event.total)


class _LogLines:
    """`stage: done/total (pct) after N s`, at a stage's start, at most every LOG_EVERY_S, and at its end."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.finished: set[str] = set()

    def update(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        first = event.stage not in self.started
        self.started.setdefault(event.stage, now)
        complete = event.total > 0 and event.done >= event.total
        if event.stage in self.finished and complete:
            return
        if not (first or complete or now - self.last.get(event.stage, now) >= LOG_EVERY_S):
            return
        self.last[event.stage] = now
        if complete:
            self.finished.add(event.stage)
        pct = f" ({100 * event.done / event.total:.0f}%)" if event.total else ""
        plain(f"{event.stage}: {event.done}/{event.total}{pct} after {now - self.started[event.stage]:.0f} s")
