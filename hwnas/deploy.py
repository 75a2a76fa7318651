"""What joins search to the rest of hwnas: objectives backed by a supernet (top-1, expensive) and by fitted
latency predictors (cheap), and deploying a run's front: export each model, measure it on a device, and put
the measured latency next to the predicted one in model.json, front.csv and the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import DataError, PredictorError, SearchError
from hwnas.objective import FunctionObjective, Objective
from hwnas.search.report import write_report
from hwnas.search.runfolder import RunFolder
from hwnas.space import from_config
from hwnas.workspace import Workspace

__all__ = [
    "SupernetAccuracy",
    "latency_name",
    "predicted_latency",
    "predictor_path",
    "load_device_predictor",
    "deploy_front",
    "FORMAT_RUNTIMES",
]

FORMAT_RUNTIMES = {"tflite": "tflite", "onnx": "onnxruntime"}
RUNTIME_FORMATS = {v: k for k, v in FORMAT_RUNTIMES.items()}


def latency_name(device: str) -> str:
    return f"latency_ms[{device}]"


class SupernetAccuracy(Objective):
    """Top-1 (%) of a subnet of `supernet` on `data`: extract, recalibrate batch norms, evaluate (expensive).
    `limit` caps the images evaluated; `calib_data` (default: `data`) feeds the batch-norm recalibration."""

    name = "top1"
    direction = "max"
    expensive = True
    unit = "%"

    def __init__(self, supernet: Any, data: Any, limit: int | None = None, calib_data: Any = None,
                 calib_batches: int = 4, batch_size: int = 250,
                 progress: Callable[[int, int], None] | None = None):
        if data is None or len(data) == 0:
            raise DataError("the evaluation dataset is empty; pass data with at least one labelled image")
        self.supernet = supernet
        self.data = data
        self.limit = limit
        self.calib_data = calib_data
        self.calib_batches = calib_batches
        self.batch_size = batch_size
        self.progress = progress

    def evaluate(self, archs: Sequence[Any]) -> np.ndarray:
        from hwnas.supernet import evaluate

        return np.array([evaluate(self.supernet, a, self.data, limit=self.limit, calib_data=self.calib_data,
                                  calib_batches=self.calib_batches, batch_size=self.batch_size)
                         for a in archs], dtype=float)


def predictor_path(workspace: Workspace, device: str, space: str, runtime: str) -> Path:
    return workspace.predictors_dir / f"{device}-{space}-{runtime}.json"


def load_device_predictor(workspace: Workspace, device: str, space: Any, runtime: str) -> Any:
    """The fitted latency predictor `predictors/<device>-<space>-<runtime>.json` for `space`."""
    from hwnas.predictors import load_predictor

    path = predictor_path(workspace, device, space.name, runtime)
    if not path.is_file():
        raise PredictorError(f"no latency predictor for {device} ({space.name}, {runtime}) at {path}; "
                             f"profile and fit it first: `hwnas profile {device} --space {space.name}` then "
                             f"`hwnas fit {device}`")
    return load_predictor(path, space=space)


def predicted_latency(predictor: Any, device: str) -> FunctionObjective:
    """Latency on `device` (ms) from its fitted predictor: a cheap objective."""
    return FunctionObjective(latency_name(device), lambda archs: predictor.predict(list(archs)), "min",
                             expensive=False, unit="ms")


# ---------------------------------------------------------------------------------------------------- deploy
DeployProgress = Callable[[str, int, int], None]


def deploy_front(run_dir: str | Path, device: Any, formats: Sequence[str] = ("tflite", "onnx"), int8: bool = False,
                 supernet: Any = None, calib: Any = None, settings: Any = None,
                 progress: DeployProgress | None = None, max_models: int | None = None,
                 bn_data: Any = None) -> list[dict[str, Any]]:
    """Export every front model of a run to `formats` (fp32, and int8 with `int8`) under `<run>/models/`, measure
    each on the open `device`, and write measured latency into model.json (the sidecar), front.json/.csv and
    report.html. Returns the updated front rows. `progress(stage, done, total)`. `max_models` deploys only that
    many, spread evenly along the front (the rest keep their predicted values only). The measured latency is the
    figure the device's predictor was fitted on (`hwnas fit --statistic`: the median by default, or e.g. the
    minimum); the sidecar keeps the median and the minimum beside it.

    A supernet subnet's batch norms are re-estimated on `bn_data` (default: the images the search recalibrated
    on), fp32 and int8 alike, so each file holds the network whose top-1 the search measured."""
    from hwnas.devices.base import BenchmarkModel
    from hwnas.export import export_arch, update_sidecar

    run = RunFolder(run_dir)
    run_settings = run.read_settings()
    doc = run.read_front()
    if not doc["front"]:
        raise SearchError(f"{run.path} has an empty front: nothing to deploy")
    rows = doc["front"]
    if max_models is not None and len(rows) > max_models:
        picks = sorted({int(round(i)) for i in np.linspace(0, len(rows) - 1, max_models)})
        rows = [rows[i] for i in picks]
    space = from_config(run_settings["space"])
    bad = [f for f in formats if f not in FORMAT_RUNTIMES]
    if bad or not formats:
        raise SearchError(f"unknown format(s) {bad}; choose from {', '.join(FORMAT_RUNTIMES)}")
    precisions = ["fp32"] + (["int8"] if int8 else [])
    if int8 and calib is None:
        calib = _random_calib(space, space.validate(rows[0]["arch"]))
    if supernet is not None and bn_data is None:
        bn_data = _search_bn_images(run_settings)
    base_settings = settings or _device_settings(device)
    # measured in the figure the search's latency for this device was predicted in (its predictor's statistic),
    # so that predicted and measured compare like with like; median for a device the search did not predict
    statistic = (run_settings.get("latency_statistics") or {}).get(device.name) or "median_ms"
    own_format = RUNTIME_FORMATS.get(base_settings.runtime)
    models_dir = run.path / "models"
    jobs = [(r, f, p) for r in rows for f in formats for p in precisions]
    exported: dict[tuple[str, str, str], Any] = {}
    for i, (row, fmt, precision) in enumerate(jobs):
        if progress is not None:
            progress("export", i, len(jobs))
        meta = {"run": str(run.path), "search_values": row["values"], "predicted": row.get("predicted") or {}}
        exported[(row["key"], fmt, precision)] = export_arch(space, row["arch"], models_dir, fmt, precision,
                                                             supernet=supernet,
                                                             calib=calib if precision == "int8" else None,
                                                             meta=meta, bn_data=bn_data)
    if progress is not None:
        progress("export", len(jobs), len(jobs))
    from dataclasses import replace

    done = 0
    for fmt in formats:
        runtime_settings = replace(base_settings, runtime=FORMAT_RUNTIMES[fmt])
        for precision in precisions:
            models = [BenchmarkModel(exported[(r["key"], fmt, precision)].path, r["key"]) for r in rows]
            by_key = {}
            for m in device.benchmark(models, runtime_settings):
                by_key[m.key] = m
                done += 1
                if progress is not None:
                    progress("measure", done, len(jobs))
            for row in rows:
                m = by_key.get(row["key"])
                model = exported[(row["key"], fmt, precision)]
                suffix = "" if (fmt == own_format and precision == "fp32") else f",{fmt}" + (
                    f",{precision}" if precision != "fp32" else "")
                name = f"latency_ms[{device.name}{suffix}]"
                row.setdefault("models", {})[f"{fmt}-{precision}"] = str(model.path.relative_to(run.path))
                ok = m is not None and m.ok
                entry = {"device": device.name, "runtime": runtime_settings.runtime,
                         "measured_ms": getattr(m, statistic) if ok else None, "statistic": statistic,
                         "median_ms": m.median_ms if ok else None, "min_ms": m.min_ms if ok else None,
                         "runs": m.n if ok else None,
                         "predicted_ms": (row.get("predicted") or {}).get(latency_name(device.name),
                                                                           row["values"].get(latency_name(
                                                                               device.name))),
                         "status": m.status if m is not None else "missing",
                         "error": m.error if m is not None else "no measurement came back",
                         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                row.setdefault("measured", {})[name] = entry["measured_ms"]
                update_sidecar(model.sidecar or model.path, deployed={f"{device.name}/{fmt}-{precision}": entry})
    doc["deployed"] = {**doc.get("deployed", {}), device.name: {"formats": list(formats), "precisions": precisions,
                                                              "runtime": base_settings.runtime,
                                                              "statistic": statistic}}
    run.write_front(doc)
    write_report(run)
    return doc["front"]


def _search_bn_images(run_settings: dict[str, Any]) -> np.ndarray | None:
    """The images `SupernetAccuracy` re-estimated batch norms on: the first ones of the run's validation data
    (None when that data is gone)."""
    from hwnas.data import load_dataset
    from hwnas.errors import HwnasError

    try:
        data = load_dataset(run_settings.get("data", "mnist5k"), split="val")
    except HwnasError:
        return None
    images = data.x[: int(run_settings.get("bn_calibration_images") or 1000)]
    return images if len(images) else None


def _device_settings(device: Any) -> Any:
    from hwnas.devices.base import BenchmarkSettings

    config = getattr(device, "config", None)
    return config.settings() if config is not None and hasattr(config, "settings") else BenchmarkSettings()


def _random_calib(space: Any, arch: Any) -> np.ndarray:
    shape = space.input_shape(arch)
    return np.random.default_rng(0).standard_normal((16, *shape[1:])).astype(np.float32)
