"""`deploy`: export every model of a search run's front, measure each on a device, and put the measured latency
next to the predicted one in model.json, front.json/.csv and report.html."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.distributed.cluster import RaySettings
from hwnas.errors import DataError, DeviceError, HwnasError, SearchError
from hwnas.progress import ProgressFn, emit
from hwnas.search.report import write_report
from hwnas.search.runfolder import RunFolder, read_hypervolume
from hwnas.space import from_config
from hwnas.workflows._common import device_configs, resolve_workspace
from hwnas.workflows.objectives import latency_name
from hwnas.workspace import Workspace

__all__ = ["DeployResult", "FarmDeployError", "deploy", "deploy_many", "deploy_front", "int8_calibration",
           "INT8_CALIB_IMAGES"]

INT8_CALIB_IMAGES = 64  # training images int8 models are calibrated on


@dataclass
class DeployResult:
    """The front rows after deploying (each with `measured` and `models`), and where the files are."""

    run: RunFolder
    device: str
    rows: list[dict[str, Any]]
    devices: list[str] = field(default_factory=list)  # every device measured (deploy_many); [device] otherwise

    def __post_init__(self) -> None:
        self.devices = self.devices or [self.device]

    @property
    def models_dir(self) -> Path:
        return self.run.path / "models"

    @property
    def report(self) -> Path:
        return self.run.report_path

    def session_checks(self) -> dict[str, dict[str, Any]]:
        """Per device, the deploy session's reference check against its profile (devices without one left out)."""
        return read_session_checks(self.run, self.devices)


def read_session_checks(run: RunFolder, devices: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The reference checks deploy recorded in the run's front.json for `devices` (those without one left out)."""
    deployed = run.read_front().get("deployed") or {}
    return {d: deployed[d]["session_check"] for d in devices if "session_check" in deployed.get(d, {})}


def deploy(run_dir: str | Path, device: str, *, formats: Sequence[str] = ("tflite", "onnx"), int8: bool = False,
           workspace: Workspace | str | Path | None = None, settings: Any = None, max_models: int | None = None,
           progress: ProgressFn | None = None) -> DeployResult:
    """Deploy the front of the search run `run_dir` to the workspace device `device`: export to `formats`
    (fp32, and int8 with `int8`, calibrated on the run's own training images), validate, measure, record.
    The device measures as its profile of this space did (runs, rounds, warm-up, time floor, fresh sessions;
    its own settings where it has no profile); `settings` (BenchmarkSettings) overrides both, and the session
    check names what then differs from the profile."""
    from hwnas.devices import open_device

    ws = resolve_workspace(workspace)
    run, supernet, calib, _ = _prepare_run(ws, run_dir, [device], formats, int8)
    with open_device(device, ws) as dev:
        rows = deploy_front(run.path, dev, formats, int8=int8, supernet=supernet, calib=calib, settings=settings,
                            progress=progress, max_models=max_models, workspace=ws)
    return DeployResult(run, device, rows)


class FarmDeployError(DeviceError):
    """Some devices of a `deploy_many` failed (the message names each); `result` holds what the others
    measured (already written into the run folder)."""

    def __init__(self, message: str, result: DeployResult):
        super().__init__(message)
        self.result = result


def deploy_many(run_dir: str | Path, devices: Sequence[str], *, ray: RaySettings | None = None,
                formats: Sequence[str] = ("tflite", "onnx"), int8: bool = False,
                workspace: Workspace | str | Path | None = None, settings: Any = None,
                max_models: int | None = None, progress: ProgressFn | None = None) -> DeployResult:
    """`deploy` on several workspace devices at once: the front is exported once here, then measured on every
    device concurrently (one driver thread per device; with `ray`, each device served by a Ray actor), and
    each device's measurements are recorded next to the predicted latency. One device failing does not stop
    the others: what they measured is written, then a FarmDeployError names each failed device. Progress
    events of the measuring come with the device's name before their stage ("pixel7: measure")."""
    from hwnas.distributed import ray_session
    from hwnas.distributed.farm import DeviceFarm

    ws = resolve_workspace(workspace)
    names = list(dict.fromkeys(devices))
    run, supernet, calib, configs = _prepare_run(ws, run_dir, names, formats, int8)
    deployment = _FrontDeployment(run.path, formats, int8=int8, supernet=supernet, calib=calib,
                                  max_models=max_models, workspace=ws)
    for name in names:
        deployment.plan_checks(name, settings or configs[name].settings(), given=settings is not None)
    with ray_session(ray) as ray_module:  # a cluster that cannot be reached is said before any export
        deployment.export(progress)
        outcome = DeviceFarm(ws, ray_module).run(
            names, lambda _name, dev, report: deployment.measure(dev, settings, report), progress)
    measured = [outcome.results[n] for n in names if n in outcome.results]
    rows = deployment.record(measured) if measured else deployment.rows
    result = DeployResult(run, measured[0].device if measured else names[0], rows,
                          devices=[m.device for m in measured])
    if outcome.errors:
        raise FarmDeployError(outcome.failure_message(
            "deploying", "the others' measurements are recorded in the run folder; re-run deploy with the "
                         "failed --device to measure there"), result)
    return result


def _prepare_run(ws: Workspace, run_dir: str | Path, devices: list[str], formats: Sequence[str],
                 int8: bool) -> tuple[RunFolder, Any, Any, dict[str, Any]]:
    """The run folder, its supernet, the int8 calibration images and the devices' inventory entries; every check
    before any work."""
    run = RunFolder(run_dir)
    run_settings = run.read_settings()
    run.read_front()  # damaged run files are refused before anything is exported or rewritten
    read_hypervolume(run.hv_path)
    configs = device_configs(ws, devices)
    _check_formats(formats)
    path = run_settings.get("supernet")
    if not path or not Path(path).is_file():
        raise SearchError(f"the run's supernet checkpoint {path} is gone; deploy needs it for the weights")
    calib = int8_calibration(run_settings) if int8 else None
    from hwnas.supernet import load_checkpoint  # torch: imported once the cheap checks passed

    return run, load_checkpoint(path), calib, configs


def _check_formats(formats: Sequence[str]) -> None:
    from hwnas.export import FORMAT_RUNTIMES

    bad = [f for f in formats if f not in FORMAT_RUNTIMES]
    if bad or not formats:
        raise SearchError(f"unknown format(s) {bad}; choose from {', '.join(FORMAT_RUNTIMES)}")


def int8_calibration(run_settings: dict[str, Any]) -> np.ndarray:
    """The run's own training images, to calibrate int8 models on; never random noise."""
    from hwnas.data import load_dataset

    spec = run_settings.get("data", "mnist5k")
    try:
        images = load_dataset(spec, split="train").x[:INT8_CALIB_IMAGES]
    except HwnasError as exc:
        raise DataError(f"--int8 calibrates on the run's training images, but its dataset {spec!r} cannot be "
                        f"loaded ({exc}); make that dataset available again, or deploy without --int8") from None
    if len(images) == 0:
        raise DataError(f"--int8 calibrates on the run's training images, but dataset {spec!r} has none; "
                        "deploy without --int8")
    return images


def deploy_front(run_dir: str | Path, device: Any, formats: Sequence[str] = ("tflite", "onnx"), int8: bool = False,
                 supernet: Any = None, calib: Any = None, settings: Any = None,
                 progress: ProgressFn | None = None, max_models: int | None = None,
                 bn_data: Any = None, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """Export every front model of a run to `formats` (fp32, and int8 with `int8`) under `<run>/models/`, measure
    each on the open `device`, and write measured latency into model.json (the sidecar), front.json/.csv and
    report.html. Returns the updated front rows. `progress` gets "export" and "measure" events. `max_models`
    deploys only that many, spread evenly along the front (the rest keep their predicted values only). The
    measured latency is the figure the device's predictor was fitted on (`hwnas fit --statistic`: the median by
    default, or e.g. the minimum); the sidecar keeps the median and the minimum beside it.

    int8 needs `calib` images when the weights come from a supernet; random weights (no supernet) are
    calibrated on random inputs, which is fine for latency alone. A supernet subnet's batch norms are
    re-estimated on `bn_data` (default: the images the search recalibrated on), fp32 and int8 alike, so each
    file holds the network whose top-1 the search measured.

    With the `workspace` holding the device's profile for this space, the deploy session is checked against it:
    the profile's reference-check subnets are measured again at the start and the end of the session, under the
    deploy's settings (the profile's own unless `settings` are given), and front.json records how fast the
    device ran against its profile (`deployed[<device>]["session_check"]`, see
    `hwnas.profiling.drift.SessionCheck`), with the front's error against its predictions as predicted and
    scaled to the session. A front batch whose reference subnets read the device beyond the profile's threshold
    is measured once more and the newest batch counts (`session_check["first_batch"]` keeps the first one's
    level)."""
    deployment = _FrontDeployment(run_dir, formats, int8=int8, supernet=supernet, calib=calib,
                                  max_models=max_models, bn_data=bn_data, workspace=workspace)
    deployment.plan_checks(device.name, settings or device.default_settings(), given=settings is not None)
    deployment.export(progress)
    return deployment.record([deployment.measure(device, settings, progress)])


@dataclass
class _Measured:
    """What one device measured of a deployment: per (format, precision) the Measurement of each row key."""

    device: str
    runtime: str
    statistic: str
    own_format: str | None
    by_model: dict[tuple[str, str], dict[str, Any]]
    session: dict[str, Any] | None = None  # the reference checks against the device's profile (SessionCheck)


def _governor(device: Any) -> str | None:
    """The device's CPU governor now (None where it reports none or cannot say)."""
    try:
        governor = (device.info() or {}).get("governor")
    except HwnasError:
        return None
    return governor if isinstance(governor, str) else None


class _FrontDeployment:
    """Deploying one run's front: export every model once, measure them on each device (concurrently, from
    one thread per device), then record every device's measurements into the run folder (one writer)."""

    def __init__(self, run_dir: str | Path, formats: Sequence[str], *, int8: bool = False, supernet: Any = None,
                 calib: Any = None, max_models: int | None = None, bn_data: Any = None,
                 workspace: Workspace | None = None):
        from hwnas.export import random_calib

        self.run = RunFolder(run_dir)
        self.run_settings = self.run.read_settings()
        self.doc = self.run.read_front()
        if not self.doc["front"]:
            raise SearchError(f"{self.run.path} has an empty front: nothing to deploy")
        rows = self.doc["front"]
        if max_models is not None and len(rows) > max_models:
            picks = sorted({int(round(i)) for i in np.linspace(0, len(rows) - 1, max_models)})
            rows = [rows[i] for i in picks]
        self.rows = rows
        self.space = from_config(self.run_settings["space"])
        _check_formats(formats)
        self.formats = list(formats)
        self.precisions = ["fp32"] + (["int8"] if int8 else [])
        if int8 and calib is None:
            if supernet is not None:
                raise DataError("int8 export of a supernet's subnets needs calibration images; pass calib= (NCHW "
                                "float32 images from the training data)")
            calib = random_calib(self.space, self.space.validate(rows[0]["arch"]))
        if supernet is not None and bn_data is None:
            bn_data = _search_bn_images(self.run_settings)
        self.supernet, self.calib, self.bn_data = supernet, calib, bn_data
        self.jobs = [(r, f, p) for r in rows for f in self.formats for p in self.precisions]
        self.exported: dict[tuple[str, str, str], Any] = {}
        self.ws = workspace
        self.checks: dict[str, Any] = {}  # device -> SessionCheck
        self.check_models: dict[str, list[Any]] = {}  # device -> the check subnets' BenchmarkModels
        self.settings: dict[str, tuple[Any, str]] = {}  # device -> (its BenchmarkSettings, where they came from)

    def _interval_predictor(self, device: str, runtime: str) -> Any:
        """The workspace's latency predictor for `device`, this space and `runtime`, where it can give a 95%
        interval: None without a workspace, a predictor or its interval calibration."""
        from hwnas.workflows.search import load_device_predictor

        if self.ws is None:
            return None
        try:
            predictor = load_device_predictor(self.ws, device, self.space, runtime)
            predictor.interval_halfwidth(0.95)  # raises without a calibration
        except HwnasError:
            return None
        return predictor

    def plan_checks(self, device: str, settings: Any, given: bool = True) -> None:
        """Plan the reference checks of `device` measuring with `settings` (on the driver: reads the workspace's
        profile and store). Without a profile of this space and runtime there is nothing to check against.
        Unless the settings were `given`, the device then measures as its profile did (`profiled_settings`:
        its runs, rounds, warm-up, time floor and fresh sessions), so that predicted and measured compare."""
        from hwnas.profiling.drift import plan_session_check, profiled_settings
        from hwnas.profiling.profile import load_profile, profile_path
        from hwnas.profiling.store import MeasurementStore

        self.settings[device] = (settings, "given" if given else "device")
        if self.ws is None:
            return
        path = profile_path(self.ws, device, self.space.name, settings.runtime, "fp32")
        if not path.is_file():
            return
        statistic = (self.run_settings.get("latency_statistics") or {}).get(device) or "median_ms"
        try:
            profile = load_profile(path)
            if not given:
                settings = profiled_settings(profile, settings)
                self.settings[device] = (settings, "profile")
            check = plan_session_check(profile, path, MeasurementStore.for_device(self.ws, device).records(),
                                       self.space, settings, statistic)
        except HwnasError:
            return  # a damaged profile: `fit` and `profile` say so; deploy measures without the check
        if check is not None:
            self.checks[device] = check

    def export(self, progress: ProgressFn | None) -> None:
        from hwnas.export import export_arch
        from hwnas.export.config import ExportConfig
        from hwnas.workflows.export import input_description

        # the phone app's facts in model.json and the .tflite: normalisation and labels of the searched data
        described = input_description(self.supernet, self.space, None, self.run_settings.get("data"), [])
        config = ExportConfig(**described)
        models_dir = self.run.path / "models"
        for i, (row, fmt, precision) in enumerate(self.jobs):
            emit(progress, "export", i, len(self.jobs))
            meta = {"run": str(self.run.path), "search_values": row["values"],
                    "predicted": row.get("predicted") or {}}
            self.exported[(row["key"], fmt, precision)] = export_arch(
                self.space, row["arch"], models_dir, fmt, precision, supernet=self.supernet,
                calib=self.calib if precision == "int8" else None, meta=meta, bn_data=self.bn_data, config=config)
        emit(progress, "export", len(self.jobs), len(self.jobs))
        self._export_checks()

    def _export_checks(self) -> None:
        """The check subnets' models: the very files the profile measured (random weights, cached by arch)."""
        from hwnas.devices.base import BenchmarkModel
        from hwnas.export import export_arch, format_for_runtime
        from hwnas.profiling.profiler import _export_arch_cached, arch_models_dir

        for device, check in list(self.checks.items()):
            fmt = format_for_runtime(check.runtime)
            folder = arch_models_dir(self.ws, self.space, fmt, "fp32")
            try:
                exported = [(a, _export_arch_cached(export_arch, self.space, a, folder, fmt, "fp32"))
                            for a in [*check.archs, *check.riders]]
            except HwnasError:
                del self.checks[device]  # measured without the check rather than not at all
                continue
            self.check_models[device] = [BenchmarkModel(e.path, a.key, e.sha256) for a, e in exported]

    def measure(self, device: Any, settings: Any, progress: ProgressFn | None) -> _Measured:
        """Measure every exported model on the open `device` (touches no file: safe from several threads)."""
        from hwnas.devices.base import BenchmarkModel
        from hwnas.export import FORMAT_RUNTIMES, format_for_runtime

        planned = self.settings.get(device.name)  # plan_checks: the profile's settings, or the device's own
        base_settings = settings or (planned[0] if planned else device.default_settings())
        # measured in the figure the search's latency for this device was predicted in (its predictor's
        # statistic), so that predicted and measured compare like with like; median for a device the search did
        # not predict
        statistic = (self.run_settings.get("latency_statistics") or {}).get(device.name) or "median_ms"
        try:
            own_format = format_for_runtime(base_settings.runtime)
        except HwnasError:
            own_format = None
        measured = _Measured(device.name, base_settings.runtime, statistic, own_format, {})
        check = self.checks.get(device.name)
        states: list[Any] = []  # the device's state around each measurement (frequency, temperature)
        start = self._measure_checks(device, base_settings, check, "start", progress, states)
        with_front: dict[str, float] = {}
        first_level: dict[str, Any] | None = None
        done = 0
        for fmt in self.formats:
            runtime_settings = replace(base_settings, runtime=FORMAT_RUNTIMES[fmt])
            for precision in self.precisions:
                models = [BenchmarkModel(self.exported[(r["key"], fmt, precision)].path, r["key"]) for r in self.rows]
                # the check subnets ride along in the batch of the format the profile measured: their rounds
                # interleave with the front's, so they see the load the front saw
                controls = (self.check_models.get(device.name) or []) \
                    if check is not None and fmt == own_format and precision == "fp32" else []
                control_keys = {c.key for c in controls} - {m.key for m in models}
                batch = models + [c for c in controls if c.key in control_keys]
                by_key = measured.by_model.setdefault((fmt, precision), {})
                by_key.update(self._measure_batch(device, batch, runtime_settings, control_keys, check, with_front,
                                                  states, progress, (done, len(self.jobs), "measure")))
                done += len(models)
                if control_keys and with_front:
                    level = check.compare({}, {}, with_front)
                    if level["shifted"]:
                        # once more, as the profile does with its second batch: a slow phase of the host over this
                        # batch passes, a device whose speed really changed stays changed; the newest batch counts
                        first_level = {"ratio": level["ratio"], "threshold_pct": level["threshold_pct"]}
                        with_front.clear()
                        emit(progress, "measure again", 0, len(models))
                        by_key.update(self._measure_batch(device, batch, runtime_settings, control_keys, check,
                                                          with_front, states, progress,
                                                          (0, len(models), "measure again")))
        if check is not None:
            from hwnas.profiling.drift import device_conditions

            end = self._measure_checks(device, base_settings, check, "end", progress, states)
            measured.session = check.compare(start, end, with_front, device_conditions(states, _governor(device)))
            if first_level is not None:
                measured.session["first_batch"] = first_level
        return measured

    @staticmethod
    def _measure_batch(device: Any, batch: list[Any], settings: Any, control_keys: set[str], check: Any,
                       with_front: dict[str, float], states: list[Any], progress: ProgressFn | None,
                       counter: tuple[int, int, str]) -> dict[str, Any]:
        """One batch on the open `device`: {key: Measurement} of its front models; the check subnets among them
        (`control_keys`) go to `with_front` in the check's statistic, every model's states to `states`;
        `counter`: (models done before, total, event name) for `progress`."""
        found = {}
        done, total, event = counter
        for m in device.benchmark(batch, settings):
            states += [m.state_before, m.state_after]
            if m.key in control_keys:
                if m.ok:
                    with_front[m.key] = float(getattr(m, check.statistic))
                continue
            found[m.key] = m
            done += 1
            emit(progress, event, done, total, m.key)
        return found

    def _measure_checks(self, device: Any, settings: Any, check: Any, phase: str, progress: ProgressFn | None,
                        states: list[Any]) -> dict[str, float]:
        """The check subnets measured now, in the check's statistic: {key: ms}; their states added to `states`.
        The other reference subnets (`check.riders`) are measured in the front's batch only."""
        if check is None:
            return {}
        keys = {a.key for a in check.archs}
        models = [m for m in self.check_models.get(device.name) or [] if m.key in keys]
        if not models:
            return {}
        emit(progress, f"reference check ({phase})", 0, len(models))
        found = {}
        for i, m in enumerate(device.benchmark(models, settings), 1):
            states += [m.state_before, m.state_after]
            if m.ok:
                found[m.key] = float(getattr(m, check.statistic))
            emit(progress, f"reference check ({phase})", i, len(models), m.key)
        return found

    def record(self, measured: list[_Measured]) -> list[dict[str, Any]]:
        """Write each device's measurements into model.json, front.json/.csv and report.html; the front rows."""
        from hwnas.export import FORMAT_RUNTIMES, update_sidecar
        from hwnas.profiling.drift import TIMING_FIELDS

        for got in measured:
            predictor = self._interval_predictor(got.device, got.runtime)
            for fmt in self.formats:
                for precision in self.precisions:
                    by_key = got.by_model.get((fmt, precision), {})
                    for row in self.rows:
                        model = self.exported[(row["key"], fmt, precision)]
                        suffix = "" if (fmt == got.own_format and precision == "fp32") else f",{fmt}" + (
                            f",{precision}" if precision != "fp32" else "")
                        row.setdefault("models", {})[f"{fmt}-{precision}"] = str(model.path.relative_to(self.run.path))
                        entry = _measured_entry(row, by_key.get(row["key"]), got.device, FORMAT_RUNTIMES[fmt],
                                                got.statistic)
                        row.setdefault("measured", {})[f"latency_ms[{got.device}{suffix}]"] = entry["measured_ms"]
                        if not suffix:  # what the device's predictor predicts: the prediction's interval
                            entry.update(_interval_entry(row, got.device, entry["measured_ms"], predictor))
                        update_sidecar(model.sidecar or model.path, deployed={f"{got.device}/{fmt}-{precision}": entry})
            entry = {"formats": self.formats, "precisions": self.precisions, "runtime": got.runtime,
                     "statistic": got.statistic}
            if got.device in self.settings:
                used, source = self.settings[got.device]
                entry["settings"] = {**{k: getattr(used, k) for k in TIMING_FIELDS}, "from": source}
            if got.session is not None:
                entry["session_check"] = {**got.session, **_front_errors(self.rows, got.device, got.session)}
            self.doc["deployed"] = {**self.doc.get("deployed", {}), got.device: entry}
        self.run.write_front(self.doc)
        write_report(self.run)
        return self.doc["front"]


def _interval_entry(row: dict[str, Any], device: str, measured_ms: float | None,
                    predictor: Any) -> dict[str, Any]:
    """The 95% interval around a row's predicted latency on `device` and whether `measured_ms` fell inside it;
    written into the front row (`interval_95`, `within_interval_measured`) and returned for model.json. Nothing
    without a prediction, a measurement or an interval (and what an earlier deploy recorded is dropped)."""
    for name in ("interval_95", "within_interval_measured"):
        (row.get(name) or {}).pop(device, None)
    predicted = _predicted(row, latency_name(device))
    if predicted is None or predictor is None or not measured_ms:
        return {}
    lo, hi = (float(v[0]) for v in predictor.interval_from(np.array([predicted]), 0.95))
    hi = hi if math.isfinite(hi) else None
    inside = bool(lo <= measured_ms and (hi is None or measured_ms <= hi))
    interval = [float(f"{lo:.6g}"), float(f"{hi:.6g}") if hi is not None else None]
    row.setdefault("interval_95", {})[device] = interval
    row.setdefault("within_interval_measured", {})[device] = inside
    return {"interval_95_ms": interval, "in_interval": inside}


def _front_errors(rows: list[dict[str, Any]], device: str, session: dict[str, Any]) -> dict[str, Any]:
    """The deployed front's error against its predictions on `device` (in %, (predicted - measured) / measured),
    as predicted and scaled by the session's `ratio`: {"front_error_pct": {"predicted": [...], "scaled": [...]}}."""
    name = latency_name(device)
    ratio = session.get("ratio")
    raw, scaled = [], []
    for row in rows:
        p = _predicted(row, name)
        m = (row.get("measured") or {}).get(name)
        if p is None or not m:
            continue
        raw.append(round(100.0 * (p - m) / m, 2))
        if ratio:
            scaled.append(round(100.0 * (p * ratio - m) / m, 2))
    return {"front_error_pct": {"predicted": raw, "scaled": scaled}}


def _predicted(row: dict[str, Any], name: str) -> float | None:
    """A front row's predicted latency `name`: its own prediction, else the search's objective value."""
    return (row.get("predicted") or {}).get(name, row["values"].get(name))


def _measured_entry(row: dict[str, Any], m: Any, device: str, runtime: str, statistic: str) -> dict[str, Any]:
    """What model.json records of one deployed model's measurement, next to its predicted latency."""
    ok = m is not None and m.ok
    name = latency_name(device)
    return {"device": device, "runtime": runtime,
            "measured_ms": getattr(m, statistic) if ok else None, "statistic": statistic,
            "median_ms": m.median_ms if ok else None, "min_ms": m.min_ms if ok else None,
            "runs": m.n if ok else None,
            "predicted_ms": _predicted(row, name),
            "status": m.status if m is not None else "missing",
            "error": m.error if m is not None else "no measurement came back",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _search_bn_images(run_settings: dict[str, Any]) -> np.ndarray | None:
    """The images `SupernetAccuracy` re-estimated batch norms on: the first ones of the run's validation data
    (None when that data is gone)."""
    from hwnas.data import load_dataset

    try:
        data = load_dataset(run_settings.get("data", "mnist5k"), split="val")
    except HwnasError:
        return None
    images = data.x[: int(run_settings.get("bn_calibration_images") or 1000)]
    return images if len(images) else None

