"""Fitting predictors from a profile (a dict as written by `hwnas profile`) and evaluating them on held-out
subnets: which measured subnets train which predictor, and which are left for evaluation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import PredictorError
from hwnas.predictors.base import Predictor
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.predictors.registry import create_predictor

__all__ = ["TRAIN_ROLES", "STATISTICS", "measured_rows", "fit_from_profile", "held_out_rows", "evaluate_on_rows"]

# the measured subnets each predictor learns from; the rest of a profile's subnets are held out
TRAIN_ROLES = {"lut": (), "lut-calibrated": ("calibration",), "gbm": ("calibration",), "few-shot": ("reference",)}


def measured_rows(profile: dict[str, Any], roles: tuple[str, ...] = ("reference", "calibration", "extra")) \
        -> list[dict[str, Any]]:
    rows = []
    for role in roles:
        for row in profile.get(role) or []:
            rows.append({**row, "role": role})
    return rows


STATISTICS = ("median_ms", "mean_ms", "min_ms", "p90_ms")


def _statistic(statistic: str) -> str:
    if statistic not in STATISTICS:
        raise PredictorError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    return statistic


def fit_from_profile(name: str, profile: dict[str, Any], profile_path: str | Path | None = None,
                     base: Any = None, max_samples: int | None = None, statistic: str = "median_ms",
                     **options: Any) -> Predictor:
    """Fit predictor `name` on a profile: the operator table plus the subnets of its training roles.

    `statistic` picks which per-model figure is the latency: the median (default), or the minimum, which
    is steadier on a machine whose CPU is shared with other work.
    """
    stat = _statistic(statistic)
    roles = TRAIN_ROLES.get(name)
    if roles is None:
        raise PredictorError(f"predictor {name!r} is not fitted from profiles; choose one of {', '.join(TRAIN_ROLES)}")
    space = profile["space"]
    rows = measured_rows(profile, roles)
    if max_samples is not None:
        rows = rows[:max_samples]
    if name == "few-shot":
        if base is None:
            raise PredictorError("few-shot needs --base: a predictor file fitted on another device of the same space")
        predictor = create_predictor(name, space=space, base=base, **options)
    elif name == "gbm" and not profile["operators"]:
        # a profile of whole subnets only (`hwnas profile --no-operators`): the trees learn without table features
        predictor = create_predictor(name, space=space, **options)
    else:
        try:
            table = {key: value[stat] for key, value in profile["operators"].items()}
        except (KeyError, TypeError):
            raise PredictorError(f"the profile's operators have no {stat}; re-run `hwnas profile`") from None
        predictor = create_predictor(name, space=space, table=table, **options)
    if roles and not rows:
        raise PredictorError(f"{name} learns from measured subnets ({'/'.join(roles)}) and the profile has none; "
                             "re-run `hwnas profile` with --calibration N")
    predictor.fit([r["arch"] for r in rows], np.array([r[stat] for r in rows]) if rows else None)
    predictor.meta_ = {
        "device": profile.get("device"), "runtime": profile.get("runtime"), "precision": profile.get("precision"),
        "threads": profile.get("threads"), "profile": str(profile_path) if profile_path else None,
        "profile_date": profile.get("date"), "fitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trained_on": [r["key"] for r in rows], "statistic": stat,
    }
    return predictor


def held_out_rows(predictor: Predictor, profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile's measured subnets the predictor did not learn from."""
    trained = set((getattr(predictor, "meta_", {}) or {}).get("trained_on") or [])
    return [r for r in measured_rows(profile) if r["key"] not in trained]


def evaluate_on_rows(predictor: Predictor, rows: list[dict[str, Any]], statistic: str | None = None) \
        -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """(metrics, measured ms, predicted ms) over measured rows (default statistic: the one it was fitted on)."""
    stat = _statistic(statistic or (getattr(predictor, "meta_", {}) or {}).get("statistic") or "median_ms")
    if not rows:
        raise PredictorError("no held-out measured subnets to evaluate on; profile with more --calibration "
                             "subnets or measure some with `hwnas profile --measure-archs FILE`")
    try:
        y = np.array([r[stat] for r in rows], dtype=float)
    except KeyError:
        raise PredictorError(f"the profile's subnets have no {stat}; re-run `hwnas profile`") from None
    pred = predictor.predict([r["arch"] for r in rows])
    return evaluate_predictions(y, pred), y, pred
