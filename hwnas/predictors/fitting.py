"""Fitting predictors from a profile (a dict as written by `hwnas profile`) and evaluating them on held-out
subnets: which measured subnets train which predictor, and which are left for evaluation."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import PredictorError
from hwnas.predictors.base import Predictor
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.predictors.registry import create_predictor
from hwnas.predictors.report import HeldOutReport, held_out_report

__all__ = ["TRAIN_ROLES", "STATISTICS", "measured_rows", "fit_from_profile", "held_out_rows", "evaluate_on_rows",
           "session_warnings", "describe_drift", "describe_noise", "fit_report"]

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


def session_warnings(profile: dict[str, Any], rows: list[dict[str, Any]] | None = None,
                     allow_drift: bool = False, source: str = "the profile") -> list[str]:
    """Warnings about the profiling sessions behind `rows` (default: all measured subnets).

    A session whose reference checks moved beyond their noise is a warning; subnets from several sessions are
    a PredictorError when any of them drifted or their reference levels disagree, unless `allow_drift`
    (then it is a warning too).
    """
    sessions = [s for s in profile.get("sessions") or [] if isinstance(s, dict)]
    rows = measured_rows(profile) if rows is None else rows
    used = {r.get("session") for r in rows if r.get("session")}
    warnings = []
    if not sessions and rows:
        warnings.append(f"{source} has no reference checks (profiled before they existed); drift between "
                        "measurements cannot be ruled out: re-profile to check it")
    relevant = [s for s in sessions if not used or s.get("id") in used]
    for s in relevant:
        noise = describe_noise(s)
        if s.get("drifted"):
            warnings.append(f"profiling session {s['id']} drifted: {describe_drift(s)}")
        elif noise:
            warnings.append(f"profiling session {s['id']} was noisy: {noise}: re-profile on a quiet device")
    if len(used) > 1:
        levels = _session_levels(profile, used)  # (move, threshold) on the references' yardstick, where it has one
        if levels is None:
            disagree = _sessions_disagree(relevant)
        else:
            disagree = levels if levels[0] > levels[1] else None
        problems = [w for w in warnings if "drifted" in w]
        if disagree:
            problems.append(f"the {len(used)} sessions measured the same reference subnets {disagree[0]:.0f}% apart "
                            f"(noise allows {disagree[1]:.0f}%)")
        if problems and not allow_drift:
            raise PredictorError(f"{source} mixes measurements from {len(used)} profiling sessions and "
                                 f"{'; '.join(problems)}: re-profile in one session on a quiet device (a new "
                                 "workspace or a cleared store), or accept it with --allow-drift")
        if disagree:
            warnings.append(problems[-1])
    return warnings


def fit_from_profile(name: str, profile: dict[str, Any], profile_path: str | Path | None = None,
                     base: Any = None, max_samples: int | None = None, statistic: str = "median_ms",
                     allow_drift: bool = False, **options: Any) -> Predictor:
    """Fit predictor `name` on a profile: the operator table plus the subnets of its training roles.

    `statistic` picks which per-model figure is the latency: the median (default), or the minimum, which
    is steadier on a machine whose CPU is shared with other work. Subnets from several profiling sessions
    that drifted or disagree are a PredictorError unless `allow_drift`; the warnings land in
    `predictor.meta_["warnings"]`.
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
    warnings = session_warnings(profile, rows, allow_drift, f"profile {profile_path}" if profile_path
                                else "the profile")
    if roles and not rows:
        raise PredictorError(f"{name} learns from measured subnets ({'/'.join(roles)}) and the profile has none; "
                             "re-run `hwnas profile` with --calibration N")
    predictor.fit([r["arch"] for r in rows], np.array([r[stat] for r in rows]) if rows else None)
    _calibrate_on_another_batch(predictor, profile, stat, {r["key"] for r in rows})
    predictor.meta_ = {
        "device": profile.get("device"), "runtime": profile.get("runtime"), "precision": profile.get("precision"),
        "threads": profile.get("threads"), "profile": str(profile_path) if profile_path else None,
        "profile_date": profile.get("date"), "fitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trained_on": [r["key"] for r in rows], "statistic": stat, "warnings": warnings,
    }
    return predictor


AGAIN_SOURCE = "reference subnets, another batch"
MIN_AGAIN = 19  # held-out scores a 95% split-conformal interval needs


def _calibrate_on_another_batch(predictor: Predictor, profile: dict[str, Any], stat: str, trained: set[str]) -> None:
    """Calibrate the prediction intervals on the profile's reference subnets as measured again in a batch of their
    own (`reference_again`), when it holds at least MIN_AGAIN the predictor did not learn from, unless the
    cross-validation interval within the profile is the wider at 95%: each covers what its own batch varies by,
    and the wider of two covers what either does. A later session (deploy, a user's own run) can differ from the
    profile by more than the profile's subnets differ among themselves: on this machine cross-validation
    residuals gave a 95% interval of +-4% that covered 56-64% of 120 subnets measured in later batches
    (benchmarks/README.md, "Fastest round")."""
    rows = [r for r in profile.get("reference_again") or [] if r["key"] not in trained and r.get(stat)]
    if len(rows) < MIN_AGAIN:
        return
    cv = predictor.__dict__.get("conformal_")  # None for the plain table sum
    within = predictor.interval_halfwidth(0.95) if cv else math.inf
    try:
        predictor.conformalize([r["arch"] for r in rows], np.array([r[stat] for r in rows], dtype=float),
                               source=AGAIN_SOURCE)
    except PredictorError:  # a predictor without intervals keeps none
        return
    if math.isfinite(within) and within > predictor.interval_halfwidth(0.95):
        predictor.conformal_ = cv


def fit_report(predictor: Predictor, profile: dict[str, Any], coverage: float = 0.95) -> HeldOutReport:
    """What `hwnas fit` prints after fitting on `profile`: the error and interval coverage on the profile's
    subnets the predictor did not learn from, and the drift warnings of `fit_from_profile`. With no held-out
    subnets, a PredictorError saying how to get some."""
    rows = held_out_rows(predictor, profile)
    stat = (getattr(predictor, "meta_", {}) or {}).get("statistic") or "median_ms"
    warnings = list((getattr(predictor, "meta_", {}) or {}).get("warnings") or [])
    if not rows:
        raise PredictorError("no held-out measured subnets to report on; profile with more --calibration "
                             "subnets or measure some with `hwnas profile --measure-archs FILE`")
    y = np.array([r[stat] for r in rows], dtype=float)
    return held_out_report(predictor, [r["arch"] for r in rows], y, coverage, warnings)


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


def _session_levels(profile: dict[str, Any], used: set[str]) -> tuple[float, float] | None:
    """(move in %, threshold %) between the levels of the `used` sessions furthest apart, each read on its
    reference subnets against the same yardstick (`reference_levels` of the profile, see
    `hwnas.profiling.drift.reference_levels`). None when the profile has no level for some used session
    (`_sessions_disagree` then compares the sessions' check subnets)."""
    found = profile.get("reference_levels")
    levels = found.get("sessions") if isinstance(found, dict) else None
    if not isinstance(levels, dict) or not all(isinstance(levels.get(sid), dict) for sid in used):
        return None
    try:
        mine = sorted((float(levels[sid]["level"]), float(levels[sid]["band_pct"])) for sid in used)
        floor = float(found.get("floor_pct") or 0.0)
    except (KeyError, TypeError, ValueError):
        return None
    (low, low_band), (high, high_band) = mine[0], mine[-1]
    if not (low > 0 and high > 0):
        return None
    return round(100.0 * (high / low - 1.0), 2), round(max(floor, math.hypot(low_band, high_band)), 2)


def _sessions_disagree(sessions: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(largest level ratio in %, threshold %) when two sessions measured the same check subnets more than the
    check batches' threshold apart (each session's level: the median of its checks), else None."""
    levels: dict[str, list[float]] = {}
    for s in sessions:
        for phase in s["checks"].values():
            for key, ms in phase.items():
                levels.setdefault(key, []).append((s["id"], ms))  # type: ignore[arg-type]
    worst = 0.0
    for key in levels:
        by_session: dict[str, list[float]] = {}
        for sid, ms in levels[key]:  # type: ignore[misc]
            by_session.setdefault(sid, []).append(ms)
        medians = [float(np.median(v)) for v in by_session.values()]
        if len(medians) > 1:
            worst = max(worst, 100.0 * (max(medians) / min(medians) - 1.0))
    threshold = max([_check_threshold(s) for s in sessions] or [CHECK_FLOOR_PCT])
    return (round(worst, 2), threshold) if worst > threshold else None


CHECK_FLOOR_PCT = 10.0  # as hwnas.profiling.drift.DRIFT_FLOOR_PCT: check batches of three are noisy


def _check_threshold(summary: dict[str, Any]) -> float:
    """The threshold for moves of the check subnets between check batches, from a session summary (a profile
    written before the summaries had `check_threshold_pct` gave it as `threshold_pct`)."""
    try:
        return max(CHECK_FLOOR_PCT, float(summary.get("check_threshold_pct", summary.get("threshold_pct"))))
    except (TypeError, ValueError):
        return CHECK_FLOOR_PCT


NOISY_SPREAD_PCT = 5.0  # subnets straying more than this between a session's two batches: a noisy device


def describe_noise(summary: dict[str, Any]) -> str | None:
    """Why a profiling session's measurements are noisy, in words, or None: its reference subnets, measured in
    the profile's batch and again in a batch of their own, strayed from their common level by more than
    `NOISY_SPREAD_PCT` (a robust standard deviation; 0.4-3.5% on this machine when it is quiet). Each subnet the
    session measured carries that noise, and so does a predictor fitted on them, whether or not the level moved."""
    again = summary.get("again")
    if not isinstance(again, dict):
        return None
    try:
        spread = float(again.get("spread_pct"))
    except (TypeError, ValueError):
        return None
    if not spread > NOISY_SPREAD_PCT:
        return None
    return (f"its {again.get('n')} reference subnets strayed {spread:.1f}% from their common level between the "
            f"profile's batch and their second batch (over {NOISY_SPREAD_PCT:.0f}%), so each measurement, and a "
            "predictor fitted on them, is no better than that")


def describe_drift(summary: dict[str, Any]) -> str:
    """How far a profiling session's speed moved, in words (from its summary in the profile's `sessions`)."""
    again = summary.get("again")
    if isinstance(again, dict) and again.get("level"):
        text = (f"its {again.get('n')} reference subnets measured again after the profile's batch ran "
                f"{float(again['level']):.2f}x their latency in it (noise allows "
                f"{float(summary.get('threshold_pct') or 0):.0f}%)")
    else:
        text = (f"its reference subnets moved {float(summary.get('drift_pct') or 0):.0f}% between its start and "
                f"end (noise allows {float(summary.get('threshold_pct') or 0):.0f}%)")
    return text + (": the device's speed changed during the profile" if summary.get("drifted") else "")
