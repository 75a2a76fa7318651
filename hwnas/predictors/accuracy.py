"""`accuracy`: predicts a subnet's top-1 accuracy (%) from (arch, top-1) pairs, for the search.

The same model as `gbm` (a ridge base on operator features, boosted trees on the encoding) without a
latency table, learning accuracy differences instead of latency ratios.
"""

from __future__ import annotations

from typing import Any

from hwnas.predictors.gbm import GBMPredictor
from hwnas.predictors.registry import register_predictor

__all__ = ["AccuracyPredictor"]


@register_predictor("accuracy")
class AccuracyPredictor(GBMPredictor):
    """Top-1 accuracy in % (`target = "top1"`): `fit(archs, top1)`, `predict(archs)`."""

    target = "top1"
    log_target = False

    def __init__(self, space: Any = None, n_estimators: int = 300, max_depth: int = 3,
                 learning_rate: float = 0.05, subsample: float = 0.8, min_samples_trees: int | None = None,
                 seed: int = 0):
        super().__init__(space=space, table=None, n_estimators=n_estimators, max_depth=max_depth,
                         learning_rate=learning_rate, subsample=subsample, min_samples_trees=min_samples_trees,
                         seed=seed)
