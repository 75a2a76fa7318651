"""Int8 post-training static quantization: ONNX (onnxruntime QDQ) and TFLite (ai-edge-quantizer)."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import ExportError
from hwnas.export import ExportConfig, create_runner, export_model, read_sidecar
from hwnas.export.validate import torch_outputs

SHAPE = (1, 3, 16, 16)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_int8_export_runs_and_agrees_with_pytorch(tmp_path, tiny_model, calib, fmt):
    exported = export_model(tiny_model, SHAPE, tmp_path, fmt, precision="int8", calib=calib)
    v = exported.validation
    assert v["passed"] and v["precision"] == "int8" and v["n_inputs"] == len(calib)
    assert v["top1_agreement"] >= ExportConfig().int8_min_top1_agreement
    assert v["nrmse"] <= ExportConfig().int8_max_nrmse
    side = read_sidecar(tmp_path)
    assert side["precision"] == "int8" and side["calibration_samples"] == len(calib)
    assert side["bytes"] < side["fp32_bytes"]
    assert side["size_ratio"] == pytest.approx(side["bytes"] / side["fp32_bytes"])
    # the int8 file is really quantized: it differs from PyTorch more than a float export would
    fresh = np.random.default_rng(9).standard_normal((8, *SHAPE[1:])).astype(np.float32)
    got = create_runner(exported.path, fmt).run(fresh)[0]
    ref = torch_outputs(tiny_model, fresh)[0]
    assert np.abs(got - ref).max() > 1e-4
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.75


def test_int8_needs_matching_calibration_data(tmp_path, tiny_model, calib):
    with pytest.raises(ExportError, match="needs calibration data"):
        export_model(tiny_model, SHAPE, tmp_path, "onnx", precision="int8")
    with pytest.raises(ExportError, match=r"shape \(4, 3, 8, 8\)"):
        export_model(tiny_model, SHAPE, tmp_path, "onnx", precision="int8", calib=calib[:4, :, :8, :8])
    bad = calib[:4].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ExportError, match="NaN"):
        export_model(tiny_model, SHAPE, tmp_path, "tflite", precision="int8", calib=bad)
    assert list(tmp_path.iterdir()) == []


def test_int8_tolerances_come_from_the_export_config(tmp_path, tiny_model, calib):
    from hwnas.errors import ValidationError

    impossible = ExportConfig(int8_max_nrmse=0.0)
    with pytest.raises(ValidationError, match="int8 tolerance 0"):
        export_model(tiny_model, SHAPE, tmp_path / "q", "onnx", precision="int8", calib=calib, config=impossible)
    assert not (tmp_path / "q").exists()
