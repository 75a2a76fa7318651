"""TFLite for phones: NHWC input by default, an fp16 option, and metadata (input size, layout, normalisation,
labels) in model.json and in the .tflite itself; checked on a subnet of the shipped demo supernet with real
MNIST digits, read back with ai_edge_litert's own Interpreter (not hwnas's runner)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.cli.app import main
from hwnas.data import load_dataset
from hwnas.export import read_sidecar
from hwnas.export.arch import BN_BATCH, fit_calib
from hwnas.export.runners import read_tflite_metadata
from hwnas.space import create
from hwnas.supernet import demo_checkpoint_path, load_checkpoint, recalibrate_bn
from hwnas.workflows import export
from hwnas.workflows.export import HWNAS_NORMALIZATION, load_calibration

N_IMAGES = 200
N_CALIB = 128
RESOLUTION = 32


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo subnet exported once as NHWC TFLite fp32, fp16 and int8 (calibrated, batch norms re-estimated on
    128 mnist5k training digits), with the PyTorch model that the files hold and 200 validation digits."""
    supernet = load_checkpoint(demo_checkpoint_path()).eval()
    space = supernet.space
    sampled = space.sample(np.random.default_rng(3), 1)[0]
    arch = supernet.validate(space.make(sampled.ks, sampled.e, sampled.d, RESOLUTION))
    out = tmp_path_factory.mktemp("phone")
    summary = export(arch.to_dict(), out, supernet=demo_checkpoint_path(), formats=["tflite"], int8=True, fp16=True,
                     calib="mnist5k", calib_samples=N_CALIB, jobs=2)
    files = {m.precision: m for m in summary.models}
    shape = tuple(space.input_shape(arch))
    # the PyTorch network the files hold: the subnet with its batch norms re-estimated on the same images
    bn_images = fit_calib(load_calibration("mnist5k", N_CALIB), shape)
    model = recalibrate_bn(supernet.extract(arch),
                           [torch.from_numpy(bn_images[i:i + BN_BATCH]) for i in range(0, len(bn_images), BN_BATCH)])
    val = load_dataset("mnist5k", split="val")
    index = np.sort(np.random.default_rng(0).permutation(len(val))[:N_IMAGES])
    images = fit_calib(val.x[index], shape)
    with torch.no_grad():
        torch_top1 = model.eval()(torch.from_numpy(images)).numpy().argmax(1)
    return {"arch": arch, "files": files, "images": images, "labels": val.y[index], "torch_top1": torch_top1,
            "summary": summary}


def litert_top1(path, images_nchw, layout):
    """Top-1 of a .tflite file fed by ai_edge_litert's Interpreter directly, one image at a time, in `layout`."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    images = np.moveaxis(images_nchw, 1, -1) if layout == "nhwc" else images_nchw
    top1 = []
    for image in images:
        x = image[None]
        if inp["dtype"] != np.float32:  # int8 model: quantize with the input's own scale and zero point
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale) + zero, -128, 127).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=inp["dtype"]))
        interpreter.invoke()
        top1.append(int(interpreter.get_tensor(out["index"]).argmax()))
    return np.array(top1)


def input_shape(path):
    from ai_edge_litert.interpreter import Interpreter

    return [int(d) for d in Interpreter(model_path=str(path)).get_input_details()[0]["shape"]]


@pytest.mark.slow
def test_tflite_takes_nhwc_input_and_matches_pytorch_top1_on_mnist(demo):
    fp32 = demo["files"]["fp32"]
    assert input_shape(fp32.path) == [1, RESOLUTION, RESOLUTION, 3]
    assert fp32.input_shape == (1, RESOLUTION, RESOLUTION, 3) and fp32.input_layout == "NHWC"
    top1 = litert_top1(fp32.path, demo["images"], "nhwc")
    assert np.array_equal(top1, demo["torch_top1"])
    assert np.mean(top1 == demo["labels"]) > 0.8  # a trained network on real digits, not noise
    assert fp32.validation["passed"] and fp32.validation["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_int8_nhwc_agrees_with_pytorch_on_98_percent(demo):
    int8 = demo["files"]["int8"]
    assert input_shape(int8.path) == [1, RESOLUTION, RESOLUTION, 3]
    agreement = float(np.mean(litert_top1(int8.path, demo["images"], "nhwc") == demo["torch_top1"]))
    print(f"int8 NHWC: top-1 agrees with PyTorch on {agreement:.1%} of {N_IMAGES} digits, "
          f"{int8.bytes} bytes ({int8.meta['size_ratio']:.2f} of fp32)")
    assert agreement >= 0.98


@pytest.mark.slow
def test_fp16_roughly_halves_the_file_and_agrees(demo):
    fp16, fp32 = demo["files"]["fp16"], demo["files"]["fp32"]
    side = read_sidecar(fp16.path)
    top1 = litert_top1(fp16.path, demo["images"], "nhwc")
    agreement = float(np.mean(top1 == demo["torch_top1"]))
    print(f"fp16: {fp16.bytes} bytes vs fp32 {fp32.bytes} ({fp16.bytes / fp32.bytes:.2f}), max diff "
          f"{fp16.validation['max_abs_diff']:.2e} (tolerance {fp16.validation['atol']:.2e}), top-1 agreement "
          f"{agreement:.1%}")
    assert fp16.bytes <= 0.65 * fp32.bytes and side["size_ratio"] == pytest.approx(fp16.bytes / side["fp32_bytes"])
    assert agreement >= 0.99
    assert side["precision"] == "fp16" and side["validation"]["passed"]
    assert side["validation"]["rtol"] == 1e-2 and side["validation"]["atol"] > 0  # the looser tolerance, recorded
    assert input_shape(fp16.path) == [1, RESOLUTION, RESOLUTION, 3]


@pytest.mark.slow
def test_sidecar_and_tflite_carry_input_size_layout_normalisation_and_labels(demo):
    for precision, exported in demo["files"].items():
        side = read_sidecar(exported.path)
        embedded = read_tflite_metadata(exported.path)
        expected = {
            "input_shape": [1, RESOLUTION, RESOLUTION, 3], "input_layout": "NHWC", "input_dtype": "float32",
            "image_size": [RESOLUTION, RESOLUTION], "channels": 3, "labels": [str(d) for d in range(10)],
            "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3,
                              "formula": "(pixel / 255 - mean) / std, per channel"},
        }
        for key, value in expected.items():
            assert side[key] == value, (precision, key)
            assert embedded[key] == value, (precision, key)
        assert embedded["precision"] == precision and embedded["arch_key"] == demo["arch"].key
        assert side["tflite_metadata"] == "hwnas.json" and side["export_config"]["tflite_layout"] == "nhwc"
    assert not demo["summary"].warnings


def test_recorded_normalisation_is_what_the_data_loaders_apply():
    """(pixel / 255 - mean) / std with the recorded mean and std gives exactly hwnas.data's images."""
    from hwnas.data import _normalise

    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    mean, std = (np.array(v, dtype=np.float32) for v in HWNAS_NORMALIZATION)
    np.testing.assert_allclose((pixels / 255.0 - mean) / std, _normalise(pixels), atol=1e-6)


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


@pytest.mark.slow
def test_nchw_layout_still_exports_and_matches(tmp_path, capsys, demo):
    code, out, err = run(["export", demo["arch"].key, "--supernet", str(demo_checkpoint_path()), "--format", "tflite",
                          "--tflite-layout", "nchw", "--calib", "mnist5k", "--calib-samples", str(N_CALIB),
                          "--labels", ",".join("zero one two three four five six seven eight nine".split()),
                          "--out", str(tmp_path), "--json", "--jobs", "1"], capsys)
    assert code == 0, err
    [result] = json.loads(out)
    assert result["input_layout"] == "NCHW" and result["input_shape"] == [1, 3, RESOLUTION, RESOLUTION]
    assert input_shape(result["path"]) == [1, 3, RESOLUTION, RESOLUTION]
    assert np.array_equal(litert_top1(result["path"], demo["images"], "nchw"), demo["torch_top1"])
    side = read_sidecar(result["path"])
    assert side["input_layout"] == "NCHW" and side["labels"][3] == "three"
    assert read_tflite_metadata(result["path"])["labels"][3] == "three"


@pytest.mark.parametrize("argv, message", [
    (["--tflite-layout", "nhcw"], "unknown TFLite input layout 'nhcw'"),
    (["--fp16", "--format", "onnx"], "--fp16 writes TFLite models"),
    (["--labels", "a,b"], "2 labels given but the network has 1000 classes"),
])
def test_bad_phone_options_fail_in_one_line(tmp_path, capsys, argv, message):
    arch = create("ofa-mbv3").sample(np.random.default_rng(0), 1)[0].key
    code, out, err = run(["export", arch, "--space", "ofa-mbv3", "--out", str(tmp_path / "m"), *argv], capsys)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m").exists()
