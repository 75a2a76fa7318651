"""PyTorch -> TFLite through litert-torch (no TensorFlow), with an NHWC or NCHW input; fp16 weights and int8
full-integer quantization with ai-edge-quantizer; hwnas.json metadata embedded in the flatbuffer."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hwnas.errors import ExportError
from hwnas.export.config import TFLITE_METADATA_NAME, check_layout
from hwnas.export.onnx_export import _first_line, _temp_beside
from hwnas.export.runners import load_tflite_interpreter, nhwc_shape, to_layout

__all__ = ["to_tflite", "quantize_tflite", "fp16_tflite", "fold_batchnorm", "embed_tflite_metadata"]

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


def to_tflite(model: torch.nn.Module, input_shape: Sequence[int], path: str | Path, layout: str = "nhwc") -> Path:
    """Write `model` (eval mode, static NCHW `input_shape`) to `path` as a float32 TFLite flatbuffer; atomic.

    With `layout="nhwc"` the file takes [N, H, W, C] (what Android apps, the GPU delegate and NNAPI expect):
    the model is wrapped with litert-torch's `to_channel_last_io(model, args=[0])` (a permute to NCHW at the
    input, which the converter's layout pass cancels against its own NCHW->NHWC transpose). Outputs keep
    PyTorch's shapes (a classifier's [N, classes] either way).
    """
    path = Path(path)
    layout = check_layout(layout)
    model = fold_batchnorm(model.eval())
    shape = tuple(int(s) for s in input_shape)
    if layout == "nhwc" and len(shape) >= 3:
        import litert_torch

        model = litert_torch.to_channel_last_io(model, args=[0]).eval()
        shape = nhwc_shape(shape)
    sample = torch.zeros(shape, dtype=torch.float32)
    with _temp_beside(path) as tmp:
        try:
            with _quiet():
                import litert_torch

                edge_model = litert_torch.convert(model, (sample,))
                edge_model.export(str(tmp))
        except Exception as exc:  # litert-torch raises many exception types
            raise ExportError(f"TFLite export failed: {_first_line(exc)}") from exc
        # the file says its own layout, so runners feed it right (export_model adds the rest of the description)
        embed_tflite_metadata(tmp, {"input_shape": list(shape), "input_layout": layout.upper()})
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


def quantize_tflite(fp32_path: str | Path, path: str | Path, calib: np.ndarray, layout: str = "nhwc") -> Path:
    """Static int8 quantization of a float TFLite model (ai-edge-quantizer's `static_wi8_ai8` recipe).

    `calib` holds NCHW images; they are fed in the file's input `layout` (as `to_tflite` wrote it).

    Every supported op runs on int8 weights (per-channel) and int8 activations, input and output included
    (full integer); the input/output scale and zero point are in the tensor details, and `TFLiteRunner`
    quantizes inputs and dequantizes outputs with them. ai-edge-quantizer is used rather than litert-torch's
    PT2E path because it quantizes the converted float file itself, calibrating with the LiteRT interpreter
    (the runtime that will run the model), and needs no second torch.export trace.
    """
    path = Path(path)
    calib = to_layout(np.ascontiguousarray(calib, dtype=np.float32), layout)
    with _temp_beside(path) as tmp:
        try:
            with _quiet():
                from ai_edge_quantizer import quantizer, recipe

                interpreter = load_tflite_interpreter(fp32_path)
                signatures = interpreter.get_signature_list()
                if len(signatures) != 1:
                    raise ExportError(f"{fp32_path} has {len(signatures)} signatures; int8 export needs exactly one")
                key, sig = next(iter(signatures.items()))
                input_name = sig["inputs"][0]
                expected = tuple(int(d) for d in interpreter.get_input_details()[0]["shape"][1:])
                if tuple(calib.shape[1:]) != expected:
                    raise ExportError(f"calibration images in {layout.upper()} have shape {tuple(calib.shape[1:])} "
                                      f"per image; {fp32_path} takes {expected}: pass the layout it was written in")
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


def fp16_tflite(fp32_path: str | Path, path: str | Path) -> Path:
    """float16 weights, float32 compute: LiteRT's fp16 weight quantization, done with ai-edge-quantizer.

    The recipe is a weight-only config with `num_bits=16` and the FLOAT_CASTING algorithm (ai-edge-quantizer's
    `RecipeManager.add_weight_only_config`: "allow float quantization for FLOAT_CASTING ... to support
    weight-only quantization with fp16 weights"): the weights of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
    (and transposed conv, embedding lookup) are stored as float16 and a DEQUANTIZE op turns them into float32
    once, when the interpreter prepares the model; inputs, outputs and arithmetic stay float32 (the GPU
    delegate may run the ops in float16 itself). No calibration data is needed.
    """
    path = Path(path)
    with _temp_beside(path) as tmp:
        try:
            with _quiet():
                from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe_manager

                manager = recipe_manager.RecipeManager()
                manager.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                               num_bits=16,
                                               algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
                qt = quantizer.Quantizer(str(fp32_path))
                qt.load_quantization_recipe(manager.get_quantization_recipe())
                quantized = qt.quantize(enable_progress_bar=False, enable_progress_report=False)
                tmp.write_bytes(bytes(quantized.quantized_model))
        except Exception as exc:
            raise ExportError(f"TFLite fp16 conversion failed: {_first_line(exc)}") from exc
        os.replace(tmp, path)
    return path


def embed_tflite_metadata(path: str | Path, data: dict) -> Path:
    """Store `data` as JSON in the .tflite file's own metadata, as a buffer named "hwnas.json"; atomic.

    TFLite's standard metadata (the `TFLITE_METADATA` buffer that Android Studio and the Task Library read) is
    written with the `tflite_support` package, which needs TensorFlow; hwnas writes a plain JSON buffer instead,
    with the TFLite schema bindings that ai-edge-litert ships (`ai_edge_litert.schema_py_generated`,
    `ai_edge_litert.tools.flatbuffer_utils`). Any flatbuffer reader finds it in `Model.metadata`; the
    interpreter ignores it. A buffer of the same name is replaced.
    """
    path = Path(path)
    payload = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    with _temp_beside(path) as tmp:
        try:
            from ai_edge_litert import schema_py_generated as schema
            from ai_edge_litert.tools import flatbuffer_utils

            model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
            entry = next((m for m in (model.metadata or []) if _name(m) == TFLITE_METADATA_NAME), None)
            if entry is None:
                model.buffers.append(schema.BufferT())
                entry = schema.MetadataT()
                entry.name = TFLITE_METADATA_NAME.encode()
                entry.buffer = len(model.buffers) - 1
                model.metadata = [*(model.metadata or []), entry]
            model.buffers[entry.buffer].data = np.frombuffer(payload, dtype=np.uint8)
            tmp.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
        except Exception as exc:  # flatbuffers raise many types on a file that is not a model
            raise ExportError(f"cannot write metadata into {path}: {_first_line(exc)}") from exc
        os.replace(tmp, path)
    return path


def _name(metadata) -> str:
    name = metadata.name
    return name.decode() if isinstance(name, bytes) else str(name)
