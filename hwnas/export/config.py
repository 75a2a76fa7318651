"""Export settings: formats, precisions and the tolerances the validator holds exported models to."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hwnas.errors import ExportError

__all__ = ["FORMATS", "PRECISIONS", "SUFFIXES", "FORMAT_RUNTIMES", "ExportConfig", "check_format", "check_precision",
           "format_for_runtime"]

FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "int8")
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
# the runtime (as a device config and a measurement name it) that runs each format: the one home of this fact
FORMAT_RUNTIMES = {"onnx": "onnxruntime", "tflite": "tflite"}


@dataclass(frozen=True)
class ExportConfig:
    """How to export and how close the exported model must stay to the PyTorch model.

    fp32 exports must match every output within `atol` on `n_validation_inputs` random inputs.
    int8 exports are compared on (up to `int8_validation_samples`) calibration inputs: a classifier's
    top-1 must agree with PyTorch on at least `int8_min_top1_agreement` of them, and every output's RMS
    difference must stay under `int8_max_nrmse` times the reference output's standard deviation (a
    signal-to-quantisation-noise bound; the largest difference is reported but not bounded, because
    min-max calibration clips rare outliers by design). On the demo supernet's subnets int8 models sit at
    0.03-0.08 with 99% top-1 agreement; a collapsed quantization (constant output) reads 1.0 or more.
    """

    opset: int = 17
    atol: float = 1e-4
    n_validation_inputs: int = 2
    int8_min_top1_agreement: float = 0.9
    int8_max_nrmse: float = 0.35
    int8_validation_samples: int = 64
    int8_calibration_samples: int = 128
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_format(fmt: str) -> str:
    value = str(fmt).strip().lower()
    if value not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return value


def check_precision(precision: str) -> str:
    value = str(precision).strip().lower()
    if value not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    return value


def format_for_runtime(runtime: str) -> str:
    """The export format a device runtime runs ("onnxruntime" -> "onnx", "tflite" -> "tflite")."""
    for fmt, name in FORMAT_RUNTIMES.items():
        if name == runtime:
            return fmt
    raise ExportError(f"runtime {runtime!r} runs no exported format; use one of {', '.join(FORMAT_RUNTIMES.values())}")
