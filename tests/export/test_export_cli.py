"""`hwnas export`: archs and search fronts to validated files; bad inputs give one clear line and write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.cli.app import main
from hwnas.export import read_sidecar
from hwnas.space import create
from hwnas.supernet import create_supernet, save_checkpoint


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_space):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    save_checkpoint(create_supernet(small_space), path)
    return path


def test_front_json_exports_every_entry_in_each_format(tmp_path, capsys, checkpoint, small_space):
    archs = small_space.sample(np.random.default_rng(7), 2)
    front = tmp_path / "front.json"
    front.write_text(json.dumps([{"arch": a.to_dict(), "latency_ms": 1.0} for a in archs]))
    code, out, err = run(["export", str(front), "--supernet", str(checkpoint), "--format", "onnx,tflite",
                          "--out", str(tmp_path / "models"), "--json"], capsys)
    assert code == 0, err
    results = json.loads(out)
    assert sorted((r["format"], r["precision"]) for r in results) == sorted([("onnx", "fp32"), ("tflite", "fp32")] * 2)
    for r in results:
        side = read_sidecar(r["path"])
        assert side["weights"] == "supernet" and side["validation"]["passed"]
        assert side["arch_key"] in {a.key for a in archs}


def test_int8_with_a_numpy_calibration_file_and_space_config(tmp_path, capsys, small_space):
    arch = small_space.sample(np.random.default_rng(1), 1)[0]
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).uniform(-1, 1, (16, 1, 28, 28)).astype(np.float32))
    space_json = json.dumps(small_space.config())
    code, out, err = run(["export", arch.key, "--space", space_json, "--format", "onnx", "--int8", "--calib",
                          str(calib), "--out", str(tmp_path / "m"), "--no-validate"], capsys)
    assert code == 0, err
    assert "random weights" in err
    assert (tmp_path / "m" / arch.key / "onnx-int8" / "model.onnx").is_file()
    assert read_sidecar(tmp_path / "m" / arch.key / "onnx-fp32")["validation"] is None


@pytest.mark.parametrize("case", ["outside", "other_space", "out_is_file", "unwritable", "no_calib", "bad_format",
                                  "empty_front", "bad_json"])
def test_bad_inputs_fail_with_one_line_and_write_nothing(tmp_path, capsys, checkpoint, small_space, case):
    arch = small_space.sample(np.random.default_rng(0), 1)[0].to_dict()
    out_dir = tmp_path / "out"
    argv = ["export", json.dumps(arch), "--supernet", str(checkpoint), "--format", "onnx", "--out", str(out_dir)]
    expected = {
        "outside": "outside this supernet's space",
        "other_space": "is for space 'ofa-mbv3', not 'nasbench201'",
        "out_is_file": "is a file",
        "unwritable": "cannot",
        "no_calib": "--int8 needs calibration images",
        "bad_format": "--format takes",
        "empty_front": "list is empty",
        "bad_json": "not valid JSON",
    }[case]
    if case == "outside":
        argv[1] = json.dumps({**arch, "r": 224})
    elif case == "other_space":
        argv += ["--space", "nasbench201"]
    elif case == "out_is_file":
        out_dir.write_text("mine")
        argv[-1] = str(out_dir)
    elif case == "unwritable":
        (tmp_path / "blocker").write_text("mine")
        argv[-1] = str(tmp_path / "blocker" / "out")
    elif case == "no_calib":
        argv.append("--int8")
    elif case == "bad_format":
        argv[5] = "onnx,coreml"
    elif case == "empty_front":
        argv[1] = "[]"
    elif case == "bad_json":
        bad = tmp_path / "front.json"
        bad.write_text("[{")
        argv[1] = str(bad)
    code, out, err = run(argv, capsys)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not (tmp_path / "out").is_dir()
    assert set(left) <= {"out", "blocker", "front.json"}
    if case == "out_is_file":
        assert out_dir.read_text() == "mine"


def test_checkpoint_of_a_different_space_config_is_refused(tmp_path, capsys, checkpoint):
    other = create("ofa-mbv3", width_mult=0.5, resolutions=(32,), depth_list=(1,), n_classes=10)
    code, _, err = run(["export", "r32-33-33-33-33-33", "--supernet", str(checkpoint), "--space",
                        json.dumps(other.config()), "--format", "onnx", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "trained for another space" in err
    assert not (tmp_path / "o").exists()
