"""`few-shot`: adapts a predictor fitted on one device to another from k <= 20 subnets measured there.

The new device's latency is modelled as s * base(arch) plus a ridge correction over the base's per-stage
parts (devices differ most in how fast they run early high-resolution stages versus late wide ones). The
ridge penalty is chosen by leave-one-out error, so with very few samples it stays a pure rescaling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import PredictorError
from hwnas.predictors.base import Predictor
from hwnas.predictors.calibrated import fit_scale_offset
from hwnas.predictors.linear import RidgeFit, fit_ridge
from hwnas.predictors.registry import load_predictor, register_predictor

__all__ = ["FewShotPredictor"]


@register_predictor("few-shot")
class FewShotPredictor(Predictor):
    """`base` is a fitted latency Predictor (or the path of one) for another device of the same space."""

    def __init__(self, space: Any = None, base: Any = None):
        self.space = space
        self.base = base

    def _base(self) -> Predictor:
        base = self.base
        if base is None:
            raise PredictorError("few-shot needs base=<a fitted predictor of another device, or its file>")
        if isinstance(base, (str, Path)):
            base = load_predictor(base)
        if not isinstance(base, Predictor):
            raise PredictorError(f"few-shot base must be a Predictor or a predictor file, got {type(base).__name__}")
        base._check_fitted()
        if self.space is not None and base.space_.config() != self.space_.config():
            raise PredictorError(f"few-shot base predicts space {base.space_.name!r} with other options; "
                                 "use a base fitted for the same space")
        return base

    def _parts(self, archs: list) -> tuple[np.ndarray, np.ndarray]:
        comps = self.base_.components(archs)
        return comps.sum(axis=1), comps

    def fit(self, archs: Any, y: Any = None) -> FewShotPredictor:
        self.base_ = self._base()
        if self.space is None:
            self.space = self.base_.space_
        archs = self._archs(archs)
        y = self._targets(y, len(archs))
        total, comps = self._parts(archs)
        self.scale_, _ = fit_scale_offset(total, y, offset=False)
        residual = y - self.scale_ * total
        self.correction_ = fit_ridge(comps * self.scale_, residual, weights=1.0 / y**2)
        return self._fitted(len(y))

    def _predict(self, archs: Any) -> np.ndarray:
        archs = self._fitted_archs(archs)
        total, comps = self._parts(archs)
        return self.scale_ * total + self.correction_.predict(comps * self.scale_)

    def _params_json(self) -> dict[str, Any]:
        params = super()._params_json()
        params["base"] = self.base_.to_json()
        return params

    def _state_json(self) -> dict[str, Any]:
        return {"scale": self.scale_, "correction": self.correction_.to_json(), "n_fit": self.n_fit_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.base_ = self._base()
        self.scale_ = float(state["scale"])
        self.correction_ = RidgeFit.from_json(state["correction"])
        self.n_fit_ = int(state["n_fit"])
