"""`gbm`: gradient-boosted trees (xgboost) on the arch encoding plus operator features (per-stage table sums,
table total, FLOPs, operator counts), on top of a linear base model.

The base is the calibrated table (with a table) or a ridge model on the operator features (without one); the
trees learn the log ratio of the measured latency to the base. How many trees, and how deep, is chosen by
cross-validation on the samples at hand (`hwnas.predictors.capacity`): none when they do not beat the base out
of fold, so a few samples give the base and more samples give the trees only once they help.
The out-of-fold residuals of the chosen model calibrate the prediction intervals.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import PredictorError
from hwnas.predictors.base import Predictor, _checked_count, _checked_number
from hwnas.predictors.calibrated import fit_scale_offset
from hwnas.predictors.capacity import cv_splits, select_boosting, train_booster
from hwnas.predictors.features import MAX_STAGES, arch_features, stage_count
from hwnas.predictors.linear import RidgeFit, fit_ridge
from hwnas.predictors.registry import register_predictor
from hwnas.predictors.tables import read_table, table_from_mapping

if TYPE_CHECKING:
    import xgboost as xgb  # imported where boosters are made: xgboost takes 0.5 s to import

__all__ = ["GBMPredictor", "booster_to_json", "booster_from_json", "booster_predict"]


def booster_to_json(booster: xgb.Booster) -> dict[str, Any]:
    """xgboost's own JSON model format, as a dict to embed in our file."""
    return json.loads(bytes(booster.save_raw(raw_format="json")).decode("utf-8"))


def booster_from_json(data: dict[str, Any]) -> xgb.Booster:
    import xgboost as xgb

    booster = xgb.Booster(params={"nthread": 1})
    booster.load_model(bytearray(json.dumps(data).encode("utf-8")))
    return booster


def booster_predict(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    """The trees' output; a file whose trees saw another number of features (fitted when the space encoded
    something else, e.g. ofa-mbv3's resolution as one column per resolution) is a PredictorError."""
    if booster.num_features() != features.shape[1]:
        raise PredictorError(f"the predictor's trees were fitted on {booster.num_features()} features and the space "
                             f"now gives {features.shape[1]} (its encoding changed since); refit it with `hwnas fit`")
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(features))


@register_predictor("gbm")
class GBMPredictor(Predictor):
    """xgboost on arch encodings and operator features, over a linear base. `table` is optional.

    `n_estimators` and `max_depth` bound what cross-validation may choose (rounds 0..n_estimators, depth 2 or
    max_depth); `min_samples_trees`, if set, keeps trees off below that many samples whatever CV says.
    """

    log_target = True

    def __init__(self, space: Any = None, table: Any = None, n_estimators: int = 400, max_depth: int = 4,
                 learning_rate: float = 0.05, subsample: float = 0.8, min_samples_trees: int | None = None,
                 seed: int = 0):
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
    def _fit_base(self, feats: np.ndarray, y: np.ndarray) -> tuple[float, float, RidgeFit]:
        weights = 1.0 / y**2 if self.log_target else None
        if self.table_ is not None:
            lut_total = feats[:, self.n_stages_]
            scale, offset = fit_scale_offset(lut_total, y)
            residual = y - (scale * lut_total + offset)
        else:
            scale, offset, residual = 0.0, 0.0, y
        return scale, offset, fit_ridge(feats, residual, weights=weights)

    def _base_with(self, fitted: tuple[float, float, RidgeFit], feats: np.ndarray) -> np.ndarray:
        self.scale_, self.offset_, self.linear_ = fitted
        return self._base(feats)

    def _link(self, values: np.ndarray) -> np.ndarray:
        return np.log(values) if self.log_target else values

    def fit(self, archs: Any, y: Any = None) -> GBMPredictor:
        archs = self._archs(archs)
        y = self._targets(y, len(archs), positive=self.log_target)
        self.table_ = read_table(self.table) if self.table is not None else None
        self._prepare()
        feats, full = self._features(archs)
        self.floor_ = float(0.2 * np.min(y)) if self.log_target else -np.inf
        target = self._link(y)

        def base_fn(train: np.ndarray) -> np.ndarray:
            return self._link(self._base_with(self._fit_base(feats[train], y[train]), feats))

        allow = self.min_samples_trees is None or len(y) >= self.min_samples_trees
        choice = select_boosting(full, target, cv_splits(len(y), self.seed), base_fn,
                                 depths=tuple(sorted({2, int(self.max_depth)})), max_rounds=int(self.n_estimators),
                                 learning_rate=self.learning_rate, subsample=self.subsample, seed=self.seed,
                                 allow_trees=allow)
        base = self._base_with(self._fit_base(feats, y), feats)
        self.booster_ = None
        self.capacity_ = {"depth": choice.depth, "rounds": choice.rounds, "cv_mse": choice.cv_error,
                          "base_cv_mse": choice.base_cv_error,
                          "cv_loss": choice.cv_loss, "base_cv_loss": choice.base_cv_loss}
        if choice.rounds > 0:
            self.booster_ = train_booster(full, target - self._link(base), choice.depth, choice.rounds,
                                          self.learning_rate, self.subsample, self.seed)
        oof = np.exp(choice.oof) if self.log_target else choice.oof
        self._set_conformal(y, oof, "cross-validation")
        return self._fitted(len(y), y if self.log_target else None)

    def _predict(self, archs: Any) -> np.ndarray:
        archs = self._fitted_archs(archs)
        if not archs:
            return np.zeros(0)
        feats, full = self._features(archs)
        base = self._base(feats)
        if self.booster_ is None:
            return base
        delta = booster_predict(self.booster_, full)
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
            "capacity": getattr(self, "capacity_", None),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        table = state["table_ms"]
        self.table_ = table_from_mapping(table, "table_ms") if table is not None else None
        self.n_stages_ = _checked_count(state["n_stages"], "n_stages", 1, MAX_STAGES)
        self.op_types_ = list(state["op_types"])
        self.scale_, self.offset_ = _checked_number(state["scale"], "scale"), _checked_number(state["offset"], "offset")
        self.floor_ = _checked_number(state["floor"], "floor") if state["floor"] is not None else -np.inf
        self.capacity_ = state.get("capacity")
        self.linear_ = RidgeFit.from_json(state["linear"])
        self.n_fit_ = int(state["n_fit"])
        booster = state["xgboost_json"]
        self.booster_ = booster_from_json(booster) if booster is not None else None
