"""`few-shot`: a predictor for a new device from a few subnets measured there and predictors of other devices
(sources) of the same space.

Candidates, all on log latency and all scored by cross-validation on the target's samples: each source
rescaled (the ranking is the source's), each source with a fitted slope, all sources combined by ridge, and all
sources plus the arch's operator features by ridge. On top of the chosen one, boosted trees on the arch
encoding, operator features and source predictions learn the residual. Both choices use the same folds and
criterion (`hwnas.predictors.capacity`: rank plus relative error out of fold, repeated splits when samples are
few, and the simplest candidate within one standard error of the best): a richer model is kept only where it
beats the simpler one by more than the fold-to-fold noise. So a handful of samples give a rescaled best source,
and more samples let the target re-rank it once that reliably helps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import PredictorError
from hwnas.predictors.base import Predictor, _checked_count, _checked_number
from hwnas.predictors.capacity import cv_splits, select_boosting, select_simplest, train_booster
from hwnas.predictors.features import MAX_STAGES, arch_features, stage_count
from hwnas.predictors.gbm import booster_from_json, booster_predict, booster_to_json
from hwnas.predictors.linear import RidgeFit, fit_ridge
from hwnas.predictors.registry import load_predictor, register_predictor
from hwnas.space import network_config

__all__ = ["FewShotPredictor"]


@register_predictor("few-shot")
class FewShotPredictor(Predictor):
    """`base` is a fitted latency Predictor, a predictor file, or a list of them (source devices, same space).

    `n_estimators` / `max_depth` bound the residual trees cross-validation may choose; `seed` fixes the folds.
    """

    def __init__(self, space: Any = None, base: Any = None, n_estimators: int = 300, max_depth: int = 4,
                 seed: int = 0):
        self.space = space
        self.base = base
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.seed = seed

    # ------------------------------------------------------------- sources
    def _sources(self) -> list[Predictor]:
        items = self.base if isinstance(self.base, (list, tuple)) else [self.base]
        if not items or any(b is None for b in items):
            raise PredictorError("few-shot needs base=<a fitted predictor of another device, or its file, "
                                 "or a list of them>")
        sources = []
        for base in items:
            if isinstance(base, (str, Path)):
                base = load_predictor(base)
            if not isinstance(base, Predictor):
                raise PredictorError(f"few-shot base must be a Predictor or a predictor file, got "
                                     f"{type(base).__name__}")
            base._check_fitted()
            if self.space is not None and network_config(base.space_.config()) != network_config(self.space_.config()):
                raise PredictorError(f"few-shot base predicts space {base.space_.name!r} with other options; "
                                     "use a base fitted for the same space")
            sources.append(base)
        return sources

    @property
    def base_(self) -> Predictor:
        """The first source (kept for callers of the one-source few-shot)."""
        return self.sources_[0]

    def _design(self, archs: list) -> tuple[np.ndarray, np.ndarray]:
        """(linear columns [log source predictions..., log1p operator features...], tree features)."""
        log_sources = np.column_stack([np.log(s.predict(archs)) for s in self.sources_])
        feats = np.log1p(np.maximum(arch_features(self.space_, archs, None, self.n_stages_, self.op_types_), 0))
        linear = np.hstack([log_sources, feats])
        return linear, np.hstack([self.space_.encode(archs, "onehot"), linear])

    def _candidates(self, n: int) -> list[tuple[int, str, list[int]]]:
        """(complexity, kind, columns) of the linear candidates, simplest first."""
        m = len(self.sources_)
        out: list[tuple[int, str, list[int]]] = [(0, "offset", [i]) for i in range(m)]
        if n >= 4:
            out += [(1, "ridge", [i]) for i in range(m)]
            if m > 1:
                out.append((2, "ridge", list(range(m))))
            if n >= 6:
                out.append((3, "ridge", list(range(self.n_linear_))))
        return out

    @staticmethod
    def _fit_linear(kind: str, cols: list[int], x: np.ndarray, t: np.ndarray) -> Any:
        if kind == "offset":  # the median log ratio: a few slow outliers must not shift every prediction
            return float(np.median(t - x[:, cols[0]]))
        return fit_ridge(x[:, cols], t)

    @staticmethod
    def _apply_linear(kind: str, cols: list[int], model: Any, x: np.ndarray) -> np.ndarray:
        if kind == "offset":
            return x[:, cols[0]] + model
        return model.predict(x[:, cols])

    # ---------------------------------------------------------------- fit
    def fit(self, archs: Any, y: Any = None) -> FewShotPredictor:
        self.sources_ = self._sources()
        if self.space is None:
            self.space = self.sources_[0].space_
        archs = self._archs(archs)
        y = self._targets(y, len(archs))
        self.n_stages_ = stage_count(self.space_)
        self.op_types_ = sorted({op.type for op in self.space_.all_operators()})
        x, full = self._design(archs)
        self.n_linear_ = x.shape[1]
        t = np.log(y)
        splits = cv_splits(len(y), self.seed)
        candidates = self._candidates(len(y))
        oofs = np.empty((len(candidates), len(splits), len(y)))
        for c, (_, kind, cols) in enumerate(candidates):
            for s, split in enumerate(splits):
                for fold in np.unique(split):
                    test = split == fold
                    train = ~test if (~test).any() else test
                    model = self._fit_linear(kind, cols, x[train], t[train])
                    oofs[c, s, test] = self._apply_linear(kind, cols, model, x[test])
        # equally simple candidates (one per source) in order of their loss, so ties go to the better source
        mean_error = np.abs(oofs - t).mean(axis=(1, 2))
        order = sorted(range(len(candidates)), key=lambda c: (candidates[c][0], mean_error[c]))
        _, kind, cols = candidates[order[select_simplest(oofs[order], t, self.seed)]]

        def base_fn(train: np.ndarray) -> np.ndarray:
            return self._apply_linear(kind, cols, self._fit_linear(kind, cols, x[train], t[train]), x)

        choice = select_boosting(full, t, splits, base_fn, depths=tuple(sorted({2, int(self.max_depth)})),
                                 max_rounds=int(self.n_estimators), seed=self.seed)
        self.linear_kind_, self.linear_cols_ = kind, [int(c) for c in cols]
        self.linear_ = self._fit_linear(kind, cols, x, t)
        self.booster_ = None
        if choice.rounds > 0:
            residual = t - self._apply_linear(kind, cols, self.linear_, x)
            self.booster_ = train_booster(full, residual, choice.depth, choice.rounds, 0.05, 0.8, self.seed)
        self.capacity_ = {"linear": kind, "columns": self.linear_cols_, "depth": choice.depth,
                          "rounds": choice.rounds, "cv_mse": choice.cv_error, "base_cv_mse": choice.base_cv_error,
                          "cv_loss": choice.cv_loss, "base_cv_loss": choice.base_cv_loss, "cv_splits": len(splits)}
        self._set_conformal(y, np.exp(choice.oof), "cross-validation")
        return self._fitted(len(y), y)

    def _predict(self, archs: Any) -> np.ndarray:
        archs = self._fitted_archs(archs)
        if not archs:
            return np.zeros(0)
        x, full = self._design(archs)
        t = self._apply_linear(self.linear_kind_, self.linear_cols_, self.linear_, x)
        if self.booster_ is not None:
            t = t + booster_predict(self.booster_, full)
        return np.exp(np.minimum(t, 50.0))

    # ---------------------------------------------------------------- JSON
    def _params_json(self) -> dict[str, Any]:
        params = super()._params_json()
        many = isinstance(self.base, (list, tuple))
        params["base"] = [s.to_json() for s in self.sources_] if many else self.sources_[0].to_json()
        return params

    def _state_json(self) -> dict[str, Any]:
        linear = self.linear_ if self.linear_kind_ == "offset" else self.linear_.to_json()
        return {"n_stages": self.n_stages_, "op_types": self.op_types_, "n_linear": self.n_linear_,
                "linear_kind": self.linear_kind_, "linear_columns": self.linear_cols_, "linear": linear,
                "xgboost_json": booster_to_json(self.booster_) if self.booster_ is not None else None,
                "capacity": self.capacity_, "n_fit": self.n_fit_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.sources_ = self._sources()
        self.n_stages_ = _checked_count(state["n_stages"], "n_stages", 1, MAX_STAGES)
        self.op_types_ = [str(t) for t in state["op_types"]]
        self.n_linear_ = _checked_count(state["n_linear"], "n_linear")
        self.linear_kind_ = state["linear_kind"]
        self.linear_cols_ = [int(c) for c in state["linear_columns"]]
        if self.linear_kind_ not in ("offset", "ridge") or any(not 0 <= c < self.n_linear_ for c in self.linear_cols_):
            raise PredictorError("few-shot linear model is damaged; refit it with `hwnas fit`")
        self.linear_ = _checked_number(state["linear"], "linear") if self.linear_kind_ == "offset" else \
            RidgeFit.from_json(state["linear"])
        booster = state["xgboost_json"]
        self.booster_ = booster_from_json(booster) if booster is not None else None
        self.capacity_ = state.get("capacity")
        self.n_fit_ = int(state["n_fit"])
