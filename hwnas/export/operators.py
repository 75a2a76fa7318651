"""`export_operators`: one small validated model per OpSpec, for profiling a space's operators on a device.

Files are named by content (operator key, format, precision), so a second call finds them and writes
nothing new; missing ones are exported in a process pool.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ExportError
from hwnas.export.config import SUFFIXES, ExportConfig, check_format, check_precision, layout_is_current
from hwnas.export.core import prepare_folder
from hwnas.export.sidecar import sidecar_path
from hwnas.files import sha256_file
from hwnas.progress import ProgressFn, emit
from hwnas.space import OpSpec, SearchSpace

__all__ = ["ExportedOp", "export_operators", "op_file_name", "op_input_shape", "OP_CALIB_SAMPLES"]

OP_CALIB_SAMPLES = 16  # int8 operators are calibrated on random normal inputs: latency does not depend on values
OP_WEIGHTS_SEED = 0


@dataclass(frozen=True)
class ExportedOp:
    """One operator's model file."""

    op: OpSpec
    key: str
    path: Path
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op.to_dict(), "key": self.key, "path": str(self.path), "sha256": self.sha256}


def op_file_name(op: OpSpec, fmt: str, precision: str) -> str:
    """`<type>-<16 hex of sha256(key|format|precision)>.<ext>`: the same operator always gets the same name."""
    digest = hashlib.sha256(f"{op.key}|{fmt}|{precision}".encode()).hexdigest()[:16]
    return f"{op.type}-{digest}{SUFFIXES[fmt]}"


def op_input_shape(op: OpSpec) -> tuple[int, int, int, int]:
    """NCHW input of an operator module (OpSpec shapes are HWC, or (C,) for a flat input)."""
    if len(op.input) == 3:
        return (1, int(op.input[2]), int(op.input[0]), int(op.input[1]))
    if len(op.input) == 1:
        return (1, int(op.input[0]), 1, 1)
    raise ExportError(f"operator {op.key} has input shape {op.input}; expected (H, W, C) or (C,)")


def _existing(op: OpSpec, path: Path) -> ExportedOp | None:
    """The operator's file when it and its sidecar are complete and agree (same key, same bytes)."""
    side = sidecar_path(path)
    if not path.is_file() or not side.is_file():
        return None
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("op_key") != op.key or not layout_is_current(record, "tflite" if path.suffix == ".tflite" else ""):
        return None
    sha = sha256_file(path)
    if record.get("sha256") != sha:
        return None
    return ExportedOp(op=op, key=op.key, path=path, sha256=sha)


def _export_one(op_data: dict[str, Any], path: str, fmt: str, precision: str, validate: bool,
                config: ExportConfig | None) -> tuple[str, str]:
    """Build, export and validate one operator (runs in a worker process); returns (path, sha256)."""
    import torch

    from hwnas.export.core import export_model
    from hwnas.supernet import build_op_module

    op = OpSpec.from_dict(op_data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(OP_WEIGHTS_SEED)
        module = build_op_module(op).eval()
    shape = op_input_shape(op)
    calib = None
    if precision == "int8":
        calib = np.random.default_rng(OP_WEIGHTS_SEED).standard_normal((OP_CALIB_SAMPLES, *shape[1:]))
    meta = {"op": op.to_dict(), "op_key": op.key, "weights": f"random (seed {OP_WEIGHTS_SEED})"}
    exported = export_model(module, shape, path, fmt, precision, calib=calib, validate=validate, meta=meta,
                            config=config)
    return str(exported.path), exported.sha256


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the converter's C++ logging, set before it loads


def run_pool(fn: Callable[..., Any], tasks: list[tuple], jobs: int,
             progress: Callable[[int, int], None] | None, labels: list[Any]) -> list[Any]:
    """`fn(*task)` for every task in `jobs` spawned worker processes; results in task order.

    The first failure cancels what has not started and is raised (as ExportError when it is not one).
    """
    context = multiprocessing.get_context("spawn")  # fork after torch/onnxruntime threads start can hang
    results: list[Any] = [None] * len(tasks)
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(tasks))), mp_context=context,
                             initializer=_worker_init) as pool:
        futures = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
        pending, finished_count = set(futures), 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index = futures[future]
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    if isinstance(error, ExportError):
                        raise error
                    if isinstance(error, BrokenProcessPool):
                        raise ExportError(f"a worker process died while exporting {labels[index]}; worker "
                                          f"processes are spawned, so a calling script needs an "
                                          f"`if __name__ == \"__main__\":` guard (or pass jobs=1)") from error
                    raise ExportError(f"exporting {labels[index]} failed: {error}") from error
                results[index] = future.result()
                finished_count += 1
                if progress is not None:
                    progress(finished_count, len(tasks))
    return results


def export_operators(
    space: SearchSpace,
    ops: Iterable[OpSpec] | None,
    out_dir: str | Path,
    format: str,
    precision: str = "fp32",
    jobs: int = 2,
    progress: ProgressFn | None = None,
    validate: bool = True,
    config: ExportConfig | None = None,
) -> list[ExportedOp]:
    """One model per distinct operator (default: `space.all_operators()`) in `out_dir`, in the order given.

    Operators already exported there (file and sidecar present and matching) are reused. Missing ones are
    built with `hwnas.supernet.build_op_module` (random weights, fixed seed), exported and validated in
    `jobs` worker processes. `progress` gets a "export" event as operators finish. int8 operators are
    calibrated on random normal inputs (their latency does not depend on the values).
    """
    fmt, precision = check_format(format), check_precision(precision)
    folder = prepare_folder(out_dir)
    unique: dict[str, OpSpec] = {}
    for op in (space.all_operators() if ops is None else ops):
        if not isinstance(op, OpSpec):
            raise ExportError(f"export_operators takes OpSpecs, got {type(op).__name__}")
        unique.setdefault(op.key, op)
    total = len(unique)
    done: dict[str, ExportedOp] = {}
    todo: list[OpSpec] = []
    for key, op in unique.items():
        found = _existing(op, folder / op_file_name(op, fmt, precision))
        if found is None:
            todo.append(op)
        else:
            done[key] = found
    emit(progress, "export", len(done), total, skipped=len(done))

    def finish(op: OpSpec, result: tuple[str, str]) -> None:
        done[op.key] = ExportedOp(op=op, key=op.key, path=Path(result[0]), sha256=result[1])
        emit(progress, "export", len(done), total, op.key)

    args = [(op.to_dict(), str(folder / op_file_name(op, fmt, precision)), fmt, precision, validate, config)
            for op in todo]
    if jobs <= 1 or len(todo) <= 1:
        for op, arg in zip(todo, args, strict=True):
            finish(op, _export_one(*arg))
    else:
        offset = len(done)
        results = run_pool(_export_one, args, jobs, None if progress is None else
                           (lambda n, _total: emit(progress, "export", offset + n, total)), [op.key for op in todo])
        for op, result in zip(todo, results, strict=True):
            done[op.key] = ExportedOp(op=op, key=op.key, path=Path(result[0]), sha256=result[1])
    return [done[key] for key in unique]
