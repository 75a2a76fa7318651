"""`hwnas profile DEVICE`: measure a space's operators and reference/calibration subnets on a device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hwnas.cli._common import WorkspaceOpt, console, out, read_json_arg, workspace
from hwnas.errors import ProfilingError


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def _ints(text: str | None, what: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ProfilingError(f"{what} must be comma-separated integers like 160,192,224; got {text!r}") from None


def _archs_arg(arg: str | None) -> list | None:
    if arg is None:
        return None
    data = read_json_arg(arg, "archs")
    return data if isinstance(data, list) else [data]


def profile(
    device: Annotated[str, typer.Argument(help="Device name (devices/<name>.toml).")],
    space_name: Annotated[str, typer.Option("--space", help="Search space to profile.")] = "ofa-mbv3",
    resolutions: Annotated[str | None, typer.Option(help="Comma-separated input resolutions (default: all).")] = None,
    precision: Annotated[str, typer.Option(help="fp32 or int8.")] = "fp32",
    calibration: Annotated[int, typer.Option(min=0, help="Random whole subnets to measure.")] = 50,
    reference: Annotated[int, typer.Option(min=0, help="Fixed reference subnets to measure (20 is the standard "
                                                       "set, the same on every device; 0: none).")] = 20,
    operators: Annotated[bool, typer.Option("--operators/--no-operators", help="Measure operators (--no-operators: "
                                            "only whole subnets, e.g. the reference set for few-shot).")] = True,
    archs: Annotated[str | None, typer.Option(help="Only the operators of these archs (JSON file or inline).")] = None,
    measure_archs: Annotated[str | None, typer.Option(help="Also measure these archs whole (JSON file).")] = None,
    runs: Annotated[int | None, typer.Option(min=1, help="Timed runs per model (device default if unset).")] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="Warm-up runs per model.")] = None,
    rounds: Annotated[int | None, typer.Option(min=1, help="Interleaved rounds over each batch.")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Operators exported and measured per batch.")] = 32,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel export processes.")] = 2,
    export_csv: Annotated[Path | None, typer.Option(help="Only write the device's measurement log as CSV.")] = None,
    ws: WorkspaceOpt = None,
) -> None:
    """Profile a device: every operator of a space, plus whole subnets; resumes where a previous run stopped."""
    from hwnas import space as spaces
    from hwnas.devices import open_device
    from hwnas.profiling import MeasurementStore, load_profile, profile_device

    wsp = workspace(ws)
    if export_csv is not None:
        store = MeasurementStore.for_device(wsp, device)
        if not store.path.exists():
            raise ProfilingError(f"device {device} has no measurements yet ({store.path}); run `hwnas profile` first")
        store.export_csv(export_csv)
        out.print(f"wrote {len(store.records())} measurements to {export_csv}")
        return
    sp = spaces.create(space_name)
    with open_device(device, wsp) as dev:
        settings = dev.config.settings(runs=runs, warmup=warmup, rounds=rounds)
        columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            tasks: dict[str, int] = {}

            def on_progress(event) -> None:
                if event.stage not in tasks:
                    tasks[event.stage] = bar.add_task(event.stage, total=event.total, completed=event.skipped)
                    if event.skipped:  # resumed work is not part of the rate (keeps the ETA honest)
                        bar.reset(tasks[event.stage], total=event.total, completed=event.skipped)
                bar.update(tasks[event.stage], completed=event.done, total=event.total)

            path = profile_device(dev, sp, wsp, settings=settings, resolutions=_ints(resolutions, "--resolutions"),
                                  precision=precision, calibration=calibration, reference=reference,
                                  ops=None if operators else [], archs=_archs_arg(archs),
                                  extra_archs=_archs_arg(measure_archs), chunk_size=chunk_size, jobs=jobs,
                                  progress=on_progress)
    data = load_profile(path)
    timing = data.get("timing", {})
    n_archs = sum(len(data.get(r) or []) for r in ("reference", "calibration", "extra"))
    out.print(f"wrote {path}: {len(data['operators'])} operators, {n_archs} whole subnets "
              f"(export {timing.get('export_s', 0):.0f} s, device {timing.get('device_s', 0):.0f} s, "
              f"wall {timing.get('wall_s', 0):.0f} s this run)")
    if data["missing_operators"]:
        out.print(f"[yellow]{len(data['missing_operators'])} operators failed; re-run to retry them[/yellow]")
