"""`gbm`: gradient-boosted trees (xgboost) on the arch encoding plus operator features (per-stage table sums,
table total, FLOPs, operator counts), on top of a linear base model.

The base is the calibrated table (with a table) or a ridge model on the operator features (without one); the
trees learn the log ratio of the measured latency to the base. With few samples the trees stay near zero and
the predictor is the base; with many they learn the interactions a sum cannot.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xgboost as xgb

from hwnas.predictors.base import Predictor
from hwnas.predictors.calibrated import fit_scale_offset
from hwnas.predictors.features import arch_features, stage_count
from hwnas.predictors.linear import RidgeFit, fit_ridge
from hwnas.predictors.registry import register_predictor
from hwnas.predictors.tables import read_table

__all__ = ["GBMPredictor", "booster_to_json", "booster_from_json"]


def booster_to_json(booster: xgb.Booster) -> dict[str, Any]:
    """xgboost's own JSON model format, as a dict to embed in our file."""
    return json.loads(bytes(booster.save_raw(raw_format="json")).decode("utf-8"))


def booster_from_json(data: dict[str, Any]) -> xgb.Booster:
    booster = xgb.Booster(params={"nthread": 1})
    booster.load_model(bytearray(json.dumps(data).encode("utf-8")))
    return booster


@register_predictor("gbm")
class GBMPredictor(Predictor):
    """xgboost on arch encodings and operator features, over a linear base. `table` is optional."""

    log_target = True

    def __init__(self, space: Any = None, table: Any = None, n_estimators: int = 400, max_depth: int = 4,
                 learning_rate: float = 0.05, subsample: float = 0.8, min_samples_trees: int = 20, seed: int = 0):
        self.space = space
        self.table = table
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.min_samples_trees = min_samples_trees
        self.seed = seed

    # ------------------------------------------------------------- features
    def _prepare(self) -> None:
        sp = self.space_
        self.n_stages_ = stage_count(sp)
        self.op_types_ = sorted({op.type for op in sp.all_operators()})

    def _features(self, archs: list) -> tuple[np.ndarray, np.ndarray]:
        """(operator features, operator features + one-hot encoding)."""
        sp = self.space_
        feats = arch_features(sp, archs, self.table_, self.n_stages_, self.op_types_)
        full = np.hstack([sp.encode(archs, "onehot"), feats]) if archs else np.zeros((0, 0))
        return feats, full

    def _base(self, feats: np.ndarray) -> np.ndarray:
        if self.table_ is not None:
            lut_total = feats[:, self.n_stages_]
            base = self.scale_ * lut_total + self.offset_ + self.linear_.predict(feats)
        else:
            base = self.linear_.predict(feats)
        return np.maximum(base, self.floor_)

    # ---------------------------------------------------------------- fit
    def fit(self, archs: Any, y: Any = None) -> GBMPredictor:
        archs = self._archs(archs)
        y = self._targets(y, len(archs), positive=self.log_target)
        self.table_ = read_table(self.table) if self.table is not None else None
        self._prepare()
        feats, full = self._features(archs)
        weights = 1.0 / y**2 if self.log_target else None
        self.floor_ = float(0.2 * np.min(y)) if self.log_target else -np.inf
        if self.table_ is not None:
            lut_total = feats[:, self.n_stages_]
            self.scale_, self.offset_ = fit_scale_offset(lut_total, y)
            residual = y - (self.scale_ * lut_total + self.offset_)
        else:
            self.scale_, self.offset_ = 0.0, 0.0
            residual = y
        self.linear_ = fit_ridge(feats, residual, weights=weights)
        base = self._base(feats)
        self.booster_ = None
        if len(y) >= self.min_samples_trees:
            target = np.log(y / base) if self.log_target else y - base
            dtrain = xgb.DMatrix(full, label=target)
            params = {"max_depth": self.max_depth, "eta": self.learning_rate, "subsample": self.subsample,
                      "colsample_bytree": 0.8, "min_child_weight": 2.0, "lambda": 1.0, "seed": self.seed,
                      "nthread": 1, "objective": "reg:squarederror", "base_score": 0.0}
            self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators)
        return self._fitted(len(y))

    def predict(self, archs: Any) -> np.ndarray:
        archs = self._fitted_archs(archs)
        if not archs:
            return np.zeros(0)
        feats, full = self._features(archs)
        base = self._base(feats)
        if self.booster_ is None:
            return base
        delta = self.booster_.predict(xgb.DMatrix(full))
        return base * np.exp(delta) if self.log_target else base + delta

    # ---------------------------------------------------------------- JSON
    def _params_json(self) -> dict[str, Any]:
        params = super()._params_json()
        if "table" in params:
            params["table"] = None  # the table is kept in the state
        return params

    def _state_json(self) -> dict[str, Any]:
        return {
            "table_ms": self.table_, "n_stages": self.n_stages_, "op_types": self.op_types_,
            "scale": self.scale_, "offset": self.offset_, "floor": self.floor_ if np.isfinite(self.floor_) else None,
            "linear": self.linear_.to_json(), "n_fit": self.n_fit_,
            "xgboost_json": booster_to_json(self.booster_) if self.booster_ is not None else None,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        table = state["table_ms"]
        self.table_ = {str(k): float(v) for k, v in table.items()} if table is not None else None
        self.n_stages_ = int(state["n_stages"])
        self.op_types_ = list(state["op_types"])
        self.scale_, self.offset_ = float(state["scale"]), float(state["offset"])
        self.floor_ = float(state["floor"]) if state["floor"] is not None else -np.inf
        self.linear_ = RidgeFit.from_json(state["linear"])
        self.n_fit_ = int(state["n_fit"])
        booster = state["xgboost_json"]
        self.booster_ = booster_from_json(booster) if booster is not None else None
