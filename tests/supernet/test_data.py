"""hwnas.data: mnist5k with its fixed validation split, .npz and ImageFolder datasets, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.data import iter_batches, load_dataset, match_channels, resize
from hwnas.errors import DataError


def test_mnist5k_has_a_fixed_stratified_validation_split():
    train, val = load_dataset("mnist5k", split="train"), load_dataset("mnist5k", split="val")
    assert len(train) == 4000 and len(val) == 1000
    assert np.bincount(val.y).tolist() == [100] * 10
    assert train.x.shape[1:] == (1, 28, 28) and train.x.dtype == np.float32 and val.y.dtype == np.int64
    assert -1.0 <= float(train.x.min()) < float(train.x.max()) <= 1.0
    again = load_dataset("mnist5k", split="val")
    assert np.array_equal(again.x, val.x)
    again.x[:] = 0  # callers get their own copy
    assert load_dataset("mnist5k", split="val").x.any()


def test_npz_dataset_in_nhwc_uint8_with_a_validation_index(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 12, 12, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y, val_index=np.arange(30, 40))
    full = load_dataset(path)
    assert full.x.shape == (40, 3, 12, 12) and full.n_classes == 4
    assert np.allclose(full.x[0, :, 0, 0], (x[0, 0, 0] / 255.0 - 0.5) / 0.5)
    assert len(load_dataset(path, split="val")) == 10 and len(load_dataset(path, split="train")) == 30


def test_image_folder(tmp_path):
    from PIL import Image

    for label, colour in (("cat", 200), ("dog", 30)):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (10 + i, 10), (colour, colour, colour)).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset(tmp_path, image_size=8)
    assert ds.classes == ["cat", "dog"] and ds.x.shape == (10, 3, 8, 8)
    assert ds.x[ds.y == 0].mean() > ds.x[ds.y == 1].mean()
    assert len(load_dataset(tmp_path, split="val", image_size=8)) == 2  # last 20% of each class


@pytest.mark.parametrize("spec, message", [
    ("imagenet", "unknown dataset 'imagenet'"),
    ("missing.npz", "does not exist"),
])
def test_unknown_specs_are_data_errors(spec, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=message):
        load_dataset(spec)


def test_bad_npz_and_empty_folder_are_data_errors(tmp_path):
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((3, 4, 4)))
    with pytest.raises(DataError, match="no array.*'y'"):
        load_dataset(tmp_path / "nolabels.npz")
    np.savez(tmp_path / "mismatch.npz", x=np.zeros((3, 4, 4)), y=np.zeros(2, dtype=int))
    with pytest.raises(DataError, match="N labels"):
        load_dataset(tmp_path / "mismatch.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("mnist5k", split="test")


def test_batches_are_resized_and_channel_matched():
    ds = load_dataset("mnist5k", split="val")
    batches = list(iter_batches(ds, 300, resolution=40, channels=3, limit=700))
    assert [len(y) for _, y in batches] == [300, 300, 100]
    assert batches[0][0].shape == (300, 3, 40, 40) and batches[0][0].dtype == np.float32
    assert np.array_equal(batches[0][0][:, 0], batches[0][0][:, 2])
    assert resize(ds.x[:2], 28) is ds.x[:2] or np.array_equal(resize(ds.x[:2], 28), ds.x[:2])
    with pytest.raises(DataError, match="channels"):
        match_channels(np.zeros((1, 3, 4, 4), np.float32), 2)
