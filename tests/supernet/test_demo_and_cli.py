"""The shipped demo supernet loads and its subnets classify real MNIST; `hwnas train` reports bad input on one
line with exit code 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.cli.app import main
from hwnas.data import load_dataset
from hwnas.supernet import demo_checkpoint_path, evaluate, load_checkpoint


@pytest.fixture(scope="module")
def demo():
    return load_checkpoint(demo_checkpoint_path())


def test_demo_checkpoint_is_small_and_finished(demo):
    path = demo_checkpoint_path()
    assert path.stat().st_size <= 10 * 2**20
    assert demo.space.name == "ofa-mbv3" and demo.space.n_classes == 10
    assert demo.meta["epochs_done"] == demo.meta["train_config"]["epochs"]
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"space", "state_dict", "meta"}


def test_demo_subnets_classify_mnist_and_extract_exactly(demo):
    val = load_dataset("mnist5k", split="val").subset(slice(0, None, 4))  # 250 images, all digits
    train = load_dataset("mnist5k", split="train")
    largest = evaluate(demo, demo.largest(), val, calib_data=train)
    smallest = evaluate(demo, demo.smallest(), val, calib_data=train)
    assert largest >= 90.0 and smallest >= 80.0  # trained (chance is 10%)
    arch = demo.space.sample(np.random.default_rng(0), 1)[0]
    x = torch.from_numpy(np.repeat(val.x[:4], 3, axis=1))
    x = torch.nn.functional.interpolate(x, size=(arch.r, arch.r), mode="bilinear", align_corners=False)
    demo.set_active(arch)
    with torch.no_grad():
        assert torch.allclose(demo.extract(arch)(x), demo(x), atol=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--ks", "3,x"], "--ks must be comma-separated integers"),
    (["--ks", "4"], "odd kernel sizes"),
    (["--data", "nowhere.npz"], "does not exist"),
])
def test_train_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["train", "--out", str(tmp_path / "x.pt"), *args])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "x.pt").exists()
