"""Accuracy figures of a latency predictor: MAPE, RMSPE, share within +-5% and +-10%, Spearman, Kendall."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from hwnas.errors import PredictorError

__all__ = ["mape", "rmspe", "within", "spearman", "kendall", "evaluate_predictions"]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).reshape(-1)
    p = np.asarray(y_pred, dtype=float).reshape(-1)
    if t.shape != p.shape:
        raise PredictorError(f"got {t.size} measured and {p.size} predicted values; they must pair up")
    if t.size == 0:
        raise PredictorError("no values to evaluate")
    if np.any(t <= 0) or not np.all(np.isfinite(t)) or not np.all(np.isfinite(p)):
        raise PredictorError("measured values must be positive and finite, predictions finite")
    return t, p


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, in %."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) / t) * 100)


def rmspe(y_true: Any, y_pred: Any) -> float:
    """Root mean squared percentage error, in %."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean(((p - t) / t) ** 2)) * 100)


def within(y_true: Any, y_pred: Any, pct: float) -> float:
    """Share (0..1) of predictions within +-pct % of the measured value."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) / t <= pct / 100 + 1e-12))


def spearman(y_true: Any, y_pred: Any) -> float:
    t, p = _pair(y_true, y_pred)
    return float(stats.spearmanr(t, p).statistic) if t.size > 1 else float("nan")


def kendall(y_true: Any, y_pred: Any) -> float:
    t, p = _pair(y_true, y_pred)
    return float(stats.kendalltau(t, p).statistic) if t.size > 1 else float("nan")


def evaluate_predictions(y_true: Any, y_pred: Any) -> dict[str, float]:
    """{n, mape_pct, rmspe_pct, within_5pct, within_10pct, spearman, kendall} (shares as 0..1)."""
    t, p = _pair(y_true, y_pred)
    return {
        "n": int(t.size),
        "mape_pct": mape(t, p),
        "rmspe_pct": rmspe(t, p),
        "within_5pct": within(t, p, 5),
        "within_10pct": within(t, p, 10),
        "spearman": spearman(t, p),
        "kendall": kendall(t, p),
    }
