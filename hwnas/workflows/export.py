"""`export`: subnets (an arch, a list, or a search front) to ONNX and/or TFLite files (fp32, fp16, int8), each
validated against PyTorch and described by a model.json sidecar (and TFLite files by their own metadata): input
size and layout (NHWC for TFLite by default), the normalisation the supernet was trained with, class labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ExportError, HwnasError, InvalidArchError
from hwnas.progress import ProgressFn

__all__ = ["ExportSummary", "export", "arch_items", "load_space", "load_calibration", "read_labels",
           "input_description", "DEFAULT_CALIB_SAMPLES", "HWNAS_NORMALIZATION", "OFA_NORMALIZATION"]

DEFAULT_CALIB_SAMPLES = 128
# (mean, std) on [0, 1] pixels. hwnas.data's loaders feed supernets (pixel / 255 - 0.5) / 0.5 (a test holds the two
# equal); OFA's published supernets were trained on ImageNet with torchvision's usual normalisation.
HWNAS_NORMALIZATION = ((0.5,), (0.5,))
OFA_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass
class ExportSummary:
    """The exported models in order, and what the caller should know about their weights."""

    models: list[Any]
    warnings: list[str] = field(default_factory=list)


def export(archs: Any, out_dir: str | Path, *, supernet: str | Path | None = None, space: Any = None,
           formats: Sequence[str] = ("onnx", "tflite"), int8: bool = False, fp16: bool = False,
           tflite_layout: str = "nhwc", labels: Sequence[str] | str | Path | None = None, calib: str | None = None,
           calib_samples: int = DEFAULT_CALIB_SAMPLES, validate: bool = True, jobs: int = 2,
           progress: ProgressFn | None = None) -> ExportSummary:
    """Export `archs` (an arch dict or key, a list of them, or a search front: `{"front": [...]}` or entries with
    an "arch" field) with the weights of `supernet` (a checkpoint; else random weights of `space`, a space name
    or config) to `formats` under `out_dir`. `int8` adds int8 models calibrated on `calib` (a dataset spec or a
    .npy of NCHW images), which also re-estimates a supernet subnet's batch norms; `fp16` adds TFLite models
    with float16 weights. TFLite files take `tflite_layout` input ("nhwc" or "nchw"). `labels` (class names, or
    a text file with one per line) default to the classes of the dataset the supernet was trained on."""
    from hwnas.export import FORMATS, export_archs
    from hwnas.export.config import ExportConfig, check_layout
    from hwnas.export.core import prepare_folder

    fmts = [f.strip().lower() for f in formats if f.strip()]
    unknown = [f for f in fmts if f not in FORMATS]
    if not fmts or unknown:
        raise ExportError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {','.join(formats)!r}")
    layout = check_layout(tflite_layout)
    if fp16 and "tflite" not in fmts:
        raise ExportError("--fp16 writes TFLite models (float16 weights); add tflite to --format")
    given_labels = read_labels(labels) if labels is not None else None
    if int8 and calib is None:
        raise ExportError("--int8 needs calibration images: pass --calib mnist5k (or a dataset folder, .npz, .npy)")
    if calib is not None and not int8 and supernet is None:
        raise ExportError("--calib is used for --int8 or to re-estimate a supernet's batch norms; "
                          "add --int8 or --supernet, or drop --calib")
    sp, net = load_space(supernet, space)
    checked = [net.validate(item) if net is not None else sp.validate(item) for item in arch_items(archs)]
    unique = list({a.key: a for a in checked}.values())
    warnings: list[str] = []
    described = input_description(net, sp, given_labels, calib, warnings)
    config = ExportConfig(tflite_layout=layout, **described)
    calib_data = load_calibration(calib, calib_samples) if calib is not None else None
    folder = prepare_folder(out_dir).resolve()
    if net is None:
        warnings.append("no --supernet given: exporting random weights (fine for latency, not for accuracy)")
    elif calib_data is None:
        warnings.append("no --calib given: batch norms keep the supernet's running statistics; pass --calib DATA "
                        "to re-estimate them per subnet (as OFA does) for full accuracy")
    extra = ["int8"] if int8 else []
    groups = [(fmts, ["fp32", *extra])]  # export_archs writes every format in every precision
    if fp16:  # fp16 is TFLite only: a second group when ONNX is asked for too
        groups = [([f for f in fmts if f != "tflite"], ["fp32", *extra]), (["tflite"], ["fp32", "fp16", *extra])]
        groups = [g for g in groups if g[0]]
    total = len(unique) * sum(len(f) * len(p) for f, p in groups)
    models, done = [], 0
    for group_formats, precisions in groups:
        models += export_archs(sp, unique, folder, group_formats, precisions,
                               checkpoint=Path(supernet) if net is not None else None,
                               calib=calib_data if int8 else None, bn_data=calib_data, validate=validate, jobs=jobs,
                               progress=_shifted(progress, done, total), config=config)
        done = len(models)
    order = {(a.key, f, p): i for i, (a, f, p) in enumerate((a, f, p) for a in unique for f in fmts
                                                             for p in ("fp32", "fp16", "int8"))}
    models.sort(key=lambda m: order[(m.meta.get("arch_key"), m.format, m.precision)])
    return ExportSummary(models, warnings)


def _shifted(progress: ProgressFn | None, offset: int, total: int) -> ProgressFn | None:
    """`progress` for one of several consecutive batches: counts continue across them, out of `total`."""
    if progress is None:
        return None
    return lambda event: progress(dataclasses.replace(event, done=event.done + offset, total=total))


def read_labels(labels: Sequence[str] | str | Path) -> tuple[str, ...]:
    """Class names: a sequence, a text file with one name per line, or a comma-separated string."""
    if isinstance(labels, (str, Path)):
        path = Path(labels).expanduser()
        if path.is_file():
            try:
                names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            except (OSError, UnicodeDecodeError) as exc:
                raise ExportError(f"cannot read labels from {path}: {exc}") from None
            names = [n for n in names if n]
        elif isinstance(labels, Path) or path.suffix in (".txt", ".csv") or "/" in str(labels):
            raise ExportError(f"labels file {path} does not exist; pass a text file with one class name per line, "
                              f"or the names separated by commas")
        else:
            names = [n.strip() for n in str(labels).split(",")]
    else:
        names = [str(n).strip() for n in labels]
    if not names or not all(names):
        raise ExportError("labels must be non-empty class names (a text file with one per line, or comma-separated)")
    return tuple(names)


def input_description(net: Any, space: Any, labels: tuple[str, ...] | None, calib: str | None,
                      warnings: list[str]) -> dict[str, Any]:
    """ExportConfig's input_mean, input_std and labels for a supernet's subnets: the normalisation it was trained
    with (hwnas's loaders, or OFA's ImageNet one); labels as given, else the classes of the dataset it was trained
    on (as its checkpoint records), else those of the `calib` dataset. Random weights get labels only when given."""
    mean_std = None
    data_spec = None
    meta = getattr(net, "meta", None) or {}
    if net is not None and meta.get("format") == "ofa":
        mean_std = OFA_NORMALIZATION
    elif net is not None:
        mean_std = HWNAS_NORMALIZATION
        data_spec = meta.get("data")
    n_classes = getattr(space, "n_classes", None)
    if labels is None and net is not None:
        for spec in (data_spec, calib):
            labels = _dataset_classes(spec)
            if labels is not None:
                break
    if labels is not None and n_classes is not None and len(labels) != int(n_classes):
        raise ExportError(f"{len(labels)} labels given but the network has {n_classes} classes; "
                          f"pass one name per class")
    out: dict[str, Any] = {"labels": labels}
    if mean_std is not None:
        out.update(input_mean=mean_std[0], input_std=mean_std[1])
    if net is not None and labels is None:
        warnings.append("no class labels known for this supernet: pass --labels FILE (one class name per line) "
                        "to record them in model.json and the .tflite")
    return out


def _dataset_classes(spec: Any) -> tuple[str, ...] | None:
    """The class names of a dataset spec ("mnist5k", an ImageFolder, a .npz; ":train"/":val" suffixes allowed),
    or None when it is not one that can be read here."""
    if not isinstance(spec, str) or not spec or spec.endswith(".npy"):
        return None
    name, _, split = spec.rpartition(":")
    if split not in ("train", "val", "all") or not name:
        name = spec
    folder = Path(name).expanduser()
    if folder.is_dir():  # an ImageFolder's classes are its sub-folders (hwnas.data's rule), no need to read images
        return tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))) or None
    from hwnas.data import load_dataset

    try:
        return tuple(load_dataset(name).classes)
    except HwnasError:
        return None


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
