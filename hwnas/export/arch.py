"""`export_arch`: one subnet of a space (from a supernet's weights, or random weights) to a validated file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.errors import ExportError
from hwnas.export.config import ExportConfig, check_format, check_precision
from hwnas.export.core import ExportedModel, export_model
from hwnas.progress import ProgressFn, emit
from hwnas.space import SearchSpace

__all__ = ["export_arch", "export_archs", "arch_folder", "fit_calib", "random_calib", "random_subnet"]

RANDOM_WEIGHTS_SEED = 0
NOISE_BN_SAMPLES = 8
BN_BATCH = 64


def random_subnet(space: SearchSpace, arch: Any, seed: int = RANDOM_WEIGHTS_SEED) -> torch.nn.Module:
    """`build_subnet(space, arch, seed)` with batch-norm statistics estimated on random normal inputs.

    With default initialisation activations shrink ~100x per stage (1e-10 before the head of a w1.0 subnet),
    which makes fp32 validation trivially pass, int8 calibration degenerate and values drift toward
    denormals. Re-estimating the statistics (as OFA recalibrates BN after extraction, here on noise) keeps
    every layer's output near unit scale, like a trained network's.
    """
    from hwnas.supernet import build_subnet, recalibrate_bn

    model = build_subnet(space, arch, seed=seed)
    shape = tuple(space.input_shape(arch))
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((NOISE_BN_SAMPLES, *shape[1:]), generator=generator)
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model.eval()
    with torch.no_grad():
        return recalibrate_bn(model, [noise])


def arch_folder(out_dir: str | Path, arch_key: str, fmt: str, precision: str) -> Path:
    """Where `export_arch` puts one export: `<out_dir>/<arch key>/<format>-<precision>/`."""
    return Path(out_dir) / arch_key / f"{fmt}-{precision}"


def random_calib(space: SearchSpace, arch: Any, n: int = 16) -> np.ndarray:
    """`n` random normal inputs of the arch's shape: int8 calibration for random weights, whose latency does
    not depend on the values (never for trained weights: their ranges come from real images)."""
    shape = space.input_shape(arch)
    return np.random.default_rng(0).standard_normal((n, *shape[1:])).astype(np.float32)


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
    bn_data: np.ndarray | None = None,
) -> ExportedModel:
    """Export the subnet `arch` of `space` into `<out_dir>/<arch key>/<format>-<precision>/model.<ext>`.

    Weights come from `supernet.extract(arch)` when a supernet is given (its space must be `space`),
    else from `random_subnet(space, arch)` (build_subnet's random weights, fixed seed, batch-norm statistics
    estimated on noise). int8 needs `calib`
    (NCHW float32 images; resized to the arch's resolution). The sidecar records the arch, its key, the space,
    FLOPs and params (the space's counts) and where the weights came from.

    A supernet subnet's batch norms are re-estimated (as OFA does after extraction: on the demo supernet this
    lifts the largest subnet from 64% to 95% top-1) on `bn_data`, else on `calib`; with neither they keep the
    supernet's running statistics. fp32 and int8 exports given the same images thus hold the same network.
    """
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
        from hwnas.supernet import recalibrate_bn

        model = supernet.extract(arch)
        weights = "supernet"
        images = bn_data if bn_data is not None else calib
        if images is not None:
            images = fit_calib(images, input_shape)
            batches = [torch.from_numpy(images[i:i + BN_BATCH]) for i in range(0, len(images), BN_BATCH)]
            with torch.no_grad():
                model = recalibrate_bn(model, batches)
            weights = f"supernet, batch-norm statistics re-estimated on {len(images)} images"
    else:
        model = random_subnet(space, arch, RANDOM_WEIGHTS_SEED)
        weights = f"random (seed {RANDOM_WEIGHTS_SEED}, batch-norm statistics from noise)"
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


def _export_arch_job(space_config: dict[str, Any], arch: dict[str, Any], out_dir: str, fmt: str, precision: str,
                     checkpoint: str | None, calib: np.ndarray | None, validate: bool,
                     config: ExportConfig | None, bn_data: np.ndarray | None = None) -> ExportedModel:
    """One export in a worker process: rebuild the space (and supernet, from its checkpoint file) there."""
    from hwnas.space import from_config

    space = from_config(space_config)
    supernet = None if checkpoint is None else _load_cached(checkpoint, space)
    return export_arch(space, arch, out_dir, fmt, precision, supernet=supernet, calib=calib, validate=validate,
                       config=config, bn_data=bn_data)


_SUPERNETS: dict[str, Any] = {}


def _load_cached(checkpoint: str, space: SearchSpace) -> Any:
    from hwnas.supernet import load_checkpoint

    if checkpoint not in _SUPERNETS:
        _SUPERNETS[checkpoint] = load_checkpoint(checkpoint, space).eval()
    return _SUPERNETS[checkpoint]


def export_archs(
    space: SearchSpace,
    archs: list[Any],
    out_dir: str | Path,
    formats: tuple[str, ...] | list[str] = ("onnx", "tflite"),
    precisions: tuple[str, ...] | list[str] = ("fp32",),
    checkpoint: str | Path | None = None,
    calib: np.ndarray | None = None,
    validate: bool = True,
    jobs: int = 2,
    progress: ProgressFn | None = None,
    config: ExportConfig | None = None,
    bn_data: np.ndarray | None = None,
) -> list[ExportedModel]:
    """`export_arch` for every (arch, format, precision), in `jobs` worker processes; results in that order.

    Weights come from the supernet checkpoint file `checkpoint` (loaded once per worker) or are random.
    Every arch is validated against the space before anything is written. `progress` gets an "export" event
    per finished file.
    Supernet subnets get their batch norms re-estimated on `bn_data` (else `calib`), fp32 and int8 alike.
    """
    from hwnas.export.operators import run_pool

    fmts = [check_format(f) for f in formats]
    precs = [check_precision(p) for p in precisions]
    checked = [space.validate(a) for a in archs]
    if checkpoint is not None:
        _load_cached(str(checkpoint), space)  # a bad checkpoint fails here, before any work starts
    if "int8" in precs and calib is None:
        raise ExportError("int8 export needs calibration data (NCHW float32 images); pass calib=")
    tasks = [(space.config(), a.to_dict(), str(out_dir), f, p, None if checkpoint is None else str(checkpoint),
              calib if p == "int8" else None, validate, config, bn_data if bn_data is not None else calib)
             for a in checked for f in fmts for p in precs]
    if jobs <= 1 or len(tasks) <= 1:
        results = []
        for task in tasks:
            results.append(_export_arch_job(*task))
            emit(progress, "export", len(results), len(tasks))
        return results
    return run_pool(_export_arch_job, tasks, jobs, None if progress is None else
                    (lambda done, total: emit(progress, "export", done, total)), [t[1] for t in tasks])
