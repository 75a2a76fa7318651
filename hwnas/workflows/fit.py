"""`fit`: a latency predictor from a device's profile, written as JSON; `predict`: latency of archs from it;
`evaluate_predictor`: its error on held-out measured subnets, with a scatter plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import PredictorError
from hwnas.workflows._common import resolve_workspace
from hwnas.workspace import Workspace

__all__ = ["FitResult", "Prediction", "PredictorEvaluation", "fit", "fit_measurements_file", "find_predictor",
           "predict", "evaluate_predictor", "LATENCY_PREDICTORS"]

LATENCY_PREDICTORS = ("lut", "lut-calibrated", "gbm")  # those `evaluate_predictor(compare=True)` fits and scores


@dataclass
class FitResult:
    """A fitted predictor, where it was written, what it was fitted on, and its held-out report (error, interval
    coverage, drift warnings; None when nothing was held out)."""

    path: Path
    predictor: Any
    device: str
    space: str
    runtime: str
    operators: int
    trained_on: list[str]
    report: Any = None
    note: str = ""

    def lines(self) -> list[str]:
        """What `hwnas fit` prints about how good the predictor is."""
        if self.report is None:
            return [self.note or "no held-out measured subnets to report an error on: profile with --reference 20"]
        return self.report.lines()


@dataclass
class PredictorEvaluation:
    """Error metrics per predictor on held-out subnets (the file's first), the plot, and predictors that could
    not be fitted for the comparison (name -> why). `by_resolution` splits each predictor's metrics into
    "profiled resolutions" and "unprofiled resolutions" (interpolated) when the held-out subnets have both."""

    path: Path
    plot: Path
    metrics: dict[str, dict[str, Any]]
    held_out: int
    skipped: dict[str, str] = field(default_factory=dict)
    by_resolution: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


RESOLUTION_GROUPS = ("profiled resolutions", "unprofiled resolutions")


def resolution_groups(space: Any, rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Measured rows split by whether their arch's resolution is one the profile measured operators at
    (`space.profiled_resolutions`); empty when the space has one input size or every row is in one group."""
    profiled = set(getattr(space, "profiled_resolutions", ()) or ())
    if not profiled:
        return {}
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in RESOLUTION_GROUPS}
    for row in rows:
        r = space.resolution(space.validate(row["arch"]))
        groups[RESOLUTION_GROUPS[0] if r in profiled else RESOLUTION_GROUPS[1]].append(row)
    return groups if all(groups.values()) else {}


def fit(device: str, predictor: str = "lut-calibrated", *, workspace: Workspace | str | Path | None = None,
        space: str | None = None, runtime: str | None = None, precision: str = "fp32", base: str | Path | None = None,
        k: int | None = None, out: str | Path | None = None, statistic: str = "median_ms", allow_drift: bool = False,
        coverage: float = 0.95) -> FitResult:
    """Fit `predictor` (lut, lut-calibrated, gbm or few-shot with `base`, another device's predictor file, and
    `k` reference subnets) on the device's profile and write it to `out` (default
    `predictors/<device>-<space>-<runtime>.json`). Profiling sessions whose reference subnets drifted apart are
    refused unless `allow_drift`. The result carries the error and `coverage` interval on held-out subnets."""
    from hwnas.predictors.fitting import fit_from_profile, fit_report
    from hwnas.profiling import find_profile, load_profile

    ws = resolve_workspace(workspace)
    path = find_profile(ws, device, space, runtime, precision)
    profile = load_profile(path, space=space, runtime=runtime, precision=precision)
    model = fit_from_profile(predictor, profile, profile_path=path, base=str(base) if base else None, max_samples=k,
                             statistic=statistic, allow_drift=allow_drift)
    target = Path(out) if out is not None else ws.predictor_path(device, profile["space"]["name"],
                                                                    profile["runtime"])
    try:
        report, note = fit_report(model, profile, coverage=coverage), ""
    except PredictorError as exc:
        report, note = None, str(exc)
    model.save(target)
    return FitResult(target, model, device, profile["space"]["name"], profile["runtime"], len(profile["operators"]),
                     list(model.meta_["trained_on"]), report, note)


def fit_measurements_file(device: str, csv_path: str | Path, predictor: str = "gbm", *,
                          workspace: Workspace | str | Path | None = None, space: Any = None,
                          supernet: str | Path | None = None, runtime: str | None = None,
                          out: str | Path | None = None, arch_column: str | None = None,
                          latency_column: str | None = None, seed: int = 0, coverage: float = 0.95) -> FitResult:
    """Fit `predictor` on whole-subnet measurements made elsewhere: a CSV of (arch, latency ms), DyNAS-T or
    HELP style. The space is `space` (a name) or the checkpoint `supernet`'s; the runtime is `runtime` or the
    workspace device's. A random fifth is held out for the report, then the predictor is refitted on all rows."""
    from hwnas.predictors.measurements import fit_measurements, read_measurements_csv
    from hwnas.workflows.profile import profile_space

    ws = resolve_workspace(workspace)
    if runtime is None:
        from hwnas.workflows._common import device_configs

        runtime = device_configs(ws, [device])[device].runtime
    sp = profile_space(space, supernet)
    rows = read_measurements_csv(csv_path, sp, arch_column=arch_column, latency_column=latency_column)
    model, report = fit_measurements(predictor, rows, sp, seed=seed, coverage=coverage)
    model.meta_ = {**model.meta_, "device": device, "runtime": runtime, "measurements": str(Path(csv_path).resolve())}
    target = Path(out) if out is not None else ws.predictor_path(device, sp.name, runtime)
    model.save(target)
    return FitResult(target, model, device, sp.name, runtime, 0, list(model.meta_["trained_on"]), report)


def find_predictor(device: str, *, workspace: Workspace | str | Path | None = None, space: str | None = None,
                   runtime: str | None = None) -> Path:
    """The predictor file of a device: the one for `space` and `runtime`, or its only one."""
    ws = resolve_workspace(workspace)
    if space and runtime:
        path = ws.predictor_path(device, space, runtime)
        if not path.exists():
            raise PredictorError(f"no predictor {path}; fit one with `hwnas fit {device} --space {space}`")
        return path
    candidates = []
    for path in sorted(ws.predictors_dir.glob(f"{device}-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        meta = (data.get("meta") or {}) if isinstance(data, dict) else {}
        if meta.get("device", device) != device:
            continue
        if space and (data.get("space") or {}).get("name") != space:
            continue
        if runtime and meta.get("runtime") != runtime:
            continue
        candidates.append(path)
    if not candidates:
        raise PredictorError(f"no predictor for device {device} in {ws.predictors_dir}; run `hwnas fit {device}` first")
    if len(candidates) > 1:
        raise PredictorError(f"device {device} has several predictors ({', '.join(p.name for p in candidates)}); "
                             "choose with --space and --runtime")
    return candidates[0]


@dataclass
class Prediction:
    """Predicted latency of one arch, with its `coverage` interval (None where the predictor has no interval
    calibration; `hi` is inf when it had too few held-out residuals for that coverage)."""

    key: str
    latency_ms: float
    lo_ms: float | None = None
    hi_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        finite = self.hi_ms is not None and np.isfinite(self.hi_ms)
        return {"key": self.key, "latency_ms": self.latency_ms, "lo_ms": self.lo_ms,
                "hi_ms": self.hi_ms if finite else None, "interval_unbounded": self.hi_ms is not None and not finite}


def predict(device: str, archs: Sequence[Any], *, workspace: Workspace | str | Path | None = None,
            space: str | None = None, runtime: str | None = None, file: str | Path | None = None,
            coverage: float = 0.95) -> tuple[Path, Any, list[Prediction]]:
    """Predicted latency (ms) of `archs` (arch dicts, keys or Arch objects) on a device, each with its
    `coverage` prediction interval: the predictor file used, the predictor, and one `Prediction` per arch."""
    from hwnas.predictors import load_predictor

    if not archs:
        raise PredictorError("no arch given: the JSON list is empty")
    path = Path(file) if file is not None else find_predictor(device, workspace=workspace, space=space,
                                                               runtime=runtime)
    model = load_predictor(path)
    checked = [model.space_.validate(a) for a in archs]
    latency = np.asarray(model.predict(checked), dtype=float)
    try:
        lo, hi = model.interval_from(latency, coverage)
    except PredictorError:  # a file fitted before intervals existed
        lo = hi = [None] * len(checked)
    return path, model, [Prediction(a.key, float(v), None if low is None else float(low),
                                    None if high is None else float(high))
                         for a, v, low, high in zip(checked, latency, lo, hi, strict=True)]


def evaluate_predictor(device: str, *, workspace: Workspace | str | Path | None = None, space: str | None = None,
                       runtime: str | None = None, precision: str = "fp32", file: str | Path | None = None,
                       plot: str | Path | None = None, compare: bool = False) -> PredictorEvaluation:
    """Score a device's predictor on the measured subnets it was not fitted on (MAPE, RMSPE, share within
    5/10%, Spearman, Kendall) and draw predicted against measured; `compare` also fits and scores
    `LATENCY_PREDICTORS` on the same profile."""
    from hwnas.predictors import load_predictor
    from hwnas.predictors.fitting import evaluate_on_rows, fit_from_profile, held_out_rows
    from hwnas.predictors.plot import scatter_plot
    from hwnas.profiling import find_profile, load_profile

    ws = resolve_workspace(workspace)
    path = Path(file) if file is not None else find_predictor(device, workspace=ws, space=space, runtime=runtime)
    model = load_predictor(path)
    meta = model.meta_
    prof_path = find_profile(ws, device, model.space_.name, meta.get("runtime") or runtime, precision)
    profile = load_profile(prof_path, space=model.space_.name)
    rows = held_out_rows(model, profile)
    metrics, y, pred = evaluate_on_rows(model, rows)
    results: dict[str, dict[str, Any]] = {f"{model.name} (file)": metrics}
    by_resolution: dict[str, dict[str, dict[str, Any]]] = {}
    skipped: dict[str, str] = {}

    def split(name: str, predictor: Any, scored: list[dict[str, Any]]) -> None:
        groups = resolution_groups(predictor.space_, scored)
        if groups:
            by_resolution[name] = {g: evaluate_on_rows(predictor, part)[0] for g, part in groups.items()}

    split(f"{model.name} (file)", model, rows)
    if compare:
        for name in LATENCY_PREDICTORS:
            try:
                other = fit_from_profile(name, profile, prof_path, statistic=meta.get("statistic") or "median_ms")
            except PredictorError as exc:
                skipped[name] = str(exc)
                continue
            trained = set(other.meta_["trained_on"])
            scored = [r for r in rows if r["key"] not in trained]
            results[name] = evaluate_on_rows(other, scored)[0]
            split(name, other, scored)
    plot_path = Path(plot) if plot is not None else path.with_name(path.stem + "-eval.png")
    scatter_plot(np.asarray(y), np.asarray(pred), plot_path,
                 title=f"{device}: {model.name} on {len(rows)} held-out subnets", metrics=metrics)
    return PredictorEvaluation(path, plot_path, results, len(rows), skipped, by_resolution)
