"""`profile`: measure a space's operators and whole subnets on a workspace device into its profile (resumable:
a second call measures only what is missing); `export_measurements`: a device's measurement log as CSV."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.distributed.cluster import RaySettings
from hwnas.errors import ProfilingError
from hwnas.progress import ProgressFn
from hwnas.workflows._common import device_configs, resolve_workspace
from hwnas.workspace import Workspace

__all__ = ["ProfileResult", "FarmProfilingError", "profile", "profile_many", "export_measurements",
           "refuse_other_config", "profile_space"]


@dataclass
class ProfileResult:
    """A written profile: its path, what it holds, and what this call spent."""

    path: Path
    device: str
    operators: int
    archs: int
    missing_operators: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    session: dict[str, Any] | None = None  # the newest profiling session's summary (its drift; profiling.drift)


def profile_space(space: Any = None, supernet: str | Path | None = None) -> Any:
    """The space to profile: a checkpoint's own (its exact widths, resolutions and classes), checked against
    `space` when both are given; else the registered space `space` (default ofa-mbv3) or a SearchSpace."""
    from hwnas import space as spaces

    if supernet is None:
        return spaces.create(space or "ofa-mbv3") if isinstance(space, str) or space is None else space
    from hwnas.supernet import load_checkpoint

    path = Path(supernet)
    if not path.is_file():
        raise ProfilingError(f"supernet checkpoint {path} does not exist")
    found = load_checkpoint(path).space
    name = space if isinstance(space, str) or space is None else space.name
    if name is not None and name != found.name:
        raise ProfilingError(f"{path} is a supernet of space {found.name!r}, not {name!r}; leave out --space")
    return found


def profile(device: str, space: Any = None, *, supernet: str | Path | None = None,
            workspace: Workspace | str | Path | None = None,
            resolutions: Sequence[int] | None = None, precision: str = "fp32", calibration: int = 50,
            reference: bool | int = 20, operators: bool = True, archs: Sequence[Any] | None = None,
            extra_archs: Sequence[Any] | None = None, runs: int | None = None, warmup: int | None = None,
            rounds: int | None = None, fresh_session: bool | None = None, chunk_size: int = 32, jobs: int = 2,
            progress: ProgressFn | None = None) -> ProfileResult:
    """Profile the workspace device `device` on `space` (a name or a SearchSpace; default ofa-mbv3), or on the
    exact space of the checkpoint `supernet`: every operator (or those of `archs`; none with
    `operators=False`), plus `calibration` random and `reference` fixed whole subnets and `extra_archs`.
    `runs`, `warmup`, `rounds` and `fresh_session` (load each model anew every round) override the device's
    measurement settings."""
    from hwnas.devices import open_device

    ws = resolve_workspace(workspace)
    config = device_configs(ws, [device])[device]
    sp = profile_space(space, supernet)
    refuse_other_config(ws, device, sp, config.runtime, precision)
    job = _ProfileJob(ws, sp, dict(resolutions=resolutions, precision=precision, calibration=calibration,
                                   reference=reference, ops=None if operators else [], archs=archs,
                                   extra_archs=extra_archs, chunk_size=chunk_size, jobs=jobs),
                      dict(runs=runs, warmup=warmup, rounds=rounds, fresh_session=fresh_session))
    with open_device(device, ws) as dev:
        return job(device, dev, progress)


def profile_many(devices: Sequence[str], space: Any = None, *, ray: RaySettings | None = None,
                 supernet: str | Path | None = None, workspace: Workspace | str | Path | None = None,
                 resolutions: Sequence[int] | None = None, precision: str = "fp32", calibration: int = 50,
                 reference: bool | int = 20, operators: bool = True, archs: Sequence[Any] | None = None,
                 extra_archs: Sequence[Any] | None = None, runs: int | None = None, warmup: int | None = None,
                 rounds: int | None = None, fresh_session: bool | None = None, chunk_size: int = 32,
                 jobs: int = 2, progress: ProgressFn | None = None) -> list[ProfileResult]:
    """`profile` on several workspace devices at once (one driver thread per device), in-process or, with `ray`
    (see `RaySettings`), each device served by a Ray actor holding its connection. The models are exported
    once on this machine (shared by devices of one runtime) and every measurement goes into the workspace
    store here as it arrives: an interrupted or failed run resumes as `profile` does. One device failing does
    not stop the others: their profiles are written, then one ProfilingError names each failed device.
    Progress events come with the device's name before their stage ("pixel7: operators")."""
    from hwnas.distributed import ray_session
    from hwnas.distributed.farm import DeviceFarm

    ws = resolve_workspace(workspace)
    names = list(dict.fromkeys(devices))
    configs = device_configs(ws, names)
    sp = profile_space(space, supernet)
    for name in names:
        refuse_other_config(ws, name, sp, configs[name].runtime, precision)
    job = _ProfileJob(ws, sp, dict(resolutions=resolutions, precision=precision, calibration=calibration,
                                   reference=reference, ops=None if operators else [], archs=archs,
                                   extra_archs=extra_archs, chunk_size=chunk_size, jobs=jobs),
                      dict(runs=runs, warmup=warmup, rounds=rounds, fresh_session=fresh_session))
    with ray_session(ray) as ray_module:  # a cluster that cannot be reached is said before any export
        if len(names) > 1:
            job.export_ahead(sorted({configs[n].runtime for n in names}), progress)
        outcome = DeviceFarm(ws, ray_module).run(names, job, progress)
    if outcome.errors:
        raise FarmProfilingError(outcome.failure_message(
            "profiling", "what was measured is kept (the other devices' profiles are written): re-run the same "
                         "command to continue"), [outcome.results[n] for n in names if n in outcome.results])
    return [outcome.results[name] for name in names]


class FarmProfilingError(ProfilingError):
    """Some devices of a `profile_many` failed (the message names each); `results` holds the others' profiles."""

    def __init__(self, message: str, results: list[ProfileResult]):
        super().__init__(message)
        self.results = results


class _ProfileJob:
    """Profiling one open device with fixed options (the same for every device of a `profile_many`)."""

    def __init__(self, ws: Workspace, space: Any, options: dict[str, Any], overrides: dict[str, Any]):
        self.ws, self.space, self.options, self.overrides = ws, space, options, overrides

    def __call__(self, name: str, dev: Any, progress: ProgressFn | None) -> ProfileResult:
        from hwnas.profiling import MeasurementStore, load_profile, profile_device

        settings = dev.config.settings(**self.overrides)
        # this run's session is the one the store did not hold before (where it measured reference checks; an older
        # session's verdict is not this one's, and a device's clock cannot be trusted to tell them apart)
        before = {r.session for r in MeasurementStore.for_device(self.ws, name).records()}
        path = profile_device(dev, self.space, self.ws, settings=settings, progress=progress, **self.options)
        data = load_profile(path)
        n_archs = sum(len(data.get(r) or []) for r in ("reference", "calibration", "extra"))
        mine = [s for s in data.get("sessions") or [] if isinstance(s, dict) and s.get("id") not in before]
        return ProfileResult(path, name, len(data["operators"]), n_archs, list(data["missing_operators"]),
                             dict(data.get("timing") or {}), mine[-1] if mine else None)

    def export_ahead(self, runtimes: Sequence[str], progress: ProgressFn | None) -> None:
        """Export every model once before the devices start (their threads then find them in the cache instead
        of exporting the same models side by side). Best effort: a model that fails here is exported again, and
        recorded as failed, by the device that needs it."""
        from hwnas.errors import ExportError
        from hwnas.export import format_for_runtime
        from hwnas.profiling import export_profile_models

        formats: dict[str, str] = {}
        for runtime in runtimes:
            try:
                formats.setdefault(format_for_runtime(runtime), runtime)
            except ExportError:
                continue  # profile_device says why this runtime cannot be profiled
        options = {k: v for k, v in self.options.items() if k != "chunk_size"}
        for runtime in formats.values():
            try:
                export_profile_models(self.space, self.ws, runtime, progress=progress, **options)
            except ExportError:
                continue


def export_measurements(device: str, csv_path: str | Path, *,
                        workspace: Workspace | str | Path | None = None) -> int:
    """Write every measurement a workspace device has as CSV; returns how many."""
    from hwnas.profiling import MeasurementStore

    ws = resolve_workspace(workspace)
    store = MeasurementStore.for_device(ws, device)
    if not store.path.exists():
        raise ProfilingError(f"device {device} has no measurements yet ({store.path}); run `hwnas profile` first")
    store.export_csv(csv_path)
    return len(store.records())


def refuse_other_config(ws: Workspace, device: str, space: Any, runtime: str, precision: str = "fp32") -> None:
    """A device's profile file holds one space config; measuring another supernet's space (same name, other
    widths or resolutions) into it would mix two networks under one arch key."""
    from hwnas.profiling import profile_path

    path = profile_path(ws, device, space.name, runtime, precision)
    if not path.is_file():
        return
    try:
        found = json.loads(path.read_text(encoding="utf-8")).get("space")
    except (OSError, ValueError, AttributeError):
        return
    def options(config: dict[str, Any]) -> dict[str, Any]:  # a profile may cover some of the resolutions only
        return {k: v for k, v in config.items() if k != "resolutions"}

    if isinstance(found, dict) and options(found) != options(space.config()):
        raise ProfilingError(f"{path} profiles {space.name} with other options (another supernet's widths or "
                             f"resolutions); add this machine again under another name for this supernet, e.g. "
                             f"`hwnas device add {device}-2 ...`, or move that profile away")
