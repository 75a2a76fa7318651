"""One runner per format: load a written model file and run it on NCHW float32 inputs, sample by sample
(a TFLite file with NHWC input gets them moved channels-last)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from hwnas.errors import ExportError
from hwnas.export.config import FORMAT_RUNTIMES, TFLITE_METADATA_NAME, check_layout

__all__ = ["Runner", "OnnxRunner", "TFLiteRunner", "create_runner", "runtime_versions", "load_tflite_interpreter",
           "read_tflite_metadata", "nhwc_shape", "to_layout"]


class Runner(ABC):
    """Runs an exported model. `run(x)` takes a batch (N, ...) and returns one array per output, each (N, ...)."""

    format: str
    runtime: str

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads

    def run(self, inputs: np.ndarray) -> list[np.ndarray]:
        inputs = np.asarray(inputs, dtype=np.float32)
        per_sample = [self.run_one(inputs[i:i + 1]) for i in range(inputs.shape[0])]
        return [np.concatenate([outs[k] for outs in per_sample], axis=0) for k in range(len(per_sample[0]))]

    @abstractmethod
    def run_one(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs for one sample (batch of 1), in the model's output order."""


class OnnxRunner(Runner):
    format = "onnx"
    runtime = FORMAT_RUNTIMES["onnx"]

    def __init__(self, path: str | Path, threads: int | None = None):
        super().__init__(path, threads)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ExportError(f"onnxruntime cannot load {self.path}: {_first_line(exc)}") from exc
        self.input_name = self.session.get_inputs()[0].name

    def run_one(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(y) for y in self.session.run(None, {self.input_name: x})]


def load_tflite_interpreter(path: str | Path, threads: int | None = None):
    """A LiteRT interpreter (ai_edge_litert), else tflite_runtime's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on what is installed
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ExportError("no TFLite runtime: install ai-edge-litert (or tflite-runtime)") from None
    try:
        return Interpreter(model_path=str(path), num_threads=threads)
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError
        raise ExportError(f"LiteRT cannot load {path}: {_first_line(exc)}") from exc


def nhwc_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """(N, C, H, W) -> (N, H, W, C); shapes of other ranks are returned as they are."""
    shape = tuple(int(s) for s in shape)
    return (shape[0], *shape[2:], shape[1]) if len(shape) >= 3 else shape


def to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """A batch of NCHW arrays in `layout` ("nhwc" moves channels last; 2-D inputs have no channels to move)."""
    if check_layout(layout) == "nhwc" and x.ndim >= 3:
        return np.ascontiguousarray(np.moveaxis(x, 1, -1))
    return x


def read_tflite_metadata(path: str | Path) -> dict | None:
    """The hwnas.json metadata embedded in a .tflite file (input shape, layout, normalisation, labels), or None
    for a file without it (exported before hwnas embedded it, or by another tool)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - depends on what is installed
        return None
    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if (entry.Name() or b"").decode() != TFLITE_METADATA_NAME:
                continue
            buffer = model.Buffers(entry.Buffer())
            if buffer.DataLength():
                raw = buffer.DataAsNumpy().tobytes()
            else:  # a buffer stored after the flatbuffer (files over 2 GB)
                raw = data[buffer.Offset():buffer.Offset() + buffer.Size()]
            found = json.loads(raw)
            return found if isinstance(found, dict) else None
    except Exception:  # noqa: BLE001 - a damaged file: the interpreter will say what is wrong with it
        return None
    return None


class TFLiteRunner(Runner):
    """Runs a .tflite file on NCHW inputs. `layout` is the file's input layout: by default the one its embedded
    hwnas.json records, else NCHW (files hwnas exported before it recorded one were NCHW)."""

    format = "tflite"
    runtime = FORMAT_RUNTIMES["tflite"]

    def __init__(self, path: str | Path, threads: int | None = None, layout: str | None = None):
        super().__init__(path, threads)
        if layout is None:
            layout = str((read_tflite_metadata(self.path) or {}).get("input_layout", "nchw"))
        self.layout = check_layout(layout)
        self.interpreter = load_tflite_interpreter(self.path, threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        outputs = self.interpreter.get_output_details()
        signatures = self.interpreter.get_signature_list()
        if len(signatures) == 1:
            # the signature names outputs in the PyTorch order (output_0, output_1, ...)
            names = next(iter(signatures.values()))["outputs"]
            runner = self.interpreter.get_signature_runner(next(iter(signatures)))
            by_index = {d["index"]: d for d in outputs}
            ordered = runner.get_output_details()
            outputs = [by_index.get(ordered[name]["index"], ordered[name]) for name in sorted(names, key=_natural)]
        self.outputs = outputs

    def run_one(self, x: np.ndarray) -> list[np.ndarray]:
        x = to_layout(x, self.layout)
        self.interpreter.set_tensor(self.input["index"], _quantize(x, self.input))
        self.interpreter.invoke()
        return [_dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self.outputs]


def _natural(name: str) -> tuple[int, str]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 0, name)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        return np.array(y, dtype=np.float32)
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


RUNNERS: dict[str, type[Runner]] = {"onnx": OnnxRunner, "tflite": TFLiteRunner}


def create_runner(path: str | Path, fmt: str, threads: int | None = None, layout: str | None = None) -> Runner:
    """A runner for `path`; `layout` overrides a TFLite file's recorded input layout (ONNX files are NCHW)."""
    try:
        cls = RUNNERS[fmt]
    except KeyError:
        raise ExportError(f"no runner for format {fmt!r}; choose one of: {', '.join(RUNNERS)}") from None
    if cls is TFLiteRunner:
        return TFLiteRunner(path, threads, layout)
    return cls(path, threads)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def runtime_versions() -> dict[str, str | None]:
    """Versions of the exporters and runtimes an exported model was made and checked with."""
    names = ["torch", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert", "ai-edge-quantizer"]
    return {name: _version(name) for name in names}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
