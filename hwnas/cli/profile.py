"""`hwnas profile DEVICE`: calls `hwnas.workflows.profile` (operators and whole subnets measured on a device,
resumable) and prints what the profile holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli._common import (
    DeviceArg,
    JsonOpt,
    SpaceOpt,
    WorkspaceOpt,
    ints,
    out,
    plain,
    print_json,
    progress_display,
    read_json_arg,
)

INCOMPLETE_EXIT = 3  # the profile was written, but some operators failed: scripts can tell, a re-run retries them


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def _archs_arg(arg: str | None) -> list | None:
    if arg is None:
        return None
    data = read_json_arg(arg, "archs")
    return data if isinstance(data, list) else [data]


def profile(
    device: DeviceArg,
    space_name: SpaceOpt = None,
    supernet: Annotated[Path | None, typer.Option("--supernet", help="Profile this checkpoint's own space (its "
                                                  "widths, resolutions and classes).")] = None,
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
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Profile a device: every operator of a space, plus whole subnets; resumes where a previous run stopped."""
    from hwnas.workflows import export_measurements
    from hwnas.workflows import profile as run

    if export_csv is not None:
        count = export_measurements(device, export_csv, workspace=ws)
        out.print(f"wrote {count} measurements to {export_csv}")
        return
    with progress_display() as progress:
        result = run(device, space_name, supernet=supernet, workspace=ws,
                     resolutions=ints(resolutions, "--resolutions"),
                     precision=precision, calibration=calibration, reference=reference, operators=operators,
                     archs=_archs_arg(archs), extra_archs=_archs_arg(measure_archs), runs=runs, warmup=warmup,
                     rounds=rounds, chunk_size=chunk_size, jobs=jobs, progress=progress)
    if as_json:
        print_json({"profile": str(result.path), "device": device, "operators": result.operators,
                    "archs": result.archs, "missing_operators": result.missing_operators, "timing": result.timing})
        return
    timing = result.timing
    out.print(f"wrote {result.path}: {result.operators} operators, {result.archs} whole subnets "
              f"(export {timing.get('export_s', 0):.0f} s, device {timing.get('device_s', 0):.0f} s, "
              f"wall {timing.get('wall_s', 0):.0f} s this run)")
    if result.missing_operators:
        plain(f"incomplete: {len(result.missing_operators)} operators failed (listed in {result.path}); re-run the "
              f"same command to retry them (exit code {INCOMPLETE_EXIT})")
        raise typer.Exit(INCOMPLETE_EXIT)
