"""`lut`: the sum of per-operator latencies from a lookup table (Once-for-All's latency predictor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.predictors.base import Predictor, _checked_count
from hwnas.predictors.features import MAX_STAGES, stage_count, summarize, summary_lut
from hwnas.predictors.registry import register_predictor
from hwnas.predictors.tables import read_table, table_from_mapping

__all__ = ["LUTPredictor"]


@register_predictor("lut")
class LUTPredictor(Predictor):
    """Predicts a subnet's latency as the sum of its operators' measured latencies.

    `table` is a {op key: ms} dict, a profile JSON path, or OFA YAML table path(s) (one per resolution).
    `fit()` reads the table; it needs no measurements (`y` is ignored).
    """

    def __init__(self, space: Any = None, table: Any = None):
        self.space = space
        self.table = table

    @classmethod
    def from_ofa_yaml(cls, paths: str | Path | list[str | Path], space: Any = "ofa-mbv3") -> LUTPredictor:
        files = [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]
        return cls(space=space, table=files).fit()

    def fit(self, archs: Any = None, y: Any = None) -> LUTPredictor:
        self.table_ = read_table(self.table, space_name=None)
        self.n_stages_ = stage_count(self.space_)
        self.fitted_ = True
        return self

    def components(self, archs: Any) -> np.ndarray:
        archs = self._fitted_archs(archs)
        sp = self.space_
        rows = [summary_lut(summarize(sp, a, self.n_stages_), self.table_, self.n_stages_) for a in archs]
        return np.array(rows).reshape(len(archs), self.n_stages_)

    def _predict(self, archs: Any) -> np.ndarray:
        return self.components(archs).sum(axis=1)

    def _params_json(self) -> dict[str, Any]:
        params = super()._params_json()
        params["table"] = None  # the table itself is the state; the source path may not exist elsewhere
        return params

    def _state_json(self) -> dict[str, Any]:
        return {"table_ms": self.table_, "n_stages": self.n_stages_}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.table_ = table_from_mapping(state["table_ms"], "table_ms")
        self.n_stages_ = _checked_count(state["n_stages"], "n_stages", 1, MAX_STAGES)
