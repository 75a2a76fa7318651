"""`export_model`: one torch module -> a validated ONNX or TFLite file (fp32, fp16 or int8) plus its sidecar JSON.

TFLite files take NHWC input by default (`ExportConfig.tflite_layout`) and carry their own description (input
shape, layout, normalisation, labels) as an embedded hwnas.json metadata buffer.

Everything is written under a temporary name inside the target folder and renamed into place only after
validation passed, so a failed or interrupted export leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas import __version__
from hwnas.errors import ExportError
from hwnas.export.config import SUFFIXES, TFLITE_METADATA_NAME, ExportConfig, check_format, check_precision
from hwnas.export.counting import count_flops_params
from hwnas.export.onnx_export import quantize_onnx, to_onnx
from hwnas.export.runners import create_runner, nhwc_shape, runtime_versions
from hwnas.export.sidecar import sidecar_path, write_sidecar
from hwnas.export.tflite_export import embed_tflite_metadata, fp16_tflite, quantize_tflite, to_tflite
from hwnas.export.validate import validate_export
from hwnas.files import sha256_file

__all__ = ["ExportedModel", "export_model", "sha256_file", "prepare_folder", "check_calib"]

MODEL_STEM = "model"


@dataclass(frozen=True)
class ExportedModel:
    """A written, (normally) validated model file and its sidecar."""

    path: Path
    format: str
    precision: str
    sha256: str
    bytes: int
    input_shape: tuple[int, ...]  # what the file takes, in its layout
    validation: dict[str, Any] | None = None
    sidecar: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    input_layout: str = "NCHW"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "precision": self.precision,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "input_shape": list(self.input_shape),
            "input_layout": self.input_layout,
            "validation": self.validation,
            "sidecar": str(self.sidecar) if self.sidecar else None,
        }


def prepare_folder(folder: str | Path) -> Path:
    """Create `folder` (and parents) and check that files can be written there; clear error otherwise."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"output path {folder} is a file; pass a folder (it is created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise ExportError(f"cannot create output folder {folder}: a file is in the way; choose another path") from None
    except OSError as exc:
        raise ExportError(f"cannot write to output folder {folder} ({exc.strerror or exc}); "
                          f"choose a writable folder") from None
    return folder


def check_calib(calib: Any, input_shape: Sequence[int]) -> np.ndarray:
    """Calibration data as float32 (N, C, H, W) matching the model's input (batch aside)."""
    if calib is None:
        raise ExportError("int8 export needs calibration data: pass calib= a float32 array (N, C, H, W) "
                          "(CLI: --calib DATASET or a .npy file)")
    array = np.asarray(calib, dtype=np.float32)
    if array.ndim != len(input_shape) or tuple(array.shape[1:]) != tuple(int(s) for s in input_shape[1:]):
        raise ExportError(f"calibration data has shape {tuple(array.shape)}; the model takes "
                          f"(N, {', '.join(str(int(s)) for s in input_shape[1:])})")
    if array.shape[0] == 0:
        raise ExportError("calibration data is empty; pass at least one sample (100 or more is better)")
    if not np.all(np.isfinite(array)):
        raise ExportError("calibration data holds NaN or infinity")
    return array


def _targets(path: str | Path, fmt: str) -> tuple[Path, Path]:
    """(model file, sidecar): a folder gets model.<ext> + model.json; a path ending in .onnx/.tflite is the file."""
    path = Path(path).expanduser()
    suffix = SUFFIXES[fmt]
    if path.suffix in SUFFIXES.values():
        if path.suffix != suffix:
            raise ExportError(f"output file {path} does not end in {suffix} but the format is {fmt}")
        if path.is_dir():
            raise ExportError(f"output path {path} is a folder; pass a file name or the folder that holds it")
        prepare_folder(path.parent)
        return path, sidecar_path(path)
    folder = prepare_folder(path)
    model_path = folder / f"{MODEL_STEM}{suffix}"
    return model_path, sidecar_path(folder)


def export_model(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    path: str | Path,
    format: str,
    precision: str = "fp32",
    calib: np.ndarray | None = None,
    validate: bool = True,
    meta: dict[str, Any] | None = None,
    config: ExportConfig | None = None,
) -> ExportedModel:
    """Export `model` (put in eval mode) with a static NCHW `input_shape` into `path` and write its sidecar.

    `path` is a folder (gets `model.onnx`/`model.tflite` and `model.json`) or a file ending in the format's
    suffix (its sidecar is `<stem>.json`). int8 needs `calib` (float32, (N, C, H, W)); fp16 (float16 weights)
    is TFLite only. A TFLite file takes `config.tflite_layout` input (NHWC by default). Unless `validate` is
    False the written file is run in its runtime on the same NCHW inputs as PyTorch (moved channels-last
    for an NHWC file) and compared; a mismatch raises ValidationError and nothing is written. `meta`
    (arch, space, ...) is added to the sidecar.
    """
    fmt, precision = check_format(format), check_precision(precision)
    config = config or ExportConfig()
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4 or input_shape[0] != 1:
        raise ExportError(f"input_shape must be (1, C, H, W), got {input_shape}")
    if precision == "fp16" and fmt != "tflite":
        raise ExportError(f"fp16 (float16 weights) is a TFLite precision; export {fmt} as fp32 or int8")
    layout = config.tflite_layout if fmt == "tflite" else "nchw"
    file_shape = nhwc_shape(input_shape) if layout == "nhwc" else input_shape
    described = _input_description(input_shape, layout, config)
    if precision == "int8":
        calib = check_calib(calib, input_shape)
    created = _missing_ancestors(Path(path).expanduser() if Path(path).suffix not in SUFFIXES.values()
                                 else Path(path).expanduser().parent)
    model_path, side_path = _targets(path, fmt)
    meta = dict(meta or {})
    label = str(meta.get("arch_key") or meta.get("op_key") or type(model).__name__)
    model = model.eval()
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=model_path.parent))
    try:
        written = _write(model, input_shape, work, fmt, precision, calib, config)
        fp32_bytes = (work / f"fp32{SUFFIXES[fmt]}").stat().st_size
        if fmt == "tflite":
            embed_tflite_metadata(written, {**described, "precision": precision, "format": fmt,
                                            **{k: meta[k] for k in ("arch_key", "op_key") if k in meta},
                                            "hwnas": __version__})
        validation = None
        if validate:
            inputs = _validation_inputs(input_shape, precision, calib, config)
            runner = create_runner(written, fmt, layout=layout)
            validation = validate_export(model, runner, inputs, precision, config, label=label).to_dict()
        export_s = time.perf_counter() - started
        sha, size = sha256_file(written), written.stat().st_size
        flops_m, params_m = count_flops_params(model, input_shape)
        record: dict[str, Any] = {
            "file": model_path.name,
            "format": fmt,
            "precision": precision,
            **described,
            "sha256": sha,
            "bytes": size,
            "flops_m": flops_m,
            "params_m": params_m,
        }
        if fmt == "tflite":
            record["tflite_metadata"] = TFLITE_METADATA_NAME
        record.update(meta)
        if precision != "fp32":
            record["fp32_bytes"] = fp32_bytes
            record["size_ratio"] = size / fp32_bytes
        if precision == "int8":
            record["calibration_samples"] = int(min(len(calib), config.int8_calibration_samples))
        record.update({
            "validation": validation,
            "export_config": config.to_dict(),
            "versions": {"hwnas": __version__, **runtime_versions()},
            "export_s": round(export_s, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        os.replace(written, model_path)
        _make_readable(model_path)
        write_sidecar(side_path, record)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        for folder in created:  # leave no empty folders behind a failed export
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    shutil.rmtree(work, ignore_errors=True)
    return ExportedModel(path=model_path, format=fmt, precision=precision, sha256=sha, bytes=size,
                         input_shape=file_shape, validation=validation, sidecar=side_path, meta=record,
                         input_layout=layout.upper())


def _input_description(input_shape: tuple[int, ...], layout: str, config: ExportConfig) -> dict[str, Any]:
    """What an app needs to feed the file: its input shape and layout, image size, channels, normalisation
    (per channel, on [0, 1] pixels) and class labels; the same dict goes into the sidecar and the .tflite."""
    channels = input_shape[1]
    normalization = None
    if config.input_mean is not None and config.input_std is not None:
        mean, std = list(config.input_mean), list(config.input_std)
        if len(mean) == 1:
            mean, std = mean * channels, std * channels
        if len(mean) != channels:
            raise ExportError(f"the normalisation has {len(mean)} mean values; the network takes {channels} channels")
        normalization = {"mean": mean, "std": std, "formula": "(pixel / 255 - mean) / std, per channel"}
    return {
        "input_shape": list(nhwc_shape(input_shape) if layout == "nhwc" else input_shape),
        "input_layout": layout.upper(),
        "input_dtype": "float32",
        "image_size": [input_shape[2], input_shape[3]],
        "channels": channels,
        "normalization": normalization,
        "labels": list(config.labels) if config.labels is not None else None,
    }


def _missing_ancestors(folder: Path) -> list[Path]:
    """The folders that do not exist yet on the way to `folder`, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _make_readable(path: Path) -> None:
    """Temporary files are created private (0600); a written model is an ordinary file (0644)."""
    try:
        os.chmod(path, 0o644)
    except OSError:
        pass


def _write(model: torch.nn.Module, input_shape: tuple[int, ...], work: Path, fmt: str, precision: str,
           calib: np.ndarray | None, config: ExportConfig) -> Path:
    fp32 = work / f"fp32{SUFFIXES[fmt]}"
    if fmt == "onnx":
        to_onnx(model, input_shape, fp32, opset=config.opset)
    else:
        to_tflite(model, input_shape, fp32, layout=config.tflite_layout)
    if precision == "fp32":
        return fp32
    target = work / f"{precision}{SUFFIXES[fmt]}"
    if precision == "fp16":
        return fp16_tflite(fp32, target)
    data = calib[: config.int8_calibration_samples]
    if fmt == "onnx":
        quantize_onnx(fp32, target, data)
    else:
        quantize_tflite(fp32, target, data, layout=config.tflite_layout)
    return target


def _validation_inputs(input_shape: tuple[int, ...], precision: str, calib: np.ndarray | None,
                       config: ExportConfig) -> np.ndarray:
    if precision == "int8" and calib is not None:
        return calib[: config.int8_validation_samples]
    rng = np.random.default_rng(config.seed)
    return rng.standard_normal((config.n_validation_inputs, *input_shape[1:])).astype(np.float32)
