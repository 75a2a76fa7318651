"""BigNAS training: a run stopped after an epoch and resumed ends exactly where an uninterrupted run does;
`hwnas train` killed mid-run resumes from its last checkpoint; mismatched settings refuse to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from hwnas.data import load_dataset
from hwnas.errors import SupernetError
from hwnas.space import create
from hwnas.supernet import create_supernet, load_checkpoint
from hwnas.supernet.checkpoint import read_checkpoint
from hwnas.supernet.train import TRAIN_KEY, TrainConfig, train_supernet

TINY_WIDTHS = (8, 8, 8, 8, 16, 16, 16, 32, 32)


def _space():
    return create("ofa-mbv3", base_widths=TINY_WIDTHS, resolutions=(24, 32), depth_list=(1, 2), n_classes=10)


def _net(mos: int = 0):
    torch.manual_seed(0)
    return create_supernet(_space(), mos_experts=mos)


def _config(**changes):
    return TrainConfig(**{"epochs": 2, "batch_size": 32, "eval_images": 40, "seed": 3, **changes})


@pytest.fixture(scope="module")
def tiny_data(mnist_npz):
    train = load_dataset(mnist_npz, split="train").subset(slice(0, 96))
    return train, load_dataset(mnist_npz, split="val")


@pytest.mark.parametrize("mos", [0, 2])
def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tiny_data, tmp_path, mos):
    train, val = tiny_data
    straight = _net(mos)
    result = train_supernet(straight, train, val, _config(), tmp_path / "a.pt")
    assert [r["epoch"] for r in result["history"]] == [1, 2]

    first = _net(mos)
    train_supernet(first, train, val, _config(), tmp_path / "b.pt", stop_after_epochs=1)
    assert TRAIN_KEY in read_checkpoint(tmp_path / "b.pt")  # unfinished: optimizer state kept
    resumed = _net(mos)  # a fresh process would start from random weights
    result = train_supernet(resumed, train, val, _config(), tmp_path / "b.pt")
    assert [r["epoch"] for r in result["history"]] == [1, 2]

    final = read_checkpoint(tmp_path / "b.pt")
    assert TRAIN_KEY not in final and final["meta"]["epochs_done"] == 2
    a, b = straight.state_dict(), load_checkpoint(tmp_path / "b.pt").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key
    assert not torch.equal(a["first_conv.conv.weight"], _net(mos).state_dict()["first_conv.conv.weight"])


def test_resume_with_other_settings_is_refused(tiny_data, tmp_path):
    train, val = tiny_data
    train_supernet(_net(), train, val, _config(), tmp_path / "c.pt", stop_after_epochs=1)
    with pytest.raises(SupernetError, match="lr differ"):
        train_supernet(_net(), train, val, _config(lr=0.2), tmp_path / "c.pt")
    with pytest.raises(SupernetError, match="mos-experts"):
        train_supernet(_net(mos=2), train, val, _config(), tmp_path / "c.pt")


def test_killed_cli_run_resumes_losing_at_most_one_epoch(mnist_npz, tmp_path):
    out = tmp_path / "sn.pt"
    command = [sys.executable, "-m", "hwnas.cli.app", "train", "--data", str(mnist_npz), "--out", str(out),
               "--epochs", "3", "--batch-size", "48", "--base-widths", ",".join(map(str, TINY_WIDTHS)),
               "--resolutions", "24,32", "--depth", "1,2", "--eval-images", "40"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if out.exists() and read_checkpoint(out)["meta"]["epochs_done"] >= 1:
                break
            time.sleep(0.2)
        assert out.exists(), process.communicate()[0]
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    done_before = read_checkpoint(out)["meta"]["epochs_done"]
    assert 1 <= done_before <= 3
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    final = read_checkpoint(out)
    assert final["meta"]["epochs_done"] == 3 and TRAIN_KEY not in final
    assert [r["epoch"] for r in final["meta"]["history"]] == [1, 2, 3]
    assert result.stderr.count("epoch ") == 3 - done_before  # only the missing epochs ran again
    load_checkpoint(out).extract(_space().sample(__import__("numpy").random.default_rng(0), 1)[0])
