"""The HwnasError hierarchy: every error a user can cause says what is wrong and what to do."""

from __future__ import annotations

__all__ = [
    "HwnasError",
    "SpaceError",
    "InvalidArchError",
    "SupernetError",
    "CheckpointError",
    "DataError",
    "ExportError",
    "ValidationError",
    "DeviceError",
    "TransportError",
    "HostKeyError",
    "DeviceTimeoutError",
    "InventoryError",
    "ProfilingError",
    "PredictorError",
    "SearchError",
    "WorkspaceError",
    "ClusterError",
]


class HwnasError(Exception):
    """Base of every error hwnas raises on purpose. The CLI prints it on one line and exits 1."""


class SpaceError(HwnasError):
    """A search space was asked for something it does not have (unknown name, bad option)."""


class InvalidArchError(SpaceError):
    """An architecture does not belong to the space; the message names the bad field and allowed values."""


class SupernetError(HwnasError):
    """A supernet cannot do what was asked (arch outside its space, wrong mode)."""


class CheckpointError(SupernetError):
    """A checkpoint file does not fit the supernet (missing or unexpected keys, shapes, corrupt file)."""


class DataError(HwnasError):
    """A dataset could not be read or is empty."""


class ExportError(HwnasError):
    """Writing a model to ONNX or TFLite failed."""


class ValidationError(ExportError):
    """An exported model's outputs do not match the PyTorch model's."""


class DeviceError(HwnasError):
    """A target device failed or is misconfigured."""


class TransportError(DeviceError):
    """The link to a device (SSH, ADB, subprocess) failed."""


class HostKeyError(TransportError):
    """An SSH host key is unknown or has changed."""


class DeviceTimeoutError(DeviceError):
    """A device did not answer in time."""


class InventoryError(DeviceError):
    """A device inventory file is missing or malformed."""


class ProfilingError(HwnasError):
    """Profiling a device failed, or a profile file is unusable."""


class PredictorError(HwnasError):
    """A predictor could not be fitted, loaded or applied."""


class SearchError(HwnasError):
    """A search could not run (bad objectives, impossible budget, bad run folder)."""


class WorkspaceError(HwnasError):
    """A workspace folder is missing or malformed."""


class ClusterError(HwnasError):
    """Ray is missing, a cluster cannot be reached, or distributed work failed beyond its retries."""
