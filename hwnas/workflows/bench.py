"""`bench`: measure model files (ONNX or TFLite, exported by hwnas or not) on a workspace device with the same
method and statistics as profiling: what users of TFLite's `benchmark_model` do, on any device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwnas.errors import DeviceError
from hwnas.progress import ProgressFn, emit
from hwnas.workflows._common import device_configs, resolve_workspace
from hwnas.workspace import Workspace

__all__ = ["bench"]


def bench(models: Sequence[str | Path], device: str, *, workspace: Workspace | str | Path | None = None,
          runs: int | None = None, warmup: int | None = None, rounds: int | None = None,
          threads: int | None = None, progress: ProgressFn | None = None) -> list[Any]:
    """One `Measurement` per model file, in order, measured on `device`: the runtime follows each file's format
    (.onnx -> onnxruntime, .tflite -> tflite); `runs`, `warmup`, `rounds`, `threads` override the device's."""
    from hwnas.devices import open_device
    from hwnas.devices.base import BenchmarkModel
    from hwnas.export import FORMAT_RUNTIMES

    ws = resolve_workspace(workspace)
    paths = [Path(m) for m in models]
    if not paths:
        raise DeviceError("name at least one model file (.onnx or .tflite) to measure")
    by_runtime: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        runtime = FORMAT_RUNTIMES.get(path.suffix.lstrip(".").lower())
        if runtime is None:
            raise DeviceError(f"{path}: hwnas measures .onnx and .tflite files; convert it with `hwnas export` "
                              "or pass one of those")
        if not path.is_file():
            raise DeviceError(f"model file {path} does not exist")
        by_runtime.setdefault(runtime, []).append(i)
    device_configs(ws, [device])
    results: list[Any] = [None] * len(paths)
    done = 0
    with open_device(device, ws) as dev:
        base = dev.config.settings(runs=runs, warmup=warmup, rounds=rounds, threads=threads)
        for runtime, indices in by_runtime.items():
            batch = [BenchmarkModel(paths[i], f"{i}:{paths[i].name}") for i in indices]
            for m in dev.benchmark(batch, replace(base, runtime=runtime)):
                results[int(m.key.split(":", 1)[0])] = m
                done += 1
                emit(progress, "measure", done, len(paths), m.key.split(":", 1)[1])
    missing = [str(paths[i]) for i, m in enumerate(results) if m is None]
    if missing:
        raise DeviceError(f"no measurement came back for {', '.join(missing)}; re-run, or check the device with "
                          f"`hwnas device check {device}`")
    return results
