"""Export: PyTorch -> ONNX and TFLite (fp32, int8), validated against PyTorch, with a sidecar JSON per model.

`export_model` for any module, `export_arch` for a space's subnet, `export_operators` for a space's
operators (profiling). `to_onnx` / `to_tflite` are the bare converters.
"""

from __future__ import annotations

from hwnas.export.arch import arch_folder, export_arch, export_archs, random_calib
from hwnas.export.config import FORMAT_RUNTIMES, FORMATS, PRECISIONS, ExportConfig, format_for_runtime
from hwnas.export.core import ExportedModel, export_model
from hwnas.export.onnx_export import quantize_onnx, to_onnx
from hwnas.export.operators import ExportedOp, export_operators, op_file_name
from hwnas.export.runners import OnnxRunner, Runner, TFLiteRunner, create_runner, runtime_versions
from hwnas.export.sidecar import read_sidecar, sidecar_path, update_sidecar, write_sidecar
from hwnas.export.tflite_export import quantize_tflite, to_tflite
from hwnas.export.validate import ValidationResult, validate_export

__all__ = [
    "FORMATS",
    "FORMAT_RUNTIMES",
    "PRECISIONS",
    "ExportConfig",
    "ExportedModel",
    "ExportedOp",
    "OnnxRunner",
    "Runner",
    "TFLiteRunner",
    "ValidationResult",
    "arch_folder",
    "create_runner",
    "export_arch",
    "export_archs",
    "export_model",
    "export_operators",
    "format_for_runtime",
    "op_file_name",
    "quantize_onnx",
    "quantize_tflite",
    "random_calib",
    "read_sidecar",
    "runtime_versions",
    "sidecar_path",
    "to_onnx",
    "to_tflite",
    "update_sidecar",
    "validate_export",
    "write_sidecar",
]
