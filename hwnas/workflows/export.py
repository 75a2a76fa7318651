"""`export`: subnets (an arch, a list, or a search front) to ONNX and/or TFLite files, fp32 and int8, each
validated against PyTorch and described by a model.json sidecar."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ExportError, InvalidArchError
from hwnas.progress import ProgressFn

__all__ = ["ExportSummary", "export", "arch_items", "load_space", "load_calibration", "DEFAULT_CALIB_SAMPLES"]

DEFAULT_CALIB_SAMPLES = 128


@dataclass
class ExportSummary:
    """The exported models in order, and what the caller should know about their weights."""

    models: list[Any]
    warnings: list[str] = field(default_factory=list)


def export(archs: Any, out_dir: str | Path, *, supernet: str | Path | None = None, space: Any = None,
           formats: Sequence[str] = ("onnx", "tflite"), int8: bool = False, calib: str | None = None,
           calib_samples: int = DEFAULT_CALIB_SAMPLES, validate: bool = True, jobs: int = 2,
           progress: ProgressFn | None = None) -> ExportSummary:
    """Export `archs` (an arch dict or key, a list of them, or a search front: `{"front": [...]}` or entries with
    an "arch" field) with the weights of `supernet` (a checkpoint; else random weights of `space`, a space name
    or config) to `formats` under `out_dir`. `int8` adds int8 models calibrated on `calib` (a dataset spec or a
    .npy of NCHW images), which also re-estimates a supernet subnet's batch norms."""
    from hwnas.export import FORMATS, export_archs
    from hwnas.export.core import prepare_folder

    fmts = [f.strip().lower() for f in formats if f.strip()]
    unknown = [f for f in fmts if f not in FORMATS]
    if not fmts or unknown:
        raise ExportError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {','.join(formats)!r}")
    if int8 and calib is None:
        raise ExportError("--int8 needs calibration images: pass --calib mnist5k (or a dataset folder, .npz, .npy)")
    if calib is not None and not int8 and supernet is None:
        raise ExportError("--calib is used for --int8 or to re-estimate a supernet's batch norms; "
                          "add --int8 or --supernet, or drop --calib")
    sp, net = load_space(supernet, space)
    checked = [net.validate(item) if net is not None else sp.validate(item) for item in arch_items(archs)]
    unique = list({a.key: a for a in checked}.values())
    calib_data = load_calibration(calib, calib_samples) if calib is not None else None
    folder = prepare_folder(out_dir).resolve()
    warnings = []
    if net is None:
        warnings.append("no --supernet given: exporting random weights (fine for latency, not for accuracy)")
    elif calib_data is None:
        warnings.append("no --calib given: batch norms keep the supernet's running statistics; pass --calib DATA "
                        "to re-estimate them per subnet (as OFA does) for full accuracy")
    precisions = ["fp32", "int8"] if int8 else ["fp32"]
    models = export_archs(sp, unique, folder, fmts, precisions, checkpoint=Path(supernet) if net is not None else None,
                          calib=calib_data if int8 else None, bn_data=calib_data, validate=validate, jobs=jobs,
                          progress=progress)
    return ExportSummary(models, warnings)


def load_space(supernet: str | Path | None, space: Any) -> tuple[Any, Any]:
    """(space, supernet or None): the checkpoint's space, checked against `space` (a name, a config dict or a
    SearchSpace) when both are given; the space alone for random weights."""
    from hwnas import space as spaces

    expected, full_config = None, False
    if isinstance(space, dict):
        expected, full_config = spaces.from_config(space), True
    elif isinstance(space, str):
        expected = spaces.create(space)
    elif space is not None:
        if not isinstance(space, spaces.SearchSpace):
            raise ExportError("--space takes a space name or a space config object (JSON)")
        expected, full_config = space, True
    if supernet is None:
        if expected is None:
            raise ExportError("pass --supernet CKPT (trained weights) or --space NAME (random weights)")
        return expected, None
    from hwnas.supernet import load_checkpoint

    path = Path(supernet)
    if path.is_dir():
        raise ExportError(f"--supernet {path} is a folder; pass the checkpoint file")
    net = load_checkpoint(path, expected if full_config else None)
    if expected is not None and net.space.name != expected.name:
        raise ExportError(f"checkpoint {path} is for space {net.space.name!r}, not {expected.name!r}; "
                          f"pass the checkpoint trained for {expected.name!r}")
    return net.space, net.eval()


def arch_items(data: Any) -> list[Any]:
    """An arch (dict or key), a front entry ({"arch": ...}), a list of either, or a search front document
    ({"front": [...]}, as front.json holds) -> the list of arch dicts and keys."""
    if isinstance(data, dict) and isinstance(data.get("front"), list) and "arch" not in data:
        data = data["front"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidArchError("no arch given: the list is empty")
    archs = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "arch" in item:
            item = item["arch"]
        if not isinstance(item, (dict, str)):
            raise InvalidArchError(f"entry {i} is a {type(item).__name__}; expected an arch dict, an arch key "
                                   f"or a front entry with an 'arch' field")
        archs.append(item)
    return archs


def load_calibration(spec: str | Path, limit: int) -> np.ndarray:
    """Up to `limit` calibration images: a .npy of NCHW floats, or a dataset's training split (a fixed random
    subset)."""
    path = Path(spec).expanduser()
    if path.suffix == ".npy":
        if not path.is_file():
            raise ExportError(f"calibration file {path} does not exist")
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ExportError(f"cannot read {path} as a numpy array: {exc}") from None
        if data.ndim != 4:
            raise ExportError(f"{path} holds shape {data.shape}; calibration images must be NCHW (4 dimensions)")
        return np.asarray(data[:limit], dtype=np.float32)
    from hwnas.data import load_dataset

    dataset = load_dataset(str(spec), split="train")
    if len(dataset) == 0:
        raise ExportError(f"dataset {spec!r} has no training images to calibrate with")
    index = np.random.default_rng(0).permutation(len(dataset))[:limit]
    return np.asarray(dataset.x[np.sort(index)], dtype=np.float32)
