"""Profiling: measure a space's operators and whole subnets on a device; the measurement store; profile files.

`profile_device(device, "ofa-mbv3", workspace)` -> `profiles/<device>/<space>-<runtime>-<precision>.json`.
"""

from hwnas.profiling.profile import (
    PROFILE_FORMAT,
    PROFILE_VERSION,
    build_profile,
    find_profile,
    load_profile,
    profile_archs,
    profile_path,
    write_profile,
)
from hwnas.profiling.profiler import (
    arch_models_dir,
    export_profile_models,
    models_dir,
    plan_operators,
    profile_device,
)
from hwnas.profiling.reference import calibration_archs, reference_archs
from hwnas.profiling.store import MeasurementStore, StoredMeasurement

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "MeasurementStore",
    "StoredMeasurement",
    "arch_models_dir",
    "build_profile",
    "export_profile_models",
    "calibration_archs",
    "find_profile",
    "load_profile",
    "models_dir",
    "plan_operators",
    "profile_archs",
    "profile_device",
    "profile_path",
    "reference_archs",
    "write_profile",
]
