"""`export_arch`: one subnet of a space (from a supernet's weights, or random weights) to a validated file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.errors import ExportError
from hwnas.export.config import ExportConfig, check_format, check_precision
from hwnas.export.core import ExportedModel, export_model
from hwnas.space import SearchSpace

__all__ = ["export_arch", "arch_folder", "fit_calib"]

RANDOM_WEIGHTS_SEED = 0


def arch_folder(out_dir: str | Path, arch_key: str, fmt: str, precision: str) -> Path:
    """Where `export_arch` puts one export: `<out_dir>/<arch key>/<format>-<precision>/`."""
    return Path(out_dir) / arch_key / f"{fmt}-{precision}"


def fit_calib(calib: Any, input_shape: tuple[int, ...]) -> np.ndarray:
    """Calibration images resized (bilinear) and channel-matched to the network's (N, C, H, W) input."""
    array = np.asarray(calib, dtype=np.float32)
    if array.ndim != 4:
        raise ExportError(f"calibration data must be NCHW images (4 dimensions), got shape {tuple(array.shape)}")
    channels, size = input_shape[1], (input_shape[2], input_shape[3])
    if array.shape[1] != channels:
        if array.shape[1] == 1:
            array = np.repeat(array, channels, axis=1)
        elif channels == 1:
            array = array.mean(axis=1, keepdims=True)
        else:
            raise ExportError(f"calibration images have {array.shape[1]} channels; the network takes {channels}")
    if tuple(array.shape[2:]) != size:
        with torch.no_grad():
            array = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(array)), size=size,
                                                    mode="bilinear", align_corners=False).numpy()
    return np.ascontiguousarray(array, dtype=np.float32)


def export_arch(
    space: SearchSpace,
    arch: Any,
    out_dir: str | Path,
    format: str,
    precision: str = "fp32",
    supernet: Any = None,
    calib: np.ndarray | None = None,
    validate: bool = True,
    config: ExportConfig | None = None,
    meta: dict[str, Any] | None = None,
) -> ExportedModel:
    """Export the subnet `arch` of `space` into `<out_dir>/<arch key>/<format>-<precision>/model.<ext>`.

    Weights come from `supernet.extract(arch)` when a supernet is given (its space must be `space`),
    else from `hwnas.supernet.build_subnet(space, arch)` (random weights, fixed seed). int8 needs `calib`
    (NCHW float32 images; resized to the arch's resolution). The sidecar records the arch, its key, the space,
    FLOPs and params (the space's counts) and where the weights came from.
    """
    from hwnas.supernet import build_subnet

    fmt, precision = check_format(format), check_precision(precision)
    if supernet is not None:
        if getattr(supernet, "space", None) is not None and supernet.space.config() != space.config():
            raise ExportError(f"the supernet is for {supernet.space!r}, not {space!r}; "
                              f"load a checkpoint of this space or export with the supernet's space")
        arch = supernet.validate(arch) if hasattr(supernet, "validate") else space.validate(arch)
    else:
        arch = space.validate(arch)
    input_shape = tuple(int(s) for s in space.input_shape(arch))
    folder = arch_folder(out_dir, arch.key, fmt, precision)
    if precision == "int8":
        if calib is None:
            raise ExportError("int8 export needs calibration data (NCHW float32 images); pass calib= "
                              "(CLI: --calib DATASET or a .npy file)")
        calib = fit_calib(calib, input_shape)
    if supernet is not None:
        model = supernet.extract(arch)
        weights = "supernet"
    else:
        model = build_subnet(space, arch, seed=RANDOM_WEIGHTS_SEED)
        weights = f"random (seed {RANDOM_WEIGHTS_SEED})"
    record = {
        "arch": arch.to_dict(),
        "arch_key": arch.key,
        "space": space.config(),
        "weights": weights,
        "flops_m": float(space.flops(arch)),
        "params_m": float(space.params(arch)),
    }
    record.update(meta or {})
    return export_model(model, input_shape, folder, fmt, precision, calib=calib, validate=validate,
                        meta=record, config=config)
