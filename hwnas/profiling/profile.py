"""Profile files: `profiles/<device>/<space>-<runtime>-<precision>.json`, derived from the measurement store.

A profile holds the device fingerprint, the settings, the date, per-operator {median_ms, mean_ms, std_ms, n},
and the whole subnets measured with it (calibration, reference, extra), each with the session that measured it,
and per session the reference checks at its start, middle and end with its drift (`hwnas.profiling.drift`),
and `reference_again`: the reference subnets measured once more in a batch of their own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hwnas.errors import ProfilingError
from hwnas.files import read_json_file
from hwnas.profiling.drift import AGAIN_PHASE, reference_levels, session_summaries
from hwnas.profiling.schema import check_profile
from hwnas.profiling.store import MeasurementStore, StoredMeasurement
from hwnas.space import OpSpec, SearchSpace
from hwnas.workspace import Workspace, atomic_write_text

__all__ = ["PROFILE_FORMAT", "PROFILE_VERSION", "profile_path", "build_profile", "write_profile", "load_profile",
           "profile_archs", "find_profile"]

PROFILE_FORMAT = "hwnas-profile"
PROFILE_VERSION = 1
ARCH_ROLES = ("reference", "calibration", "extra")


def profile_path(workspace: Workspace, device: str, space: str, runtime: str, precision: str) -> Path:
    return workspace.profile_dir(device) / f"{space}-{runtime}-{precision}.json"


def find_profile(workspace: Workspace, device: str, space: str | None = None, runtime: str | None = None,
                 precision: str = "fp32") -> Path:
    """The device's profile for (space, runtime, precision); with one profile only, the unset parts may be left out."""
    folder = workspace.profile_dir(device)
    pattern = f"{space or '*'}-{runtime or '*'}-{precision}.json"
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not found:
        raise ProfilingError(f"no profile {pattern} for device {device} in {folder}; run "
                             f"`hwnas profile {device}{' --space ' + space if space else ''}` first")
    if len(found) > 1:
        raise ProfilingError(f"device {device} has several profiles ({', '.join(p.name for p in found)}); "
                             "choose one with --space / --runtime")
    return found[0]


def _stats(rec: StoredMeasurement) -> dict[str, Any]:
    m = rec.measurement
    return {"median_ms": m.median_ms, "mean_ms": m.mean_ms, "std_ms": m.std_ms, "n": m.n, "min_ms": m.min_ms,
            "p90_ms": m.p90_ms}


def build_profile(store: MeasurementStore, device: str, space: SearchSpace, runtime: str, precision: str,
                  threads: int, ops: Iterable[OpSpec], archs: dict[str, list[Any]], *,
                  fingerprint: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
                  resolutions: list[int] | None = None, timing: dict[str, float] | None = None) -> dict[str, Any]:
    """The profile of `ops` and `archs` ({role: [Arch]}) from the store's newest successful records."""
    op_records = store.latest("op", runtime, precision, threads)
    arch_records = store.latest("arch", runtime, precision, threads, space=space.name)
    records = store.records()  # read once: the store is parsed and validated line by line
    failed = {r.key: r.measurement.error or "failed" for r in records if not r.ok}
    operators, missing = {}, []
    for op in ops:
        if op.key in op_records:
            operators[op.key] = _stats(op_records[op.key])
        else:
            missing.append(op.key)
    measured_archs: dict[str, list[dict[str, Any]]] = {}
    missing_archs = 0
    for role in ARCH_ROLES:
        rows = []
        for arch in archs.get(role, []):
            rec = arch_records.get(arch.key)
            if rec is None:
                missing_archs += 1
                continue
            rows.append(_subnet_row(arch, rec))
        measured_archs[role] = rows
    again = _measured_again(records, space, runtime, precision, threads, archs.get("reference", []))
    used = [op_records[k] for k in operators] + [arch_records[r["key"]] for rows in measured_archs.values()
                                                for r in rows]
    totals = {"device_s_total": sum((r.measurement.wall_ms or 0.0) for r in used) / 1000.0,
              "runtime_s_total": sum((r.measurement.run_total_ms or 0.0) for r in used) / 1000.0}
    runtime_version = next((r.measurement.runtime_version for r in op_records.values()), "")
    return {
        "format": PROFILE_FORMAT,
        "format_version": PROFILE_VERSION,
        "device": device,
        "space": space.config(),
        "runtime": runtime,
        "runtime_version": runtime_version,
        "precision": precision,
        "threads": threads,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "complete": not missing and not missing_archs,
        "resolutions": resolutions,
        "fingerprint": fingerprint or {},
        "settings": settings or {},
        "timing": {**(timing or {}), **totals},
        "operators": operators,
        "missing_operators": missing,
        "failed": {k: v for k, v in failed.items() if k in set(missing)},
        "sessions": session_summaries(records, space.name),
        **measured_archs,
        "reference_again": again,
        "reference_levels": reference_levels(measured_archs.get("reference") or [], again),
    }


def _measured_again(records: list[StoredMeasurement], space: SearchSpace, runtime: str, precision: str,
                    threads: int, references: list[Any]) -> list[dict[str, Any]]:
    """The reference subnets as last measured in a batch of their own after the profile's (AGAIN_PHASE)."""
    newest: dict[str, Any] = {}
    for rec in records:
        m = rec.measurement
        if (rec.kind == "check" and rec.role == AGAIN_PHASE and rec.ok and rec.space == space.name
                and rec.precision == precision and m.runtime == runtime and int(m.threads) == int(threads)):
            newest[rec.key] = rec
    return [_subnet_row(arch, newest[arch.key]) for arch in references if arch.key in newest]


def _subnet_row(arch: Any, rec: StoredMeasurement) -> dict[str, Any]:
    """A measured subnet as the profile lists it: key, arch, statistics and the session that measured it."""
    return {"key": arch.key, "arch": arch.to_dict(), **_stats(rec), **({"session": rec.session} if rec.session else {})}


def write_profile(path: Path, profile: dict[str, Any]) -> Path:
    atomic_write_text(path, json.dumps(profile, indent=1) + "\n")
    return path


def load_profile(path: str | Path, space: str | None = None, runtime: str | None = None,
                 precision: str | None = None) -> dict[str, Any]:
    """Read and check a profile file; a file for another space, runtime or precision is a ProfilingError."""
    path = Path(path)
    data = read_json_file(path, ProfilingError, "profile", "run `hwnas profile` first",
                          "re-run `hwnas profile` to rebuild it from the measurement store")
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        raise ProfilingError(f"{path} is not an hwnas profile (no 'format': '{PROFILE_FORMAT}')")
    version = data.get("format_version")
    if not isinstance(version, int) or version > PROFILE_VERSION:
        raise ProfilingError(f"profile {path} has format {version!r}, newer than this hwnas understands "
                             f"({PROFILE_VERSION}); upgrade hwnas")
    check_profile(data, path)
    found_space = data["space"]["name"]
    for what, wanted, found in (("space", space, found_space), ("runtime", runtime, data.get("runtime")),
                                ("precision", precision, data.get("precision"))):
        if wanted is not None and found != wanted:
            raise ProfilingError(f"profile {path} is for {what} {found!r}, not {wanted!r}; "
                                 f"profile the device with --{what} {wanted}")
    return data


def profile_archs(profile: dict[str, Any], roles: Iterable[str] = ARCH_ROLES) -> list[dict[str, Any]]:
    """The measured whole subnets of a profile (rows with key, arch, median_ms, role)."""
    rows = []
    for role in roles:
        for row in profile.get(role) or []:
            rows.append({**row, "role": role})
    return rows
