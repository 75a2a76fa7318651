"""`lut-calibrated`: the lookup-table sum corrected by a small model fitted on whole-subnet measurements.

Measuring operators one by one adds a per-invoke overhead to each and misses what a runtime fuses across
operators. The correction is y = s * lut + c (scale and overhead), plus a ridge term over per-stage table
sums and the operator count whose penalty is chosen by leave-one-out error, so that a handful of
measurements gives a scaled table and more measurements learn per-stage effects.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.predictors.base import Predictor, _checked_count, _checked_number
from hwnas.predictors.capacity import cv_folds
from hwnas.predictors.features import MAX_STAGES, stage_count, summarize, summary_lut
from hwnas.predictors.linear import RidgeFit, fit_ridge
from hwnas.predictors.registry import register_predictor
from hwnas.predictors.tables import read_table, table_from_mapping

__all__ = ["LUTCalibratedPredictor", "fit_scale_offset"]


def fit_scale_offset(base: np.ndarray, y: np.ndarray, offset: bool = True) -> tuple[float, float]:
    """Relative least squares of y ~ s * base + c (c = 0 with one sample or offset=False)."""
    w = 1.0 / y**2
    if len(y) < 3 or not offset or np.ptp(base) < 1e-9 * max(1.0, float(np.max(base))):
        return float(np.sum(w * base * y) / np.sum(w * base * base)), 0.0
    a = np.stack([base, np.ones_like(base)], axis=1)
    sw = np.sqrt(w)
    (s, c), *_ = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)
    if s <= 0:  # nonsense from too few points: fall back to a pure scale
        return float(np.sum(w * base * y) / np.sum(w * base * base)), 0.0
    return float(s), float(c)


def _calibrate(lut: np.ndarray, feats: np.ndarray, y: np.ndarray) -> tuple[float, float, RidgeFit]:
    scale, offset = fit_scale_offset(lut, y)
    correction = fit_ridge(feats, y - (scale * lut + offset), weights=1.0 / y**2)
    return scale, offset, correction


@register_predictor("lut-calibrated")
class LUTCalibratedPredictor(Predictor):
    """A lookup table (see `lut`) calibrated on measured whole subnets: `fit(archs, latency_ms)`."""

    def __init__(self, space: Any = None, table: Any = None):
        self.space = space
        self.table = table

    def _features(self, archs: list) -> tuple[np.ndarray, np.ndarray]:
        sp = self.space_
        stages, n_ops = [], []
        for a in archs:
            summary = summarize(sp, a, self.n_stages_)
            stages.append(summary_lut(summary, self.table_, self.n_stages_))
            n_ops.append(len(summary.keys))
        stages = np.array(stages).reshape(len(archs), self.n_stages_)
        return stages, np.column_stack([stages, n_ops])

    def fit(self, archs: Any, y: Any = None) -> LUTCalibratedPredictor:
        archs = self._archs(archs)
        y = self._targets(y, len(archs))
        if not hasattr(self, "table_") or self.table is not None:
            self.table_ = read_table(self.table)
        self.n_stages_ = stage_count(self.space_)
        stages, feats = self._features(archs)
        lut = stages.sum(axis=1)
        self.scale_, self.offset_, self.correction_ = _calibrate(lut, feats, y)
        # out-of-fold predictions: the residuals that calibrate the prediction intervals
        folds = cv_folds(len(y))
        oof = np.empty(len(y))
        for fold in np.unique(folds):
            test = folds == fold
            if (~test).sum() == 0:
                oof[test] = lut[test] * self.scale_
                continue
            s, c, corr = _calibrate(lut[~test], feats[~test], y[~test])
            oof[test] = s * lut[test] + c + corr.predict(feats[test])
        self._set_conformal(y, oof, "cross-validation")
        return self._fitted(len(archs), y)

    def components(self, archs: Any) -> np.ndarray:
        archs = self._fitted_archs(archs)
        stages, feats = self._features(archs)
        total = stages.sum(axis=1)
        pred = self.scale_ * total + self.offset_ + self.correction_.predict(feats)
        share = np.where(total[:, None] > 0, stages / np.maximum(total, 1e-12)[:, None], 1.0 / self.n_stages_)
        return share * pred[:, None]

    def _predict(self, archs: Any) -> np.ndarray:
        return self.components(archs).sum(axis=1)

    def _params_json(self) -> dict[str, Any]:
        params = super()._params_json()
        params["table"] = None
        return params

    def _state_json(self) -> dict[str, Any]:
        return {"table_ms": self.table_, "n_stages": self.n_stages_, "scale": self.scale_, "offset_ms": self.offset_,
                "correction": self.correction_.to_json(), "n_fit": self.n_fit_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.table_ = table_from_mapping(state["table_ms"], "table_ms")
        self.n_stages_ = _checked_count(state["n_stages"], "n_stages", 1, MAX_STAGES)
        self.scale_ = _checked_number(state["scale"], "scale", positive=True)
        self.offset_ = _checked_number(state["offset_ms"], "offset_ms")
        self.correction_ = RidgeFit.from_json(state["correction"])
        self.n_fit_ = int(state["n_fit"])
