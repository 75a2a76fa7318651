"""`profile_device`: measure a space's operators and a set of whole subnets on a device, resumably.

Every measurement goes to the device's store as soon as the device reports it; a re-run after Ctrl-C, a
crash or a lost device skips what the store already holds, so nothing is measured twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas import space as spaces
from hwnas.devices.base import BenchmarkModel, BenchmarkSettings, Device, Measurement
from hwnas.errors import DeviceError, ExportError, ProfilingError
from hwnas.files import sha256_file
from hwnas.profiling.drift import AGAIN_PHASE, check_archs, new_session_id, session_summaries
from hwnas.profiling.profile import build_profile, profile_path, write_profile
from hwnas.profiling.reference import calibration_archs, reference_archs
from hwnas.profiling.store import MeasurementStore, StoredMeasurement
from hwnas.progress import ProgressFn, emit
from hwnas.space import Arch, OpSpec, SearchSpace
from hwnas.space.base import describe_values
from hwnas.workspace import Workspace

__all__ = ["profile_device", "export_profile_models", "plan_operators", "models_dir", "arch_models_dir"]



def models_dir(workspace: Workspace, fmt: str, precision: str) -> Path:
    """Where exported models are cached (content-named, shared by all devices): `.cache/models/<fmt>-<prec>`."""
    return workspace.root / ".cache" / "models" / f"{fmt}-{precision}"


def _space_at(space: SearchSpace, resolutions: Sequence[int] | None) -> SearchSpace:
    """The space whose operators a profile at `resolutions` measures (`--resolutions`; default: the space's own
    profiled set). Archs keep every resolution the space accepts; predictors interpolate between profiled ones."""
    if not resolutions:
        return space
    config = space.config()
    if "resolutions" not in config:
        raise ProfilingError(f"space {space.name} has a fixed input size; leave out --resolutions")
    wanted = sorted(set(int(r) for r in resolutions))
    bad = sorted(set(wanted) - set(config["resolutions"]))
    if bad:
        raise ProfilingError(f"resolution(s) {bad} are not in space {space.name} "
                             f"(allowed: {describe_values(config['resolutions'])})")
    if hasattr(space, "with_profiled_resolutions"):
        return space.with_profiled_resolutions(wanted)
    return spaces.from_config({**config, "resolutions": wanted})


def plan_operators(space: SearchSpace, ops: Iterable[OpSpec] | None = None,
                   archs: Iterable[Any] | None = None) -> list[OpSpec]:
    """The distinct operators to measure: `ops`, else the operators of `archs`, else all of the space's."""
    if ops is not None:
        chosen = list(ops)
    elif archs is not None:
        chosen = [op for a in archs for op in space.operators(space.validate(a))]
    else:
        chosen = space.all_operators()
    return list({op.key: op for op in chosen}.values())


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def profile_device(
    device: Device,
    space: SearchSpace | str,
    workspace: Workspace,
    *,
    settings: BenchmarkSettings | None = None,
    resolutions: Sequence[int] | None = None,
    precision: str = "fp32",
    calibration: int = 50,
    reference: bool | int = True,
    ops: Iterable[OpSpec] | None = None,
    archs: Iterable[Any] | None = None,
    extra_archs: Iterable[Any] | None = None,
    chunk_size: int = 32,
    jobs: int = 2,
    progress: ProgressFn | None = None,
    again: bool = True,
) -> Path:
    """Measure operators and whole subnets of `space` on an open `device`; write and return the profile path.

    `ops` or `archs` restrict the operators (to a list, or to those the given archs run); `calibration` random
    subnets and the reference subnets (True: the standard 20, False: none, an int: that many spread over FLOPs)
    are measured whole, and so are `extra_archs`. With `again`, the reference subnets are then measured once
    more in a batch of their own: how far a later session strays from the profile, which `fit` calibrates the
    prediction intervals on; when that batch's level strays from the profile's beyond its noise, once more
    (the newest counts).
    """
    from hwnas.export import export_arch, export_operators  # torch-heavy: imported when profiling starts

    sp = _space_at(spaces.create(space) if isinstance(space, str) else space, resolutions)
    settings = settings or device.default_settings()
    fmt = _profiled_format(settings.runtime)
    if precision not in ("fp32", "int8"):
        raise ProfilingError(f"precision must be fp32 or int8, got {precision!r}")
    op_list = plan_operators(sp, ops, archs)
    role_archs = _plan_archs(sp, calibration, reference, extra_archs)
    store = MeasurementStore.for_device(workspace, device.name)
    out_dir = models_dir(workspace, fmt, precision)
    arch_dir = arch_models_dir(workspace, sp, fmt, precision)
    timing = {"export_s": 0.0, "device_s": 0.0}
    started = time.monotonic()

    session = new_session_id()
    checks = check_archs(sp, len(role_archs["reference"]))

    def record(kind: str, key: str, role: str, spec: dict[str, Any], m: Measurement) -> None:
        store.append(StoredMeasurement(kind=kind, key=key, space=sp.name, precision=precision, measurement=m,
                                       role=role, spec=spec, session=session))
        timing["device_s"] += (m.wall_ms or 0.0) / 1000.0

    def measure_checks(phase: str, archs: Sequence[Arch] = checks) -> None:
        """Re-measure the reference checks: how the device's speed moved during this session; with
        AGAIN_PHASE, every reference subnet and check subnet in a batch of their own (what `fit` calibrates
        intervals on, and the check subnets' level that later sessions compare with: a batch of three runs its
        rounds back to back, so one slow phase of the host can cover all of them)."""
        models, by_key = [], {}
        for arch in archs:
            try:
                exported = _export_arch_cached(export_arch, sp, arch, arch_dir, fmt, precision)
            except ExportError:
                continue
            models.append(BenchmarkModel(exported.path, arch.key, exported.sha256))
            by_key[arch.key] = arch
        if not models:
            return
        for i, m in enumerate(_measure(device, models, settings)):
            record("check", m.key, phase, by_key[m.key].to_dict(), m)
            if phase == AGAIN_PHASE:
                emit(progress, "reference subnets again", i + 1, len(models), m.key)

    with store.lock():
        fingerprint = device.info()
        measure_checks("start")
        done_ops = set(store.latest("op", settings.runtime, precision, settings.threads))
        todo_ops = [op for op in op_list if op.key not in done_ops]
        done = len(op_list) - len(todo_ops)
        emit(progress, "operators", done, len(op_list), skipped=done)
        try:
            for chunk in _chunks(todo_ops, chunk_size):
                t0 = time.monotonic()
                exported, failures = _export_ops(export_operators, sp, list(chunk), out_dir, fmt, precision, jobs)
                timing["export_s"] += time.monotonic() - t0
                for op, error in failures:
                    record("op", op.key, "", op.to_dict(), _failed(op.key, device.name, settings, error))
                    done += 1
                models = [BenchmarkModel(e.path, e.key, e.sha256) for e in exported]
                specs = {e.key: e.op.to_dict() for e in exported}
                for m in _measure(device, models, settings):
                    record("op", m.key, "", specs.get(m.key, {}), m)
                    done += 1
                    emit(progress, "operators", done, len(op_list), m.key)
            measure_checks("middle")
            all_archs = [(role, a) for role in ("reference", "calibration", "extra") for a in role_archs[role]]
            done_archs = set(store.latest("arch", settings.runtime, precision, settings.threads, space=sp.name))
            todo_archs = [(role, a) for role, a in all_archs if a.key not in done_archs]
            # interleave the roles (fixed order): calibration and held-out subnets are then measured under the
            # same conditions, so a drift in the device's load or temperature cannot bias one set against another
            todo_archs = [todo_archs[i] for i in np.random.default_rng(0).permutation(len(todo_archs))]
            done = len(all_archs) - len(todo_archs)
            emit(progress, "archs", done, len(all_archs), skipped=done)
            # every subnet is exported before any is measured, then measured in one batch: the runner interleaves
            # the rounds of up to 64 models, so each subnet's rounds spread over the whole measurement and a
            # burst of load lasting a few seconds lands in one of its rounds rather than in all of them
            models, roles = [], {}
            for i, (role, arch) in enumerate(todo_archs):
                t0 = time.monotonic()
                try:
                    exported = _export_arch_cached(export_arch, sp, arch, arch_dir, fmt, precision)
                except ExportError as exc:
                    record("arch", arch.key, role, arch.to_dict(), _failed(arch.key, device.name, settings, str(exc)))
                    done += 1
                else:
                    models.append(BenchmarkModel(exported.path, arch.key, exported.sha256))
                    roles[arch.key] = (role, arch)
                finally:
                    timing["export_s"] += time.monotonic() - t0
                emit(progress, "export archs", i + 1, len(todo_archs), arch.key)
            for m in _measure(device, models, settings):
                role, arch = roles[m.key]
                record("arch", arch.key, role, arch.to_dict(), m)
                done += 1
                emit(progress, "archs", done, len(all_archs), arch.key)
            measure_checks("end")
            if again and role_archs["reference"]:
                measured = set(store.latest("arch", settings.runtime, precision, settings.threads, space=sp.name))
                refs = [a for a in role_archs["reference"] if a.key in measured]
                ref_keys = {a.key for a in refs}
                measure_checks(AGAIN_PHASE, refs + [a for a in checks if a.key not in ref_keys])
                if _again_drifted(store, sp.name, session):
                    # once more: a slow phase of the host over the second batch passes, a device whose speed
                    # really changed since the profile's batch stays changed (and the session is flagged)
                    measure_checks(AGAIN_PHASE, refs + [a for a in checks if a.key not in ref_keys])
        finally:
            timing["wall_s"] = time.monotonic() - started
            path = profile_path(workspace, device.name, sp.name, settings.runtime, precision)
            profile = build_profile(store, device.name, sp, settings.runtime, precision, settings.threads, op_list,
                                    role_archs, fingerprint=fingerprint, settings=settings.to_dict(),
                                    resolutions=_profiled_resolutions(sp), timing=timing)
            if profile["operators"] or any(profile[r] for r in ("reference", "calibration", "extra")):
                write_profile(path, profile)
    return path


def _again_drifted(store: MeasurementStore, space: str, session: str) -> bool:
    """Whether `session`'s reference subnets, measured again, stand at another level than in its own batch."""
    summary = next((s for s in session_summaries(store.records(), space) if s["id"] == session), None)
    return bool(summary and summary.get("again") and summary["drifted"])


def _export_ops(export_operators: Callable[..., Any], space: SearchSpace, ops: list[OpSpec], out_dir: Path,
                fmt: str, precision: str, jobs: int) -> tuple[list[Any], list[tuple[OpSpec, str]]]:
    """Export a batch; when it fails, export one by one so that one bad operator does not stop the others."""
    try:
        return export_operators(space, ops, out_dir, fmt, precision=precision, jobs=jobs), []
    except ExportError as exc:
        if len(ops) == 1:
            return [], [(ops[0], str(exc))]
    exported, failures = [], []
    for op in ops:
        try:
            exported += export_operators(space, [op], out_dir, fmt, precision=precision, jobs=1)
        except ExportError as exc:
            failures.append((op, str(exc)))
    return exported, failures


def _failed(key: str, device: str, settings: BenchmarkSettings, error: str) -> Measurement:
    """A failed Measurement for a model that could not even be exported (kept in the store, retried later)."""
    nan = float("nan")
    return Measurement(model_sha256="", key=key, device=device, runtime=settings.runtime, runtime_version="",
                       threads=settings.threads, warmup=settings.warmup, runs=0, median_ms=nan, mean_ms=nan,
                       std_ms=nan, min_ms=nan, p90_ms=nan, n=0, timestamp=time.time(), status="failed",
                       error=f"export failed: {error}"[:500])


def _measure(device: Device, models: list[BenchmarkModel], settings: BenchmarkSettings) -> Iterable[Measurement]:
    try:
        yield from device.benchmark(models, settings)
    except DeviceError as exc:
        raise ProfilingError(f"lost device {device.name} ({exc}); what was measured is kept: re-run to continue") \
            from exc


def arch_models_dir(workspace: Workspace, space: SearchSpace, fmt: str, precision: str) -> Path:
    """Where whole-subnet models are cached: `.cache/models/<fmt>-<prec>/archs/<space>-<config digest>/`."""
    return models_dir(workspace, fmt, precision) / "archs" / f"{space.name}-{_config_digest(space)}"


def _export_arch_cached(export_arch: Callable[..., Any], space: SearchSpace, arch: Arch, arch_dir: Path, fmt: str,
                        precision: str) -> Any:
    """A subnet's model file: reused when its folder holds a complete export of this arch, else exported.

    Weights are random, so outputs are not compared with PyTorch (latency does not depend on them).
    """
    from hwnas.export import arch_folder, random_calib
    from hwnas.export.config import layout_is_current

    folder = arch_folder(arch_dir, arch.key, fmt, precision)
    model, side = folder / f"model.{'onnx' if fmt == 'onnx' else 'tflite'}", folder / "model.json"
    if model.is_file() and side.is_file():
        try:
            record = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        if (record.get("arch_key") == arch.key and layout_is_current(record, fmt)
                and record.get("sha256") == sha256_file(model)):
            return _Exported(model, record["sha256"])
    return export_arch(space, arch, arch_dir, fmt, precision=precision, validate=False,
                       calib=random_calib(space, arch) if precision == "int8" else None)


@dataclass(frozen=True)
class _Exported:
    path: Path
    sha256: str


def export_profile_models(space: SearchSpace | str, workspace: Workspace, runtime: str, *,
                          resolutions: Sequence[int] | None = None, precision: str = "fp32",
                          calibration: int = 50, reference: bool | int = True, ops: Iterable[OpSpec] | None = None,
                          archs: Iterable[Any] | None = None, extra_archs: Iterable[Any] | None = None,
                          jobs: int = 2, progress: ProgressFn | None = None) -> dict[str, int]:
    """Export (into the cache) every model `profile_device` with the same arguments will measure, without a
    device: the slow, device-independent half of profiling, which can run ahead of time."""
    from hwnas.export import export_arch, export_operators

    sp = _space_at(spaces.create(space) if isinstance(space, str) else space, resolutions)
    fmt = _profiled_format(runtime)
    op_list = plan_operators(sp, ops, archs)
    out_dir = models_dir(workspace, fmt, precision)
    for start in range(0, len(op_list), 32):
        export_operators(sp, op_list[start:start + 32], out_dir, fmt, precision=precision, jobs=jobs)
        emit(progress, "export operators", min(start + 32, len(op_list)), len(op_list))
    roles = _plan_archs(sp, calibration, reference, extra_archs)
    all_archs = [a for role in ("reference", "calibration", "extra") for a in roles[role]]
    arch_dir = arch_models_dir(workspace, sp, fmt, precision)
    for i, arch in enumerate(all_archs):
        _export_arch_cached(export_arch, sp, arch, arch_dir, fmt, precision)
        emit(progress, "export archs", i + 1, len(all_archs), arch.key)
    return {"operators": len(op_list), "archs": len(all_archs)}


def _plan_archs(sp: SearchSpace, calibration: int, reference: bool | int, extra_archs: Iterable[Any] | None) \
        -> dict[str, list[Arch]]:
    n_reference = 20 if reference is True else int(reference or 0)
    roles: dict[str, list[Arch]] = {"reference": reference_archs(sp, n_reference) if n_reference else []}
    taken = {a.key for a in roles["reference"]}
    roles["calibration"] = calibration_archs(sp, calibration, exclude=taken) if calibration else []
    taken |= {a.key for a in roles["calibration"]}
    roles["extra"] = [a for a in (sp.validate(x) for x in (extra_archs or [])) if a.key not in taken]
    return roles


def _profiled_resolutions(space: SearchSpace) -> list[int] | None:
    """The resolutions a profile of `space` measures (a space may accept more: predictors interpolate)."""
    found = getattr(space, "profiled_resolutions", None) or getattr(space, "resolutions", None)
    return list(found) if found else None


def _config_digest(space: SearchSpace) -> str:
    text = json.dumps(spaces.network_config(space.config()), sort_keys=True)  # same networks: same cached files
    return hashlib.sha256(text.encode()).hexdigest()[:12]




def _profiled_format(runtime: str) -> str:
    """The export format a runtime measures; a runtime with none (torch) cannot be profiled."""
    from hwnas.export import format_for_runtime

    try:
        return format_for_runtime(runtime)
    except ExportError as exc:
        raise ProfilingError(f"runtime {runtime!r} cannot be profiled: {exc}") from None
