"""`profile`: measure a space's operators and whole subnets on a workspace device into its profile (resumable:
a second call measures only what is missing); `export_measurements`: a device's measurement log as CSV."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import ProfilingError
from hwnas.progress import ProgressFn
from hwnas.workflows._common import device_configs, resolve_workspace
from hwnas.workspace import Workspace

__all__ = ["ProfileResult", "profile", "export_measurements", "refuse_other_config", "profile_space"]


@dataclass
class ProfileResult:
    """A written profile: its path, what it holds, and what this call spent."""

    path: Path
    device: str
    operators: int
    archs: int
    missing_operators: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)


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
            rounds: int | None = None, chunk_size: int = 32, jobs: int = 2,
            progress: ProgressFn | None = None) -> ProfileResult:
    """Profile the workspace device `device` on `space` (a name or a SearchSpace; default ofa-mbv3), or on the
    exact space of the checkpoint `supernet`: every operator (or those of `archs`; none with
    `operators=False`), plus `calibration` random and `reference` fixed whole subnets and `extra_archs`.
    `runs`, `warmup`, `rounds` override the device's measurement settings."""
    from hwnas.devices import open_device
    from hwnas.profiling import load_profile, profile_device

    ws = resolve_workspace(workspace)
    config = device_configs(ws, [device])[device]
    sp = profile_space(space, supernet)
    refuse_other_config(ws, device, sp, config.runtime, precision)
    with open_device(device, ws) as dev:
        settings = dev.config.settings(runs=runs, warmup=warmup, rounds=rounds)
        path = profile_device(dev, sp, ws, settings=settings, resolutions=resolutions, precision=precision,
                              calibration=calibration, reference=reference, ops=None if operators else [],
                              archs=archs, extra_archs=extra_archs, chunk_size=chunk_size, jobs=jobs,
                              progress=progress)
    data = load_profile(path)
    n_archs = sum(len(data.get(r) or []) for r in ("reference", "calibration", "extra"))
    return ProfileResult(path, device, len(data["operators"]), n_archs, list(data["missing_operators"]),
                         dict(data.get("timing") or {}))


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
