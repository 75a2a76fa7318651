"""export_model: fp32 ONNX and TFLite files that match PyTorch, their sidecars, and atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.errors import ExportError, ValidationError
from hwnas.export import (
    ExportConfig,
    create_runner,
    export_model,
    read_sidecar,
    to_onnx,
    to_tflite,
    update_sidecar,
)
from hwnas.export.validate import torch_outputs
from hwnas.files import sha256_file

SHAPE = (1, 3, 16, 16)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_fp32_export_matches_pytorch_and_writes_sidecar(tmp_path, tiny_model, fmt):
    exported = export_model(tiny_model, SHAPE, tmp_path / "out", fmt, meta={"arch_key": "tiny", "note": "x"})
    assert exported.path == tmp_path / "out" / f"model.{fmt}"
    assert exported.validation["passed"] and exported.validation["max_abs_diff"] <= 1e-4
    assert exported.sha256 == sha256_file(exported.path)
    assert exported.bytes == exported.path.stat().st_size
    side = read_sidecar(tmp_path / "out")
    assert side["format"] == fmt and side["precision"] == "fp32"
    # the file's own input shape: TFLite files take NHWC by default, ONNX files NCHW
    file_shape = [1, 16, 16, 3] if fmt == "tflite" else list(SHAPE)
    assert side["input_shape"] == file_shape and side["input_layout"] == ("NHWC" if fmt == "tflite" else "NCHW")
    assert side["sha256"] == exported.sha256
    assert side["arch_key"] == "tiny" and side["note"] == "x"
    assert side["params_m"] == pytest.approx(sum(p.numel() for p in tiny_model.parameters()) / 1e6)
    assert side["flops_m"] > 0 and side["versions"]["hwnas"] and side["versions"]["torch"]
    # nothing but the model and its sidecar is left in the folder (no temporary files)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.json", f"model.{fmt}"]
    # the file runs on its own and gives PyTorch's answer on fresh inputs
    x = np.random.default_rng(5).standard_normal((3, *SHAPE[1:])).astype(np.float32)
    got = create_runner(exported.path, fmt).run(x)[0]
    np.testing.assert_allclose(got, torch_outputs(tiny_model, x)[0], atol=1e-4)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_every_output_of_a_multi_output_model_is_compared(tmp_path, two_heads, fmt):
    exported = export_model(two_heads, SHAPE, tmp_path / f"two.{fmt}", fmt)
    assert exported.sidecar == tmp_path / "two.json"
    runner = create_runner(exported.path, fmt)
    outputs = runner.run(np.zeros((2, *SHAPE[1:]), dtype=np.float32))
    assert [o.shape for o in outputs] == [(2, 8, 16, 16), (2, 5)]


class ExportDiverges(torch.nn.Module):
    """Computes something else while being traced or exported (as data-dependent Python code can)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if torch.jit.is_tracing() or torch.compiler.is_exporting() or isinstance(y, torch.fx.Proxy):
            return y * 1.5
        return y


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_mismatch_raises_validation_error_and_writes_nothing(tmp_path, fmt):
    target = tmp_path / "new" / "deeper"
    with pytest.raises(ValidationError, match=r"largest difference [0-9.e+-]+ in output 0"):
        export_model(ExportDiverges().eval(), SHAPE, target, fmt)
    assert not (tmp_path / "new").exists()  # folders it created are removed again
    existing = tmp_path / "kept"
    existing.mkdir()
    with pytest.raises(ValidationError):
        export_model(ExportDiverges().eval(), SHAPE, existing, fmt)
    assert list(existing.iterdir()) == []


def test_no_validate_skips_the_comparison(tmp_path):
    exported = export_model(ExportDiverges().eval(), SHAPE, tmp_path, "onnx", validate=False)
    assert exported.validation is None and exported.path.is_file()
    assert read_sidecar(tmp_path)["validation"] is None


def test_validator_collects_all_mismatches_in_one_error(tmp_path, two_heads):
    exported = export_model(two_heads, SHAPE, tmp_path, "onnx")
    with torch.no_grad():
        two_heads.conv.bias += 1.0  # both outputs now differ from the written file
    from hwnas.export import validate_export

    x = np.ones((2, *SHAPE[1:]), dtype=np.float32)
    with pytest.raises(ValidationError) as info:
        validate_export(two_heads, create_runner(exported.path, "onnx"), x, label="two heads")
    message = str(info.value)
    assert "output 0" in message and "output 1" in message and "two heads" in message
    result = validate_export(two_heads, create_runner(exported.path, "onnx"), x, raise_on_error=False)
    assert not result.passed and len(result.mismatches) == 2 and result.max_abs_diff >= 1.0


def test_tolerance_comes_from_the_export_config(tmp_path, tiny_model):
    strict = ExportConfig(atol=0.0)
    exported = export_model(tiny_model, SHAPE, tmp_path / "a", "onnx")
    if exported.validation["max_abs_diff"] == 0.0:
        pytest.skip("exporter reproduced PyTorch bit for bit; a zero tolerance cannot fail here")
    with pytest.raises(ValidationError, match="atol 0"):
        export_model(tiny_model, SHAPE, tmp_path / "b", "onnx", config=strict)


def test_thin_converters_write_runnable_files(tmp_path, tiny_model):
    onnx_path = to_onnx(tiny_model, SHAPE, tmp_path / "m.onnx", opset=13)
    tflite_path = to_tflite(tiny_model, SHAPE, tmp_path / "m.tflite")
    x = np.zeros(SHAPE, dtype=np.float32)
    for path, fmt in ((onnx_path, "onnx"), (tflite_path, "tflite")):
        assert create_runner(path, fmt).run(x)[0].shape == (1, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.tflite"]


def test_update_sidecar_adds_and_merges_fields(tmp_path, tiny_model):
    exported = export_model(tiny_model, SHAPE, tmp_path, "onnx")
    update_sidecar(exported.path, latency_ms={"pi4/litert": 4.5})
    data = update_sidecar(tmp_path, latency_ms={"pixel7/litert": 1.5}, measured_on="pixel7")
    assert data["latency_ms"] == {"pi4/litert": 4.5, "pixel7/litert": 1.5}
    assert json.loads((tmp_path / "model.json").read_text())["measured_on"] == "pixel7"
    assert data["sha256"] == exported.sha256


def test_output_path_that_is_a_file_is_refused(tmp_path, tiny_model):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="is a file"):
        export_model(tiny_model, SHAPE, blocker, "onnx")
    with pytest.raises(ExportError, match="cannot (create|write)"):
        export_model(tiny_model, SHAPE, blocker / "sub", "onnx")
    assert blocker.read_text() == "not a folder"


def test_unknown_format_precision_and_bad_shapes_are_clear_errors(tmp_path, tiny_model):
    with pytest.raises(ExportError, match="unknown export format 'tf'"):
        export_model(tiny_model, SHAPE, tmp_path, "tf")
    with pytest.raises(ExportError, match="unknown precision 'fp8'"):
        export_model(tiny_model, SHAPE, tmp_path, "onnx", precision="fp8")
    with pytest.raises(ExportError, match="fp16 .* is a TFLite precision"):
        export_model(tiny_model, SHAPE, tmp_path, "onnx", precision="fp16")
    with pytest.raises(ExportError, match="input_shape must be"):
        export_model(tiny_model, (3, 16, 16), tmp_path, "onnx")
    with pytest.raises(ExportError, match="does not end in .tflite"):
        export_model(tiny_model, SHAPE, tmp_path / "m.onnx", "tflite")
    assert list(tmp_path.iterdir()) == []
