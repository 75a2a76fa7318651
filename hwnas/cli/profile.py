"""`hwnas profile DEVICE...`: calls `hwnas.workflows.profile` (operators and whole subnets measured on a device,
resumable), or `profile_many` for several devices at once (in-process, or on Ray with --ray / --ray-address),
and prints what each profile holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli._common import (
    JsonOpt,
    RayAddressOpt,
    RayOpt,
    SpaceOpt,
    WorkspaceOpt,
    ints,
    out,
    plain,
    print_json,
    progress_display,
    read_json_arg,
)

DevicesArg = Annotated[list[str], typer.Argument(help="Device name(s) (devices/<name>.toml in the workspace); "
                                                     "several are profiled at once.")]
INCOMPLETE_EXIT = 3  # the profile was written, but some operators failed: scripts can tell, a re-run retries them


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def _archs_arg(arg: str | None) -> list | None:
    if arg is None:
        return None
    data = read_json_arg(arg, "archs")
    return data if isinstance(data, list) else [data]


def profile(
    devices: DevicesArg,
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
    fresh_session: Annotated[bool | None, typer.Option(
        "--fresh-session/--one-session", help="Load each model anew for every round (its memory placement is "
        "then averaged too; default: the device's setting, one session).")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Operators exported and measured per batch.")] = 32,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel export processes.")] = 2,
    export_csv: Annotated[Path | None, typer.Option(help="Only write the device's measurement log as CSV.")] = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Profile devices: every operator of a space, plus whole subnets; resumes where a previous run stopped.
    Several devices are profiled at once, each in its own thread (with --ray or --ray-address: each served by a
    Ray actor)."""
    from hwnas.distributed import RaySettings
    from hwnas.errors import ProfilingError
    from hwnas.predictors.fitting import describe_drift, describe_noise
    from hwnas.workflows import export_measurements
    from hwnas.workflows import profile as run
    from hwnas.workflows.profile import FarmProfilingError, profile_many

    devices = list(dict.fromkeys(devices))
    if export_csv is not None:
        if len(devices) > 1:
            raise ProfilingError("--export-csv writes one device's measurements; name one device")
        count = export_measurements(devices[0], export_csv, workspace=ws)
        out.print(f"wrote {count} measurements to {export_csv}")
        return
    settings = RaySettings.from_options(ray=ray, ray_address=ray_address)
    options = dict(supernet=supernet, workspace=ws, resolutions=ints(resolutions, "--resolutions"),
                   precision=precision, calibration=calibration, reference=reference, operators=operators,
                   archs=_archs_arg(archs), extra_archs=_archs_arg(measure_archs), runs=runs, warmup=warmup,
                   rounds=rounds, fresh_session=fresh_session, chunk_size=chunk_size, jobs=jobs)
    failed: FarmProfilingError | None = None
    with progress_display() as progress:
        if len(devices) == 1 and not settings.enabled:
            results = [run(devices[0], space_name, progress=progress, **options)]
        else:
            try:
                results = profile_many(devices, space_name, ray=settings, progress=progress, **options)
            except FarmProfilingError as exc:
                results, failed = exc.results, exc
    if as_json:
        docs = [{"profile": str(r.path), "device": r.device, "operators": r.operators, "archs": r.archs,
                 "missing_operators": r.missing_operators, "timing": r.timing, "session": r.session}
                for r in results]
        if len(devices) > 1:
            print_json(docs)  # the devices that failed are named in the error line
        elif docs:
            print_json(docs[0])
    else:
        for result in results:
            timing = result.timing
            named = f"{result.device}: " if len(devices) > 1 else ""
            out.print(f"{named}wrote {result.path}: {result.operators} operators, {result.archs} whole subnets "
                      f"(export {timing.get('export_s', 0):.0f} s, device {timing.get('device_s', 0):.0f} s, "
                      f"wall {timing.get('wall_s', 0):.0f} s this run)")
            if result.session:
                noise = describe_noise(result.session)
                if result.session.get("drifted"):
                    verdict = "; `hwnas fit` will warn: re-profile on a quiet device"
                elif noise:
                    verdict = f", steady, but {noise}; `hwnas fit` will warn: re-profile on a quiet device"
                else:
                    verdict = ", steady"
                out.print(f"{named}profiling session {result.session['id']}: {describe_drift(result.session)}"
                          + verdict)
    if failed is not None:
        raise failed
    incomplete = [r for r in results if r.missing_operators]
    for result in incomplete:
        named = f"{result.device}: " if len(devices) > 1 else ""
        plain(f"{named}incomplete: {len(result.missing_operators)} operators failed (listed in {result.path}); "
              f"re-run the same command to retry them (exit code {INCOMPLETE_EXIT})")
    if incomplete:
        raise typer.Exit(INCOMPLETE_EXIT)
