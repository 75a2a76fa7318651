"""PyTorch -> ONNX (fp32), and int8 post-training static quantization through onnxruntime (QDQ)."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hwnas.errors import ExportError

__all__ = ["to_onnx", "quantize_onnx", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17
INPUT_NAME = "input"


def to_onnx(model: torch.nn.Module, input_shape: Sequence[int], path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write `model` (in eval mode, static input shape NCHW) to `path` as ONNX; atomic (temp name, then rename)."""
    path = Path(path)
    model = model.eval()
    sample = torch.zeros(tuple(int(s) for s in input_shape), dtype=torch.float32)
    with _temp_beside(path) as tmp:
        _export(model, sample, tmp, opset)
        os.replace(tmp, path)
    return path


def _export(model: torch.nn.Module, sample: torch.Tensor, path: Path, opset: int) -> None:
    # The TorchScript exporter is ~10x faster than the dynamo one on these small convnets; the dynamo
    # exporter is the fallback for modules it cannot trace.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (sample,), str(path), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], do_constant_folding=True)
            return
        except Exception as legacy_exc:  # exporters raise many types; fall back once, then report
            first = legacy_exc
        try:
            torch.onnx.export(model, (sample,), str(path), dynamo=True, opset_version=max(opset, 18),
                              input_names=[INPUT_NAME], verbose=False)
        except Exception as exc:
            raise ExportError(f"ONNX export failed: {_first_line(exc)} (TorchScript exporter: {_first_line(first)})"
                              ) from exc


def quantize_onnx(fp32_path: str | Path, path: str | Path, calib: np.ndarray) -> Path:
    """Int8 static quantization (QDQ, per-channel int8 weights, int8 activations, min-max calibration)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class _Reader(CalibrationDataReader):
        def __init__(self, name: str, data: np.ndarray):
            self.name, self.data, self.i = name, data, 0

        def get_next(self):
            if self.i >= len(self.data):
                return None
            self.i += 1
            return {self.name: self.data[self.i - 1:self.i]}

        def rewind(self):
            self.i = 0

    import onnx

    path = Path(path)
    calib = np.ascontiguousarray(calib, dtype=np.float32)
    name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    with _temp_beside(path) as tmp, _temp_beside(path, ".pre.onnx") as pre:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
                quantize_static(str(pre), str(tmp), _Reader(name, calib), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax)
        except Exception as exc:
            raise ExportError(f"ONNX int8 quantization failed: {_first_line(exc)}") from exc
        os.replace(tmp, path)
    return path


class _temp_beside:
    """A temporary file name next to `path` (same folder, so the final rename is atomic); removed on exit."""

    def __init__(self, path: Path, suffix: str | None = None):
        self.path, self.suffix = Path(path), suffix or Path(path).suffix

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".tmp{self.suffix}", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, *exc: object) -> None:
        self.tmp.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
