"""Model capacity chosen by cross-validation on the samples at hand: how many boosting rounds (and how deep)
a residual tree model gets, zero rounds when the trees do not beat the linear model out of fold.

Used by `gbm` (trees over a ridge base) and `few-shot` (trees over a source-device model). Every candidate
is scored on the same folds, so choosing between "no trees" and "trees" is a like-for-like comparison and
there is no fixed sample count at which trees switch on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xgboost as xgb  # imported where boosters are trained: xgboost takes 0.5 s to import

__all__ = ["cv_folds", "BoostChoice", "select_boosting", "train_booster"]


def cv_folds(n: int, seed: int = 0, max_folds: int = 5) -> np.ndarray:
    """Fold index per sample: leave-one-out up to 10 samples, else `max_folds` shuffled folds."""
    if n <= 10:
        return np.arange(n)
    return np.random.default_rng(seed).permutation(n) % max_folds


@dataclass(frozen=True)
class BoostChoice:
    """The capacity cross-validation chose (rounds 0: no trees) and the out-of-fold predictions it gives."""

    depth: int
    rounds: int
    oof: np.ndarray  # out-of-fold predictions on the link scale (log ms for latency)
    cv_error: float  # mean squared out-of-fold error on the link scale
    base_cv_error: float  # the same without trees


def _params(depth: int, learning_rate: float, subsample: float, seed: int) -> dict:
    return {"max_depth": depth, "eta": learning_rate, "subsample": subsample, "colsample_bytree": 0.8,
            "min_child_weight": 2.0, "lambda": 1.0, "seed": seed, "nthread": 1, "objective": "reg:squarederror",
            "base_score": 0.0}


def train_booster(x: np.ndarray, residual: np.ndarray, depth: int, rounds: int, learning_rate: float,
                  subsample: float, seed: int) -> xgb.Booster:
    import xgboost as xgb

    return xgb.train(_params(depth, learning_rate, subsample, seed), xgb.DMatrix(x, label=residual),
                     num_boost_round=rounds)


def select_boosting(x: np.ndarray, target: np.ndarray, folds: np.ndarray,
                    base_fn: Callable[[np.ndarray], np.ndarray], *, depths: tuple[int, ...] = (2, 4),
                    max_rounds: int = 400, learning_rate: float = 0.05, subsample: float = 0.8, seed: int = 0,
                    allow_trees: bool = True) -> BoostChoice:
    """Choose (depth, rounds) minimising the out-of-fold squared error of `base + trees` on the link scale.

    `target` is on the link scale (log ms for latency); `base_fn(train_mask)` fits the base model on the rows of
    `train_mask` and returns its predictions (link scale) for every row. Rounds are scored at every step, so one
    training per fold and depth covers the whole range 0..max_rounds.
    """
    import xgboost as xgb

    n = len(target)
    fold_ids = np.unique(folds)
    base_oof = np.empty(n)
    oof_by = {d: np.zeros((max_rounds + 1, n)) for d in depths} if allow_trees else {}
    for fold in fold_ids:
        test = folds == fold
        base = base_fn(~test)
        base_oof[test] = base[test]
        if not allow_trees or (~test).sum() < 4:
            continue
        for depth in depths:
            booster = train_booster(x[~test], target[~test] - base[~test], depth, max_rounds, learning_rate,
                                    subsample, seed)
            # predictions after every round: cumulative sums of per-round contributions
            dtest = xgb.DMatrix(x[test])
            steps = np.stack([booster.predict(dtest, iteration_range=(0, r)) if r else np.zeros(int(test.sum()))
                              for r in _grid(max_rounds)])
            oof_by[depth][_grid(max_rounds)[:, None], np.flatnonzero(test)[None, :]] = base[test] + steps
    base_error = float(np.mean((base_oof - target) ** 2))
    best = BoostChoice(depths[0], 0, base_oof, base_error, base_error)
    if not allow_trees or n < 8:
        return best
    grid = _grid(max_rounds)
    for depth in depths:
        errors = np.mean((oof_by[depth][grid] - target[None, :]) ** 2, axis=1)
        i = int(np.argmin(errors))
        # a tree model must beat the base by a margin, not by noise in the folds
        if grid[i] > 0 and errors[i] < best.cv_error * 0.98:
            best = BoostChoice(depth, int(grid[i]), oof_by[depth][grid[i]].copy(), float(errors[i]), base_error)
    return best


def _grid(max_rounds: int) -> np.ndarray:
    """The round counts scored: 0, then about 16 steps up to max_rounds."""
    steps = np.unique(np.round(np.geomspace(10, max(max_rounds, 10), 12)).astype(int))
    return np.concatenate([[0], steps[steps <= max_rounds]])
