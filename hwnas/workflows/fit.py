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

__all__ = ["FitResult", "PredictorEvaluation", "fit", "find_predictor", "predict", "evaluate_predictor",
           "LATENCY_PREDICTORS"]

LATENCY_PREDICTORS = ("lut", "lut-calibrated", "gbm")  # those `evaluate_predictor(compare=True)` fits and scores


@dataclass
class FitResult:
    """A fitted predictor, where it was written, and what it was fitted on."""

    path: Path
    predictor: Any
    device: str
    space: str
    runtime: str
    operators: int
    trained_on: list[str]
    held_out: dict[str, Any] | None = None  # error metrics on the profile's subnets it did not learn from

    def summary(self) -> str:
        """One line on how good the predictor is, from its held-out subnets (or why that is unknown)."""
        if not self.held_out:
            return "no held-out measured subnets to report an error on: profile with --reference 20"
        m = self.held_out
        return (f"on {m['n']} held-out measured subnets: {m['mape_pct']:.1f}% mean error, "
                f"{m['within_10pct'] * 100:.0f}% within 10%, Spearman {m['spearman']:.3f}")


@dataclass
class PredictorEvaluation:
    """Error metrics per predictor on held-out subnets (the file's first), the plot, and predictors that could
    not be fitted for the comparison (name -> why)."""

    path: Path
    plot: Path
    metrics: dict[str, dict[str, Any]]
    held_out: int
    skipped: dict[str, str] = field(default_factory=dict)


def fit(device: str, predictor: str = "lut-calibrated", *, workspace: Workspace | str | Path | None = None,
        space: str | None = None, runtime: str | None = None, precision: str = "fp32", base: str | Path | None = None,
        k: int | None = None, out: str | Path | None = None, statistic: str = "median_ms") -> FitResult:
    """Fit `predictor` (lut, lut-calibrated, gbm or few-shot with `base`, another device's predictor file, and
    `k` reference subnets) on the device's profile and write it to `out` (default
    `predictors/<device>-<space>-<runtime>.json`)."""
    from hwnas.predictors.fitting import fit_from_profile
    from hwnas.profiling import find_profile, load_profile

    ws = resolve_workspace(workspace)
    path = find_profile(ws, device, space, runtime, precision)
    profile = load_profile(path, space=space, runtime=runtime, precision=precision)
    model = fit_from_profile(predictor, profile, profile_path=path, base=str(base) if base else None, max_samples=k,
                             statistic=statistic)
    target = Path(out) if out is not None else ws.predictor_path(device, profile["space"]["name"],
                                                                    profile["runtime"])
    from hwnas.predictors.fitting import evaluate_on_rows, held_out_rows

    held = held_out_rows(model, profile)
    metrics = evaluate_on_rows(model, held)[0] if held else None
    model.save(target)
    return FitResult(target, model, device, profile["space"]["name"], profile["runtime"], len(profile["operators"]),
                     list(model.meta_["trained_on"]), metrics)


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


def predict(device: str, archs: Sequence[Any], *, workspace: Workspace | str | Path | None = None,
            space: str | None = None, runtime: str | None = None,
            file: str | Path | None = None) -> tuple[Path, Any, list[tuple[str, float]]]:
    """Predicted latency (ms) of `archs` (arch dicts, keys or Arch objects) on a device: the predictor file
    used, the predictor, and (arch key, ms) pairs in order."""
    from hwnas.predictors import load_predictor

    if not archs:
        raise PredictorError("no arch given: the JSON list is empty")
    path = Path(file) if file is not None else find_predictor(device, workspace=workspace, space=space,
                                                               runtime=runtime)
    model = load_predictor(path)
    checked = [model.space_.validate(a) for a in archs]
    latency = model.predict(checked)
    return path, model, [(a.key, float(v)) for a, v in zip(checked, latency, strict=True)]


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
    skipped: dict[str, str] = {}
    if compare:
        for name in LATENCY_PREDICTORS:
            try:
                other = fit_from_profile(name, profile, prof_path, statistic=meta.get("statistic") or "median_ms")
            except PredictorError as exc:
                skipped[name] = str(exc)
                continue
            trained = set(other.meta_["trained_on"])
            results[name] = evaluate_on_rows(other, [r for r in rows if r["key"] not in trained])[0]
    plot_path = Path(plot) if plot is not None else path.with_name(path.stem + "-eval.png")
    scatter_plot(np.asarray(y), np.asarray(pred), plot_path,
                 title=f"{device}: {model.name} on {len(rows)} held-out subnets", metrics=metrics)
    return PredictorEvaluation(path, plot_path, results, len(rows), skipped)
