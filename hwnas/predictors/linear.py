"""A small weighted ridge regression with its penalty chosen by leave-one-out error, stored as plain numbers.

Used where few measurements exist (calibration, few-shot transfer, the base of boosted predictors).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import PredictorError

__all__ = ["RidgeFit", "fit_ridge"]

ALPHAS = tuple(10.0 ** np.arange(-4, 4.5, 0.5))


class RidgeFit:
    """y ~ x @ coef + intercept, on standardised columns; JSON round trip with `to_json`/`from_json`."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float, alpha: float):
        self.mean, self.scale, self.coef = mean, scale, coef
        self.intercept, self.alpha = float(intercept), float(alpha)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.coef):
            raise PredictorError(f"the predictor's linear model was fitted on {len(self.coef)} features and now gets "
                                 f"{x.shape[-1] if x.ndim else 0} (its file is damaged, or the space's encoding "
                                 "changed since); refit it with `hwnas fit`")
        z = (x - self.mean) / self.scale
        return z @ self.coef + self.intercept

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "alpha": self.alpha}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RidgeFit:
        arrays = {}
        for field in ("mean", "scale", "coef", "intercept"):
            arrays[field] = values = np.asarray(data[field], dtype=float)
            if not np.all(np.isfinite(values)) or np.any(np.abs(values) > 1e12):
                raise PredictorError(f"linear model field {field!r} holds a value that is not a finite number; "
                                     "refit it with `hwnas fit`")
        mean, scale, coef = arrays["mean"], arrays["scale"], arrays["coef"]
        if not (mean.ndim == scale.ndim == coef.ndim == 1 and len(mean) == len(scale) == len(coef)) \
                or arrays["intercept"].ndim != 0 or np.any(scale == 0):
            raise PredictorError("linear model fields mean, scale and coef must be lists of one length (scale "
                                 "nonzero) and intercept one number; refit it with `hwnas fit`")
        return cls(mean, scale, coef, data["intercept"], data["alpha"])


def _solve(z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    sw = w / w.sum()
    z_mean = sw @ z
    y_mean = sw @ y
    zc, yc = z - z_mean, y - y_mean
    a = zc.T @ (zc * w[:, None]) + alpha * np.eye(z.shape[1])
    coef = np.linalg.solve(a, zc.T @ (yc * w))
    return coef, float(y_mean - z_mean @ coef)


def fit_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
              alphas: tuple[float, ...] = ALPHAS) -> RidgeFit:
    """Weighted ridge; the penalty minimises the weighted leave-one-out (n > 60: 5-fold) error."""
    x = np.asarray(x, dtype=float).reshape(len(y), -1)
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    if len(y) < 3 or z.shape[1] == 0:
        intercept = float(np.average(y, weights=w))
        return RidgeFit(mean, scale, np.zeros(z.shape[1]), intercept, float("inf"))
    n = len(y)
    folds = np.arange(n) if n <= 60 else np.random.default_rng(0).permutation(n) % 5
    best = None
    for alpha in alphas:
        error = 0.0
        for fold in np.unique(folds):
            test = folds == fold
            coef, b = _solve(z[~test], y[~test], w[~test], alpha * n)
            error += float(w[test] @ (z[test] @ coef + b - y[test]) ** 2)
        if best is None or error < best[0] - 1e-12 * abs(best[0]):
            best = (error, alpha)
    alpha = best[1]
    coef, intercept = _solve(z, y, w, alpha * len(y))
    return RidgeFit(mean, scale, coef, intercept, alpha)
