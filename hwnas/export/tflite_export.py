"""PyTorch -> TFLite through litert-torch (no TensorFlow), and int8 full-integer quantization with
ai-edge-quantizer (static: int8 weights and activations, calibrated on the given data)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hwnas.errors import ExportError
from hwnas.export.onnx_export import _first_line, _temp_beside

__all__ = ["to_tflite", "quantize_tflite", "fold_batchnorm"]

os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")


@contextlib.contextmanager
def _quiet():
    """litert-torch and the quantizer print progress and warnings; keep the caller's output clean."""
    previous = logging.root.manager.disable
    tqdm_disable = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        if tqdm_disable is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = tqdm_disable


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of an eval-mode `model` with each conv -> batch-norm pair fused into one conv (torch.fx).

    litert-torch would fold them too, but lowering fewer ops makes conversion ~40% faster. A model that
    torch.fx cannot trace is returned as it is. The caller's model is never modified.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fuse(model.eval(), inplace=False)
    except Exception:  # noqa: BLE001 - any tracing failure means: convert the model unchanged
        return model


def to_tflite(model: torch.nn.Module, input_shape: Sequence[int], path: str | Path) -> Path:
    """Write `model` (eval mode, static NCHW input) to `path` as a float32 TFLite flatbuffer; atomic."""
    path = Path(path)
    model = fold_batchnorm(model.eval())
    sample = torch.zeros(tuple(int(s) for s in input_shape), dtype=torch.float32)
    with _temp_beside(path) as tmp:
        try:
            with _quiet():
                import litert_torch

                edge_model = litert_torch.convert(model, (sample,))
                edge_model.export(str(tmp))
        except Exception as exc:  # litert-torch raises many exception types
            raise ExportError(f"TFLite export failed: {_first_line(exc)}") from exc
        os.replace(tmp, path)
    return path


def _calibrate_min_max(qt, data):
    """Activation ranges as the true min/max over all calibration samples.

    `Quantizer.calibrate` keeps an exponential moving average (factor 0.95) of per-sample ranges, so with
    batch-1 models the ranges follow the last ~20 samples and clip the rest (94.5% instead of 99% top-1
    agreement on the demo supernet's largest subnet); onnxruntime's MinMax uses the true range.
    """
    try:
        from ai_edge_quantizer import calibrator
        from ai_edge_quantizer.utils import qsv_utils

        calib = calibrator.Calibrator(qt._float_model_buffer, num_threads=1,
                                      qsv_update_func=qsv_utils.min_max_update)
        calib.calibrate(data, qt._recipe_manager)
        return calib.get_model_qsvs()
    except (AttributeError, TypeError, ImportError):  # another ai-edge-quantizer version: its own calibration
        return qt.calibrate(data, num_threads=1)


def quantize_tflite(fp32_path: str | Path, path: str | Path, calib: np.ndarray) -> Path:
    """Static int8 quantization of a float TFLite model (ai-edge-quantizer's `static_wi8_ai8` recipe).

    Every supported op runs on int8 weights (per-channel) and int8 activations, input and output included
    (full integer); the input/output scale and zero point are in the tensor details, and `TFLiteRunner`
    quantizes inputs and dequantizes outputs with them. ai-edge-quantizer is used rather than litert-torch's
    PT2E path because it quantizes the converted float file itself, calibrating with the LiteRT interpreter
    (the runtime that will run the model), and needs no second torch.export trace.
    """
    path = Path(path)
    calib = np.ascontiguousarray(calib, dtype=np.float32)
    with _temp_beside(path) as tmp:
        try:
            with _quiet():
                from ai_edge_quantizer import quantizer, recipe

                from hwnas.export.runners import load_tflite_interpreter

                interpreter = load_tflite_interpreter(fp32_path)
                signatures = interpreter.get_signature_list()
                if len(signatures) != 1:
                    raise ExportError(f"{fp32_path} has {len(signatures)} signatures; int8 export needs exactly one")
                key, sig = next(iter(signatures.items()))
                input_name = sig["inputs"][0]
                qt = quantizer.Quantizer(str(fp32_path))
                qt.load_quantization_recipe(recipe.static_wi8_ai8())
                samples = [{input_name: calib[i:i + 1]} for i in range(len(calib))]
                result = _calibrate_min_max(qt, {key: samples})
                quantized = qt.quantize(result, enable_progress_bar=False, enable_progress_report=False)
                tmp.write_bytes(bytes(quantized.quantized_model))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"TFLite int8 quantization failed: {_first_line(exc)}") from exc
        os.replace(tmp, path)
    return path
