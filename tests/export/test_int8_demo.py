"""Done-when: int8 exports of the demo supernet's subnets run in onnxruntime and LiteRT and agree with the
fp32 model's top-1 on at least 95% of 200 mnist5k validation images."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.data import load_dataset
from hwnas.export import create_runner, export_arch, read_sidecar
from hwnas.export.arch import fit_calib
from hwnas.supernet import demo_checkpoint_path, load_checkpoint

N_VAL = 200
N_CALIB = 128


@pytest.fixture(scope="module")
def demo():
    supernet = load_checkpoint(demo_checkpoint_path()).eval()
    train = load_dataset("mnist5k", split="train")
    val = load_dataset("mnist5k", split="val")
    pick = np.random.default_rng(0)
    calib = train.x[np.sort(pick.permutation(len(train))[:N_CALIB])]
    val_index = np.sort(pick.permutation(len(val))[:N_VAL])
    return supernet, calib, val.x[val_index], val.y[val_index]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["largest", "random"])
def test_int8_demo_subnets_agree_with_fp32_in_both_runtimes(tmp_path, demo, which):
    supernet, calib, images, labels = demo
    space = supernet.space
    arch = supernet.largest() if which == "largest" else space.sample(np.random.default_rng(11), 1)[0]
    arch = space.validate(arch)
    x = fit_calib(images, space.input_shape(arch))
    # fp32 reference: the ONNX fp32 export (validated against PyTorch at 1e-4; the TFLite fp32 file is too).
    # The same images re-estimate the subnet's batch norms for every export, so all files hold one network.
    fp32 = export_arch(space, arch, tmp_path, "onnx", "fp32", supernet=supernet, calib=calib)
    fp32_top1 = create_runner(fp32.path, "onnx").run(x)[0].argmax(1)
    for fmt in ("onnx", "tflite"):
        int8 = export_arch(space, arch, tmp_path, fmt, "int8", supernet=supernet, calib=calib)
        int8_top1 = create_runner(int8.path, fmt).run(x)[0].argmax(1)
        agreement = float(np.mean(int8_top1 == fp32_top1))
        side = read_sidecar(int8.path)
        assert "re-estimated on 128 images" in side["weights"]
        print(f"{arch.key} {fmt}: int8/fp32 top-1 agreement {agreement:.1%}, accuracy fp32 "
              f"{np.mean(fp32_top1 == labels):.1%} int8 {np.mean(int8_top1 == labels):.1%}, "
              f"size {side['bytes']} / {side['fp32_bytes']} bytes")
        assert agreement >= 0.95, f"{fmt}: int8 agrees with fp32 on {agreement:.1%} of {N_VAL} images"
        assert side["bytes"] < 0.5 * side["fp32_bytes"]
