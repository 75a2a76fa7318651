"""Export settings: formats, precisions and the tolerances the validator holds exported models to."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hwnas.errors import ExportError

__all__ = ["FORMATS", "PRECISIONS", "SUFFIXES", "FORMAT_RUNTIMES", "LAYOUTS", "TFLITE_METADATA_NAME", "ExportConfig",
           "check_format", "check_precision", "check_layout", "format_for_runtime", "layout_is_current"]

FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "fp16", "int8")  # fp16: float16 weights, float32 compute (TFLite only)
# the input layout of a TFLite file: NHWC is what Android apps, the GPU delegate and NNAPI expect; NCHW is PyTorch's
LAYOUTS = ("nhwc", "nchw")
# the name of the metadata buffer (in the flatbuffer's `metadata` list) that holds a .tflite file's hwnas.json
TFLITE_METADATA_NAME = "hwnas.json"
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
    fp16 (float16 weights, float32 compute) exports must match every output within `fp16_rtol` times the
    largest absolute PyTorch output (rounding weights to 11 significant bits moves the demo's logits by ~0.1%).

    `tflite_layout` is the input layout of TFLite files ("nhwc": [1, H, W, C], or PyTorch's "nchw"); ONNX
    files are always NCHW. `input_mean`, `input_std` (per channel, applied to [0, 1] pixels) and `labels`
    (class names) describe the input and output for apps: they go into the sidecar and the .tflite's metadata.
    """

    opset: int = 17
    atol: float = 1e-4
    n_validation_inputs: int = 2
    int8_min_top1_agreement: float = 0.9
    int8_max_nrmse: float = 0.35
    int8_validation_samples: int = 64
    int8_calibration_samples: int = 128
    fp16_rtol: float = 1e-2
    tflite_layout: str = "nhwc"
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tflite_layout", check_layout(self.tflite_layout))
        for name in ("input_mean", "input_std", "labels"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(str(v) if name == "labels" else float(v) for v in value))
        if (self.input_mean is None) != (self.input_std is None):
            raise ExportError("give input_mean and input_std together (the normalisation x = (pixel - mean) / std)")
        if self.input_std is not None and (len(self.input_std) != len(self.input_mean) or min(self.input_std) <= 0):
            raise ExportError("input_std must hold one positive value per input_mean value")

    def to_dict(self) -> dict[str, Any]:
        """The export settings (the input description is recorded beside them, not here)."""
        data = asdict(self)
        for name in ("input_mean", "input_std", "labels"):
            data.pop(name)
        return data


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


def check_layout(layout: str) -> str:
    value = str(layout).strip().lower()
    if value not in LAYOUTS:
        raise ExportError(f"unknown TFLite input layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    return value


def layout_is_current(sidecar: dict, fmt: str) -> bool:
    """Whether a cached export (its sidecar record) has the input layout exports get now: a TFLite file made
    before NHWC became the default (no `input_layout`: NCHW) is exported again, so that one profile never mixes
    layouts."""
    if fmt != "tflite":
        return True
    return str(sidecar.get("input_layout") or "nchw").lower() == ExportConfig().tflite_layout


def format_for_runtime(runtime: str) -> str:
    """The export format a device runtime runs ("onnxruntime" -> "onnx", "tflite" -> "tflite")."""
    for fmt, name in FORMAT_RUNTIMES.items():
        if name == runtime:
            return fmt
    raise ExportError(f"runtime {runtime!r} runs no exported format; use one of {', '.join(FORMAT_RUNTIMES.values())}")
