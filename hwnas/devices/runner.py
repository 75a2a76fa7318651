"""The on-device runner: measures models listed in a manifest and streams one JSON line per model.

ONE self-contained file (stdlib + numpy + whichever runtime is installed; Python >= 3.8; no hwnas imports),
copied to the device by the transports. Usage on the device:

    python3 runner.py info                  fingerprint as one JSON object
    python3 runner.py run MANIFEST.json     measure; JSON lines on stdout, same lines appended to the results file
    python3 runner.py unpack ARCHIVE FOLDER unpack pushed models (named by sha256, each checked)
    python3 runner.py reap RUNS OWNER       stop the runners of OWNER's abandoned batches under the folder RUNS

`run` is a supervisor (`Supervisor`): a worker process loads and times the models, so a model that hangs or
crashes the runtime is reported failed and the batch goes on in a fresh worker; every finished (model, round) is
appended to the results file at once, so a second `run` of the same manifest resumes (or, while the first is
alive, follows it). The manifest, the records, stop, resume and follow are described once, in docs/devices.md
("Runner protocol"); the host side is hwnas/devices/runner_host.py.
"""

from __future__ import annotations

import json
import math
import os
import platform
import select
import signal
import subprocess
import sys
import time

RUNNER_VERSION = 1
HEARTBEAT_S = 5.0
FOLLOW_POLL_S = 0.02

try:  # POSIX advisory locks; without them (Windows) a second `run` simply resumes.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


# ----------------------------------------------------------------------------------------------------------
# device state and fingerprint


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, ValueError):
        return None


def _cpu_dirs():
    base = "/sys/devices/system/cpu"
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("cpu") and n[3:].isdigit())
    except OSError:
        return []
    return [os.path.join(base, n) for n in sorted(names, key=lambda n: int(n[3:]))]


def cpu_freqs_mhz():
    freqs = []
    for cpu in _cpu_dirs():
        value = _read(os.path.join(cpu, "cpufreq", "scaling_cur_freq"))
        if value and value.isdigit():
            freqs.append(int(value) / 1000.0)
    return freqs


def temperatures_c():
    temps = {}
    base = "/sys/class/thermal"
    try:
        zones = sorted(n for n in os.listdir(base) if n.startswith("thermal_zone"))
    except OSError:
        return temps
    for zone in zones:
        raw = _read(os.path.join(base, zone, "temp"))
        kind = _read(os.path.join(base, zone, "type")) or zone
        try:
            value = int(raw)
        except (TypeError, ValueError):
            continue
        temps[f"{zone}:{kind}"] = value / 1000.0 if abs(value) > 200 else float(value)
    return temps


def device_state():
    state = {}
    freqs = cpu_freqs_mhz()
    if freqs:
        state["cpu_freq_mhz"] = freqs
    temps = temperatures_c()
    if temps:
        state["temperature_c"] = temps
    return state


def _cpu_model():
    text = _read("/proc/cpuinfo") or ""
    for field in ("model name", "Hardware", "Processor", "cpu model", "uarch"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == field and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _module_version(name):
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return metadata.version(name)
    except Exception:
        return None


def runtimes_found():
    """Which runtimes import here, with versions (None where missing)."""
    found = {}
    tfl = _tflite_interpreter_class()
    found["tflite"] = None if tfl is None else f"{tfl[1]} {tfl[2]}"
    try:
        import onnxruntime

        found["onnxruntime"] = onnxruntime.__version__
        found["onnxruntime_providers"] = list(onnxruntime.get_available_providers())
    except Exception:
        found["onnxruntime"] = None
    found["torch"] = _module_version("torch")  # importing torch takes seconds: read its version only
    return found


def fingerprint():
    try:
        import numpy

        numpy_version = numpy.__version__
    except Exception:
        numpy_version = None
    info = {
        "runner_version": RUNNER_VERSION,
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "abi": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": numpy_version,
        "runtimes": runtimes_found(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "nvidia_gpu": os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0"),
    }
    info.update(device_state())
    return info


# ----------------------------------------------------------------------------------------------------------
# runtimes (imported lazily, inside the worker)


def _tflite_interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert", _module_version("ai-edge-litert") or "?"
    except Exception:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime", _module_version("tflite-runtime") or "?"
    except Exception:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow", tf.__version__
    except Exception:
        return None


def _random_input(np, shape, dtype, rng):
    dims = []
    for d in shape:
        try:
            d = int(d)
        except (TypeError, ValueError):  # symbolic ONNX dimension
            d = 1
        dims.append(d if d > 0 else 1)
    shape = dims
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return np.zeros(shape, dtype=dtype)


class TfliteModel:
    def __init__(self, path, threads, use_gpu, np, rng):
        found = _tflite_interpreter_class()
        if found is None:
            raise RuntimeError("no TFLite runtime; install one with `python3 -m pip install ai-edge-litert`")
        if use_gpu:
            raise RuntimeError("the TFLite GPU delegate is not available to the Python runner; measure GPU "
                               "TFLite models with benchmark_model --use_gpu (adb transport)")
        interpreter_cls = found[0]
        self.interpreter = interpreter_cls(model_path=path, num_threads=threads)
        self.interpreter.allocate_tensors()
        for detail in self.interpreter.get_input_details():
            data = _random_input(np, list(detail["shape"]), detail["dtype"], rng)
            self.interpreter.set_tensor(detail["index"], data)

    def time_once_ms(self):
        start = time.perf_counter()
        self.interpreter.invoke()
        return (time.perf_counter() - start) * 1000.0


ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(bool)": "bool",
}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "ROCMExecutionProvider",
                 "CoreMLExecutionProvider", "DmlExecutionProvider")


class OnnxModel:
    def __init__(self, path, threads, use_gpu, np, rng):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if use_gpu:
            gpu = [p for p in GPU_PROVIDERS if p in available]
            if not gpu:
                raise RuntimeError("use_gpu asked but onnxruntime has no GPU provider (found {}); install "
                                   "onnxruntime-gpu".format(", ".join(available)))
            providers = gpu + providers
        self.session = ort.InferenceSession(path, sess_options=options, providers=providers)
        self.feeds = {}
        for inp in self.session.get_inputs():
            dtype = ORT_DTYPES.get(inp.type, "float32")
            self.feeds[inp.name] = _random_input(np, list(inp.shape), dtype, rng)
        self.providers = self.session.get_providers()

    def time_once_ms(self):
        start = time.perf_counter()
        self.session.run(None, self.feeds)
        return (time.perf_counter() - start) * 1000.0


class TorchModel:
    """TorchScript model; on CUDA timed with CUDA events, on CPU with perf_counter."""

    def __init__(self, path, threads, use_gpu, np, rng, input_shapes=None):
        import torch

        if not input_shapes:
            raise RuntimeError("torch models need input_shapes in the manifest")
        self.torch = torch
        torch.set_num_threads(threads)
        self.cuda = bool(use_gpu)
        if self.cuda and not torch.cuda.is_available():
            raise RuntimeError("use_gpu asked but torch.cuda.is_available() is False on this device")
        device = "cuda" if self.cuda else "cpu"
        self.module = torch.jit.load(path, map_location=device).eval()
        gen = torch.Generator().manual_seed(0)
        self.inputs = [torch.randn(*shape, generator=gen).to(device) for shape in input_shapes]
        if self.cuda:
            self.start_event = torch.cuda.Event(enable_timing=True)
            self.end_event = torch.cuda.Event(enable_timing=True)

    def time_once_ms(self):
        torch = self.torch
        with torch.inference_mode():
            if self.cuda:
                self.start_event.record()
                self.module(*self.inputs)
                self.end_event.record()
                self.end_event.synchronize()
                return float(self.start_event.elapsed_time(self.end_event))
            start = time.perf_counter()
            self.module(*self.inputs)
            return (time.perf_counter() - start) * 1000.0


def runtime_version(runtime):
    if runtime == "tflite":
        found = _tflite_interpreter_class()
        return None if found is None else f"{found[1]} {found[2]}"
    if runtime == "onnxruntime":
        import onnxruntime

        return onnxruntime.__version__
    if runtime == "torch":
        import torch

        return torch.__version__
    raise RuntimeError(f"unknown runtime {runtime!r}; choose tflite, onnxruntime or torch")


# ----------------------------------------------------------------------------------------------------------
# the manifest: written by the host (hwnas/devices/runner_host.py), read here; docs/devices.md describes it


class ManifestError(ValueError):
    """A manifest the runner cannot run: not JSON, a missing or unknown field, or a field of the wrong type."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_ints(value):
    return isinstance(value, list) and all(_is_int(x) for x in value)


def _is_shapes(value):
    return isinstance(value, list) and all(_is_ints(shape) for shape in value)


def _or_null(check):
    return lambda value: value is None or check(value)


MANIFEST_VERSION = 1
# name: (check, what the value must be, required)
MANIFEST_FIELDS = {
    "version": (lambda v: v == MANIFEST_VERSION, f"{MANIFEST_VERSION} (this runner's manifest version)", False),
    "runtime": (lambda v: isinstance(v, str), "a string (tflite, onnxruntime or torch)", True),
    "models": (lambda v: isinstance(v, list), "a list of models", True),
    "threads": (_is_int, "an integer", False),
    "warmup": (_is_int, "an integer", False),
    "runs": (_is_int, "an integer", False),
    "rounds": (_is_int, "an integer", False),
    "min_seconds": (_or_null(_is_number), "a number or null", False),
    "timeout_per_model_s": (_or_null(_is_number), "a number or null", False),
    "block_size": (_or_null(_is_int), "an integer or null", False),
    "use_gpu": (_or_null(lambda v: isinstance(v, bool)), "true, false or null", False),
    "fresh_session": (_or_null(lambda v: isinstance(v, bool)), "true, false or null", False),
    "pin_cores": (_or_null(_is_ints), "a list of integers or null", False),
    "results": (_or_null(lambda v: isinstance(v, str)), "a path or null", False),
    "owner": (_or_null(lambda v: isinstance(v, str)), "a string or null", False),
    "lock_timeout_s": (_or_null(lambda v: _is_number(v) and v >= 0), "a number >= 0 or null", False),
}
MODEL_FIELDS = {
    "index": (_is_int, "an integer", True),
    "path": (lambda v: isinstance(v, str), "a path", True),
    "key": (_or_null(lambda v: isinstance(v, str)), "a string or null", False),
    "sha256": (_or_null(lambda v: isinstance(v, str)), "a string or null", False),
    "input_shapes": (_or_null(_is_shapes), "a list of shapes (lists of integers) or null", False),
}


def _field_problems(obj, schema, where):
    if not isinstance(obj, dict):
        return [f"{where} must be a JSON object"]
    problems = []
    unknown = sorted(set(obj) - set(schema))
    if unknown:
        problems.append("{} has unknown field(s) {} (known: {})".format(where, ", ".join(unknown),
                                                                         ", ".join(sorted(schema))))
    for name, (check, what, required) in schema.items():
        if name not in obj:
            if required:
                problems.append(f"{where} lacks {name!r}")
        elif not check(obj[name]):
            problems.append(f"{where}: {name!r} must be {what}, got {obj[name]!r}")
    return problems


def check_manifest(manifest):
    """Every problem of a manifest (an empty list when the runner can run it)."""
    problems = _field_problems(manifest, MANIFEST_FIELDS, "the manifest")
    if problems or not isinstance(manifest, dict):
        return problems
    seen = set()
    for position, entry in enumerate(manifest["models"]):
        found = _field_problems(entry, MODEL_FIELDS, f"models[{position}]")
        problems.extend(found)
        if not found:
            if entry["index"] in seen:
                problems.append(f"models[{position}]: index {entry['index']} appears twice")
            seen.add(entry["index"])
    return problems


def load_manifest(path):
    """The manifest at `path`, checked; ManifestError names every problem."""
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from None
    except ValueError as exc:
        raise ManifestError(f"the manifest {path} is not JSON ({exc})") from None
    problems = check_manifest(manifest)
    if problems:
        raise ManifestError("bad manifest {}: {}".format(path, "; ".join(problems)))
    return manifest


# ----------------------------------------------------------------------------------------------------------
# worker: loads models and answers timing tasks, one JSON line in, one JSON line out


def _exit_with_parent():
    """A worker must never outlive its supervisor (it may be stuck inside a hung model)."""
    import threading

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def worker_main(manifest_path):
    manifest = load_manifest(manifest_path)
    _exit_with_parent()
    out = sys.stdout
    try:
        import numpy as np

        affinity = None
        if manifest.get("pin_cores"):
            if not hasattr(os, "sched_setaffinity"):
                raise RuntimeError("pin_cores asked but this OS cannot pin threads to cores")
            os.sched_setaffinity(0, set(int(c) for c in manifest["pin_cores"]))
            affinity = sorted(os.sched_getaffinity(0))
        version = runtime_version(manifest["runtime"])
        if version is None:
            raise RuntimeError("no TFLite runtime; install one with `python3 -m pip install ai-edge-litert`")
    except Exception as exc:
        out.write(json.dumps({"type": "fatal", "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        return 2
    out.write(json.dumps({"type": "ready", "runtime_version": version}) + "\n")
    out.flush()
    classes = {"tflite": TfliteModel, "onnxruntime": OnnxModel, "torch": TorchModel}
    models = {m["index"]: m for m in manifest["models"]}
    loaded = {}
    fresh = bool(manifest.get("fresh_session"))
    rng = np.random.default_rng(0)
    for line in sys.stdin:
        task = json.loads(line)
        entry = models[task["index"]]
        reply = {"type": "done", "index": task["index"], "round": task["round"]}
        if task.get("state_before"):
            reply["state_before"] = device_state()
            if affinity is not None:
                reply["state_before"]["cpu_affinity"] = affinity
        try:
            model = loaded.get(task["index"])
            reply["loaded"] = model is None
            if model is None:
                cls = classes[manifest["runtime"]]
                args = (entry["path"], int(manifest.get("threads", 1)), bool(manifest.get("use_gpu")), np, rng)
                if cls is TorchModel:
                    model = cls(*args, input_shapes=entry.get("input_shapes"))
                else:
                    model = cls(*args)
                if len(loaded) >= 256:
                    loaded.pop(next(iter(loaded)))
                loaded[task["index"]] = model
            run_total = 0.0
            for _ in range(int(task["warmup"])):
                run_total += model.time_once_ms()
            samples = []
            start = time.perf_counter()
            min_s = float(task.get("min_seconds") or 0.0)
            while len(samples) < int(task["runs"]) or (time.perf_counter() - start) < min_s:
                samples.append(model.time_once_ms())
            run_total += sum(samples)
            if fresh:  # the next round loads it again: a session's memory placement is one more sampled factor
                loaded.pop(task["index"], None)
            if task.get("state_after"):
                reply["state_after"] = device_state()
            reply["samples_ms"] = samples
            reply["run_total_ms"] = run_total
            providers = getattr(model, "providers", None)
            if providers:
                reply["providers"] = providers
        except Exception as exc:
            reply = {"type": "error", "index": task["index"], "round": task["round"],
                     "error": "{}: {}".format(type(exc).__name__, str(exc).strip().splitlines()[0][:500] if str(exc)
                                          else "")}
            loaded.pop(task["index"], None)
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


# ----------------------------------------------------------------------------------------------------------
# supervisor


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


ROUND_LEVEL_MIN_MODELS = 8
ROUND_LEVEL_MIN_ROUNDS = 3


def round_levels(round_medians):
    """How fast the device ran in each round of a block, from its models' per-round medians (one list per model):
    for each round, the median over models of (that round's median / the model's median over rounds). A burst of
    background load or a frequency drop that covers one round slows every model measured in it; dividing each
    round's samples by its level takes that out before the statistics. 1.0 for every round with fewer than
    ROUND_LEVEL_MIN_MODELS models or ROUND_LEVEL_MIN_ROUNDS rounds: there a level cannot be told from the models'
    own noise."""
    n_rounds = len(round_medians[0]) if round_medians else 0
    if len(round_medians) < ROUND_LEVEL_MIN_MODELS or n_rounds < ROUND_LEVEL_MIN_ROUNDS:
        return [1.0] * n_rounds
    ratios = [[m[r] / median(m) for m in round_medians if median(m) > 0] for r in range(n_rounds)]
    return [median(ratio) if ratio else 1.0 for ratio in ratios]


def summarize(samples):
    ordered = sorted(samples)
    n = len(ordered)
    mean = sum(ordered) / n
    var = sum((x - mean) ** 2 for x in ordered) / n
    pos = 0.9 * (n - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    p90 = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
    return {"median_ms": median(ordered), "mean_ms": mean, "std_ms": math.sqrt(var), "min_ms": ordered[0],
            "p90_ms": p90, "n": n}


class Output:
    """stdout (may vanish with a dropped connection: then only the file) and the results file."""

    def __init__(self, results_path):
        self.results = open(results_path, "a")
        self.stdout_ok = True

    def emit(self, record, to_file=True, to_stdout=True):
        line = json.dumps(record, separators=(",", ":")) + "\n"
        if to_file:
            self.results.write(line)
            self.results.flush()
        if to_stdout:
            self.stdout(line)

    def stdout(self, line):
        if not self.stdout_ok:
            return
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            self.stdout_ok = False


class Worker:
    def __init__(self, manifest_path, err_path):
        self.err_path = err_path
        self.err = open(err_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "worker", manifest_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, bufsize=0,
        )
        self.buffer = b""

    def send(self, task):
        self.proc.stdin.write((json.dumps(task) + "\n").encode())
        self.proc.stdin.flush()

    def read_line(self, timeout_s, heartbeat):
        """Next JSON reply; None on timeout; raises EOFError when the worker died."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(left, HEARTBEAT_S))
            if not ready:
                heartbeat()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line.decode())

    def death_reason(self):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        self.err.flush()
        tail = (_read(self.err_path) or "").strip().splitlines()[-3:]
        what = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        return "runtime crashed ({}){}".format(what, (": " + " | ".join(tail)[-400:]) if tail else "")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self.err.close()


def _previous_records(results_path):
    """Records of an earlier run of this manifest; a torn last line (a crash mid-write) is cut off."""
    records = []
    if not os.path.exists(results_path):
        return records
    good = 0
    with open(results_path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            good += len(line)
            try:
                records.append(json.loads(line.decode()))
            except ValueError:
                continue
    if good != os.path.getsize(results_path):
        with open(results_path, "r+b") as handle:
            handle.truncate(good)
    return records


def _results_path(manifest_path, manifest):
    return manifest.get("results") or os.path.join(os.path.dirname(manifest_path) or ".", "results.jsonl")


def run_main(manifest_path):
    manifest = load_manifest(manifest_path)
    results_path = _results_path(manifest_path, manifest)
    lock = open(results_path + ".lock", "a")
    if fcntl is not None:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return follow_main(results_path, lock)
    return supervise(manifest_path, manifest, results_path)


def follow_main(results_path, lock):
    """Another runner owns this batch: print its results (and a `progress` line per round) as they come; take
    over if it dies."""
    offset = 0
    partial = b""
    last_beat = time.monotonic()
    while True:
        with open(results_path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        offset += len(chunk)
        partial += chunk
        *lines, partial = partial.split(b"\n")
        for raw in lines:
            try:
                record = json.loads(raw.decode())
            except ValueError:
                continue
            if record.get("type") == "round":
                _print(json.dumps(_progress(record)) + "\n")
            if record.get("type") in ("result", "failed"):
                _print(raw.decode() + "\n")
            if record.get("type") == "end":
                _print(raw.decode() + "\n")
                return 0
        if not lines:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pass
            else:  # the owner died before the end: resume the batch ourselves
                manifest_path = os.environ.get("HWNAS_RUNNER_MANIFEST")
                if manifest_path:
                    return supervise(manifest_path, load_manifest(manifest_path), results_path)
                return 3
            if time.monotonic() - last_beat > HEARTBEAT_S:
                _print(json.dumps({"type": "heartbeat"}) + "\n")
                last_beat = time.monotonic()
            time.sleep(FOLLOW_POLL_S)


def _progress(round_record):
    return {"type": "progress", "index": round_record["index"], "round": round_record["round"]}


def _print(line):
    try:
        sys.stdout.write(line)
        sys.stdout.flush()
    except (OSError, ValueError):
        sys.exit(0)


def _ignore_hangups_exit_on_term():
    """A dropped SSH/ADB link must not end the batch (SIGHUP, SIGPIPE); SIGTERM ends it cleanly."""
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def on_term(signum, frame):
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)


def supervise(manifest_path, manifest, results_path):
    """Measure the batch (this process holds its lock): pid file, device lock, then the Supervisor."""
    _ignore_hangups_exit_on_term()
    run_dir = os.path.dirname(results_path) or "."
    pid_path = os.path.join(run_dir, PID_FILE)
    _write_json(pid_path, {"pid": os.getpid(), "manifest": os.path.abspath(manifest_path),
                           "owner": manifest.get("owner"), "started": time.time()})
    try:
        supervisor = Supervisor(manifest_path, manifest, results_path)
        device_lock = DeviceLock(device_lock_path())
        holder = device_lock.acquire(manifest.get("lock_timeout_s", LOCK_TIMEOUT_S), supervisor.stopped,
                                     supervisor.busy)
        if holder is not None:  # timed out, or asked to stop while waiting
            supervisor.out.emit({"type": "end", "busy": holder} if holder else {"type": "end", "stopped": True})
            return 4 if holder else 0
        try:
            device_lock.describe({"pid": os.getpid(), "manifest": os.path.abspath(manifest_path),
                                  "owner": manifest.get("owner"), "since": time.time()})
            return supervisor.run()
        finally:
            device_lock.release()
    finally:
        try:
            os.remove(pid_path)
        except OSError:
            pass


def _write_json(path, data):
    tmp = f"{path}.{os.getpid()}.part"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------------
# the device lock: one batch measures on a device at a time, whatever its name, workspace or cache folder


LOCK_TIMEOUT_S = 3600.0
PID_FILE = "runner.pid"


def machine_key():
    """A short key of this machine (from /etc/machine-id, else its host name and CPU), the same for every user
    and every cache folder on it."""
    import hashlib

    ident = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id") or f"{platform.node()} {_cpu_model()}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def device_lock_path():
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"hwnas-device-{machine_key()}.lock")


class DeviceLock:
    """An exclusive flock on one file per machine, held by the runner measuring a batch. The kernel drops it when
    that process ends, however it ends, so a lock is never stale; the file holds the holder's pid, manifest and
    start time for the message of whoever waits."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        self.writable = False

    def _open(self):
        flags = os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.path, os.O_RDWR | flags, 0o644)
            self.writable = True
        except PermissionError:  # another user's lock file: locking needs only read access
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))

    def holder(self):
        try:
            with open(self.path) as handle:
                return json.loads(handle.read() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self, timeout_s, stopped, waiting):
        """None once held; else what to report: the holder (timed out) or {} (asked to stop while waiting)."""
        if fcntl is None:
            return None
        try:
            self._open()
        except OSError:
            return None  # no usable temporary folder: measure without the device lock
        deadline = None if timeout_s is None else time.monotonic() + float(timeout_s)
        last_said = None
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return None
            except OSError:
                pass
            if stopped():
                self.release()
                return {}
            holder = self.holder() or {"pid": None}
            if deadline is not None and time.monotonic() >= deadline:
                self.release()
                return holder
            if last_said is None or time.monotonic() - last_said >= HEARTBEAT_S:
                waiting(holder)
                last_said = time.monotonic()
            time.sleep(0.1)

    def describe(self, data):
        if self.fd is None or not self.writable:
            return
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(data).encode(), 0)

    def release(self):
        if self.fd is not None:
            if self.writable:
                try:
                    os.ftruncate(self.fd, 0)
                except OSError:
                    pass
            os.close(self.fd)
            self.fd = None


# ----------------------------------------------------------------------------------------------------------
# reap: stop the runners an earlier, abandoned batch of the same owner left behind


def reap_main(runs_dir, owner, grace_s=30.0):
    """Stop every runner still measuring a batch of `owner` under `runs_dir`: a `stop` file first (it stops
    after the model it is measuring), then SIGTERM, then SIGKILL. Prints {"stopped": [...], "killed": [...]}."""
    stopped, killed = [], []
    try:
        names = sorted(os.listdir(runs_dir))
    except OSError:
        names = []
    for name in names:
        run_dir = os.path.join(runs_dir, name)
        try:
            with open(os.path.join(run_dir, "manifest.json")) as handle:
                manifest = json.load(handle)
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or manifest.get("owner") != owner:
            continue
        results_path = _results_path(os.path.join(run_dir, "manifest.json"), manifest)
        if not _batch_alive(results_path):
            continue
        with open(os.path.join(run_dir, "stop"), "w"):
            pass
        stopped.append(name)
        if not _wait_batch_ends(results_path, grace_s):
            pid = (_read_json(os.path.join(run_dir, PID_FILE)) or {}).get("pid")
            for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
                if isinstance(pid, int) and _is_our_runner(pid, run_dir):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
                if _wait_batch_ends(results_path, 5.0):
                    break
            killed.append(name)
    sys.stdout.write(json.dumps({"stopped": stopped, "killed": killed}) + "\n")
    return 0


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _batch_alive(results_path):
    """True while a runner holds the batch's lock."""
    if fcntl is None or not os.path.exists(results_path + ".lock"):
        return False
    with open(results_path + ".lock", "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        return False


def _wait_batch_ends(results_path, timeout_s):
    deadline = time.monotonic() + timeout_s
    while _batch_alive(results_path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _is_our_runner(pid, run_dir):
    """Whether `pid` is a runner of this run folder (where /proc says; elsewhere the pid file is trusted)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no /proc on this OS: trust the pid file
    except OSError:
        return False
    return os.path.abspath(run_dir) in argv or run_dir in argv


class Supervisor:
    """Measures one manifest's batch through a worker process, block by block and round by round.

    It owns the batch's state: samples and runtime totals per model and round, the device state recorded at
    the first round, which models are finished, the worker (replaced after a crash or a hang), and the fatal
    error that fails every model left when no worker starts at all.
    """

    def __init__(self, manifest_path, manifest, results_path):
        self.manifest_path = manifest_path
        self.manifest = manifest
        self.models = manifest["models"]
        self.rounds = max(1, int(manifest.get("rounds", 1)))
        runs = max(1, int(manifest.get("runs", 1)))
        self.runs_per_round = max(1, int(math.ceil(runs / float(self.rounds))))
        self.warmup = max(0, int(manifest.get("warmup", 0)))
        self.min_seconds = float(manifest.get("min_seconds") or 0.0) / self.rounds
        self.timeout_s = float(manifest.get("timeout_per_model_s") or 120.0)
        self.block_size = max(1, int(manifest.get("block_size") or 64))
        self.results_path = results_path
        self.stop_path = os.path.join(os.path.dirname(results_path) or ".", "stop")
        self.samples = {}  # index -> {round: [ms]}
        self.run_total = {}  # index -> ms inside the runtime, warm-up included, over the rounds so far
        self.sessions = {}  # index -> rounds that loaded the model (sessions its samples span)
        self.states = {}  # index -> {"before": device state}
        self.last = {}  # index -> what the model's last round reported ({"state_after", "providers"})
        self.finished = set()
        self.worker = None
        self.version = None
        self.fatal = None
        self.out = Output(results_path)
        self.resume()

    def resume(self):
        """Replay what an earlier run of this manifest recorded: rounds are not measured again, finished
        models are reported again (to stdout only)."""
        for record in _previous_records(self.results_path):
            kind = record.get("type")
            if kind == "round":
                self.out.emit(_progress(record), to_file=False)
                index = record["index"]
                self.samples.setdefault(index, {})[record["round"]] = record["samples_ms"]
                self.run_total[index] = self.run_total.get(index, 0.0) + record.get("run_total_ms", 0.0)
                self.sessions[index] = self.sessions.get(index, 0) + int(bool(record.get("loaded")))
                if "state" in record:
                    self.states.setdefault(index, {})[record["state_key"]] = record["state"]
                if "last" in record:
                    self.last[index] = record["last"]
            elif kind in ("result", "failed"):
                self.finished.add(record["index"])
                self.out.emit(record, to_file=False)

    def run(self):
        try:
            for start in range(0, len(self.models), self.block_size):
                block = self.models[start:start + self.block_size]
                for rnd in range(self.rounds):
                    if not self.run_round(block, rnd):
                        self.finish_block(block)  # the models whose rounds are all measured
                        self.out.emit({"type": "end", "stopped": True})
                        return 0
                self.finish_block(block)
            if self.worker is not None:
                self.worker.close()
            self.out.emit({"type": "end"})
            return 0
        finally:
            if self.worker is not None and self.worker.proc.poll() is None:
                self.worker.kill()

    def run_round(self, block, rnd):
        """Measure round `rnd` of the block's unfinished models; False when the host asked to stop.

        The round's tasks go to the worker at once (no round trip between models); replies come back in
        order, so the oldest unanswered task is the one running. After a lost worker, what is left goes to a
        fresh one."""
        pending = [e for e in block if e["index"] not in self.finished and rnd not in self.samples.get(e["index"], {})]
        while pending:
            if self.stopped():
                return False
            if self.worker is None and self.fatal is None:
                self.worker = self.start_worker()
            if self.worker is None:
                self.fail(pending.pop(0), self.fatal)
            elif self.send_tasks(pending, rnd):
                self.collect_replies(pending, rnd)
        return True

    def stopped(self):
        """The host asked to stop (a `stop` file), or removed the run folder (it gave up on this batch)."""
        return os.path.exists(self.stop_path) or not os.path.exists(self.manifest_path)

    def heartbeat(self):
        self.out.emit({"type": "heartbeat"}, to_file=False)

    def busy(self, holder):
        """Waiting for the device lock: say who holds it (stdout only; it also serves as a heartbeat)."""
        self.out.emit({"type": "busy", "holder": holder}, to_file=False)

    def start_worker(self):
        """A worker that said `ready`, or None with `fatal` set (the runtime does not start)."""
        worker = Worker(self.manifest_path, self.results_path + ".worker.err")
        try:
            hello = worker.read_line(max(self.timeout_s, 60.0), self.heartbeat)
        except EOFError:
            self.fatal = worker.death_reason()
            return None
        if hello is None or hello.get("type") != "ready":
            self.fatal = (hello or {}).get("error") or "runtime did not start"
            worker.kill()
            return None
        self.version = hello["runtime_version"]
        return worker

    def send_tasks(self, pending, rnd):
        """Send one task per pending model; False (the first pending model failed) when the worker is gone."""
        try:
            for entry in pending:
                self.worker.send({"index": entry["index"], "round": rnd, "warmup": self.warmup,
                                  "runs": self.runs_per_round, "min_seconds": self.min_seconds,
                                  "state_before": rnd == 0, "state_after": rnd == self.rounds - 1})
        except OSError:
            self.lose_worker(pending, self.worker.death_reason())
            return False
        return True

    def collect_replies(self, pending, rnd):
        """Read the replies to the sent tasks in order; stop at a lost worker, a hang, or a stop request."""
        while pending:
            entry = pending[0]
            try:
                reply = self.worker.read_line(self.timeout_s, self.heartbeat)
            except (EOFError, OSError):
                self.lose_worker(pending, self.worker.death_reason())
                return
            if reply is None:
                self.worker.kill()
                self.lose_worker(pending, f"timed out after {self.timeout_s:.1f} s (timeout_per_model_s)")
                return
            pending.pop(0)
            if reply.get("type") == "error":
                self.fail(entry, reply["error"])
            else:
                self.record_round(entry, rnd, reply)
            if self.stopped():
                return

    def lose_worker(self, pending, error):
        """The worker died or hung on the oldest pending model: that model fails; the next task starts a
        fresh worker."""
        self.worker = None
        self.fail(pending.pop(0), error)

    def fail(self, entry, error):
        self.finished.add(entry["index"])
        self.out.emit({"type": "failed", "index": entry["index"], "key": entry.get("key"),
                       "sha256": entry.get("sha256"), "runtime": self.manifest["runtime"],
                       "runtime_version": self.version, "error": error, "timestamp": time.time()})

    def record_round(self, entry, rnd, reply):
        """File one round's samples (results file only); after the last round, the model's result."""
        index = entry["index"]
        record = {"type": "round", "index": index, "round": rnd, "samples_ms": reply["samples_ms"],
                  "run_total_ms": reply["run_total_ms"], "loaded": bool(reply.get("loaded"))}
        self.sessions[index] = self.sessions.get(index, 0) + int(record["loaded"])
        self.samples.setdefault(index, {})[rnd] = reply["samples_ms"]
        self.run_total[index] = self.run_total.get(index, 0.0) + reply["run_total_ms"]
        if "state_before" in reply:
            record.update(state_key="before", state=reply["state_before"])
            self.states.setdefault(index, {})["before"] = reply["state_before"]
        if rnd == self.rounds - 1:
            record["last"] = self.last[index] = {"state_after": reply.get("state_after", {}),
                                                 "providers": reply.get("providers")}
        self.out.emit(record, to_stdout=False)
        self.out.emit(_progress(record), to_file=False)
        if rnd == self.rounds - 1 and self.rounds < ROUND_LEVEL_MIN_ROUNDS:
            self.emit_result(entry, [1.0] * self.rounds)  # no round levels to wait for

    def finish_block(self, block):
        """The results of the block's models whose rounds are all measured, each round's samples divided by
        that round's level across them (`round_levels`). With ROUND_LEVEL_MIN_ROUNDS rounds or more a model's
        result waits for the end of its block (or a stop); with fewer it came after its last round."""
        done = [e for e in block if e["index"] not in self.finished
                and all(r in self.samples.get(e["index"], {}) for r in range(self.rounds))]
        levels = round_levels([[median(self.samples[e["index"]][r]) for r in range(self.rounds)] for e in done])
        for entry in done:
            self.emit_result(entry, levels)

    def emit_result(self, entry, levels):
        """A finished model's result. `median_ms`, the latency hwnas uses, is the median of its fastest round:
        on a shared host a slow phase (a neighbour on the same physical core, a frequency drop) only ever adds
        time and can last longer than a round, so the fastest round is the one that repeats from batch to
        batch (benchmarks/README.md, "Fastest round"). The other statistics are over every sample, each round
        divided by its level; `raw_median_ms` is the median over every sample as measured."""
        index = entry["index"]
        last_reply = self.last.get(index, {})
        rounds = [self.samples[index][r] for r in range(self.rounds)]
        raw = summarize([x for samples in rounds for x in samples])
        all_samples = [x / level for samples, level in zip(rounds, levels) for x in samples]
        result = {"type": "result", "index": index, "key": entry.get("key"), "sha256": entry.get("sha256"),
                  "runtime": self.manifest["runtime"], "runtime_version": self.version,
                  "threads": int(self.manifest.get("threads", 1)), "warmup": self.warmup,
                  "runs": self.runs_per_round * self.rounds, "rounds": self.rounds,
                  "run_total_ms": self.run_total[index], "sessions": self.sessions.get(index, 0),
                  "state_before": self.states.get(index, {}).get("before", {}),
                  "state_after": last_reply.get("state_after", {}), "timestamp": time.time()}
        if last_reply.get("providers"):
            result["providers"] = last_reply["providers"]
        result["round_medians_ms"] = [median(samples) for samples in rounds]
        result["round_levels"] = levels
        result["raw_median_ms"] = raw["median_ms"]
        result.update(summarize(all_samples))
        result["median_ms"] = min(result["round_medians_ms"])
        self.finished.add(index)
        self.out.emit(result)


def unpack_main(archive, dest):
    """Unpack pushed models: only regular files named <sha256>.<ext>, each checked against its name."""
    import hashlib
    import re
    import tarfile

    name_re = re.compile(r"^[0-9a-f]{64}\.[A-Za-z0-9]{1,8}$")
    if not os.path.isdir(dest):
        os.makedirs(dest)
    count = 0
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            if not member.isfile() or not name_re.match(member.name):
                sys.stderr.write(f"refusing archive member {member.name!r}\n")
                return 2
            source = tar.extractfile(member)
            tmp = os.path.join(dest, f"{member.name}.{os.getpid()}.part")
            digest = hashlib.sha256()
            with open(tmp, "wb") as handle:
                while True:
                    chunk = source.read(1 << 20)
                    if not chunk:
                        break
                    digest.update(chunk)
                    handle.write(chunk)
            if digest.hexdigest() != member.name.split(".")[0]:
                os.remove(tmp)
                sys.stderr.write(f"{member.name} arrived damaged (sha256 mismatch)\n")
                return 3
            os.replace(tmp, os.path.join(dest, member.name))
            count += 1
    os.remove(archive)
    sys.stdout.write(json.dumps({"unpacked": count}) + "\n")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("info", "run", "worker", "unpack", "reap"):
        sys.stderr.write("usage: runner.py info | run MANIFEST.json | unpack ARCHIVE.tar FOLDER | reap RUNS OWNER\n")
        return 2
    if argv[0] == "info":
        sys.stdout.write(json.dumps(fingerprint()) + "\n")
        return 0
    if argv[0] == "unpack":
        if len(argv) != 3:
            sys.stderr.write("usage: runner.py unpack ARCHIVE.tar FOLDER\n")
            return 2
        return unpack_main(argv[1], argv[2])
    if argv[0] == "reap":
        if len(argv) != 3:
            sys.stderr.write("usage: runner.py reap RUNS_FOLDER OWNER\n")
            return 2
        return reap_main(argv[1], argv[2])
    if len(argv) != 2:
        sys.stderr.write(f"usage: runner.py {argv[0]} MANIFEST.json\n")
        return 2
    try:
        if argv[0] == "worker":
            return worker_main(argv[1])
        os.environ["HWNAS_RUNNER_MANIFEST"] = argv[1]
        return run_main(argv[1])
    except ManifestError as exc:
        sys.stderr.write(f"runner: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
