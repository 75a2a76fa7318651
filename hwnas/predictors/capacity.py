"""Model capacity chosen by cross-validation on the samples at hand: which linear model a predictor keeps, and
how many boosting rounds (and how deep) its residual trees get; zero rounds when the trees do not beat the
linear model out of fold.

Used by `gbm` (trees over a ridge base) and `few-shot` (a source-device model, then trees). Every candidate is
scored on the same folds, repeated over several shuffles when samples are few (one split of 20 samples is
mostly noise), by what a user of a latency predictor needs: how well it ranks (1 - Spearman) plus its relative
error (mean |log ratio|). A richer model must win by more than the fold-to-fold noise: the best of all only
replaces the simplest if it beats it by two standard errors (of the difference, by a paired bootstrap over
samples), and then the simplest candidate within one standard error of the best is kept (the one-SE rule).
So adding samples does not swap a good model for a noisy-lucky one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xgboost as xgb  # imported where boosters are trained: xgboost takes 0.5 s to import

__all__ = ["cv_folds", "cv_splits", "BoostChoice", "select_boosting", "select_simplest", "oof_loss",
           "train_booster"]

REPEATS_UP_TO = 200  # up to this many samples, candidates are scored on REPEATS shuffled splits, beyond on one
REPEATS = 3
BOOTSTRAP = 200
SIGNIFICANT = 2.0  # the best candidate replaces the simplest only if it wins by this many standard errors


def cv_folds(n: int, seed: int = 0, max_folds: int = 5) -> np.ndarray:
    """Fold index per sample: leave-one-out up to 10 samples, else `max_folds` shuffled folds."""
    if n <= 10:
        return np.arange(n)
    return np.random.default_rng(seed).permutation(n) % max_folds


def cv_splits(n: int, seed: int = 0, max_folds: int = 5) -> list[np.ndarray]:
    """The fold assignments candidates are scored on: `cv_folds(n, seed)` first, then (11..200 samples) more
    shuffles, so that the choice does not hang on one split. Leave-one-out (n <= 10) needs no repeats."""
    repeats = 1 if n <= 10 or n > REPEATS_UP_TO else REPEATS
    return [cv_folds(n, seed + 7919 * r, max_folds) for r in range(repeats)]


def oof_loss(oof: np.ndarray, target: np.ndarray) -> float:
    """(1 - Spearman) + mean |error| of out-of-fold predictions on the link scale (log ms: a relative error)."""
    return float(_losses(oof[None, :], target)[0])


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along the last axis (ties broken by order: the scores are continuous)."""
    return np.argsort(np.argsort(values, axis=-1, kind="stable"), axis=-1, kind="stable").astype(float)


def _rank_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (of ranks: Spearman); 0 where one side is constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    return np.where(den > 0, (a * b).sum(axis=-1) / np.where(den > 0, den, 1.0), 0.0)


def _losses(oof: np.ndarray, target: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Loss per candidate (rows of `oof`), on the samples `rows` (a bootstrap draw) or all of them. Ranks are
    taken once on all samples, so a bootstrap draw scores the same ranking."""
    rank_o, rank_t = _ranks(oof), _ranks(target)
    error = np.abs(oof - target[None, :])
    if rows is not None:
        rank_o, rank_t, error = rank_o[:, rows], rank_t[rows], error[:, rows]
    rank_loss = 1.0 - _rank_corr(rank_o, rank_t[None, :]) if len(target) >= 5 else np.zeros(len(oof))
    return rank_loss + error.mean(axis=-1)


def select_simplest(oofs: np.ndarray, target: np.ndarray, seed: int = 0) -> int:
    """The one-SE rule. `oofs[c, s]` holds candidate c's out-of-fold predictions on split s (shape
    (candidates, splits, n)), candidates ordered from simplest to richest. The best one (least loss, averaged
    over splits) must beat the simplest by `SIGNIFICANT` paired-bootstrap standard errors (the best of many
    noisy candidates is optimistic, and a richer model that does not clearly win costs rank on new subnets);
    if it does, returns the first candidate within one standard error of the best."""
    oofs = np.asarray(oofs, dtype=float)
    n_cand, n_splits, n = oofs.shape
    flat = oofs.reshape(n_cand * n_splits, n)
    loss = _losses(flat, target).reshape(n_cand, n_splits).mean(axis=1)
    best = int(np.argmin(loss))
    if best == 0 or n < 5:
        return best
    rng = np.random.default_rng(seed)
    draws = np.stack([_losses(flat, target, rng.integers(0, n, n)).reshape(n_cand, n_splits).mean(axis=1)
                      for _ in range(BOOTSTRAP)])  # (BOOTSTRAP, candidates)
    se = np.std(draws - draws[:, [best]], axis=0)
    if loss[0] - loss[best] <= SIGNIFICANT * se[0]:
        return 0  # the best of many candidates wins by chance alone this often: keep the simplest
    for c in range(best):
        if loss[c] - loss[best] <= se[c]:
            return c
    return best


@dataclass(frozen=True)
class BoostChoice:
    """The capacity cross-validation chose (rounds 0: no trees) and the out-of-fold predictions it gives."""

    depth: int
    rounds: int
    oof: np.ndarray  # out-of-fold predictions on the link scale (log ms for latency), first split
    cv_error: float  # mean squared out-of-fold error on the link scale (mean over splits)
    base_cv_error: float  # the same without trees
    cv_loss: float = float("nan")  # the selection loss (1 - Spearman + mean |error|), mean over splits
    base_cv_loss: float = float("nan")


def _params(depth: int, learning_rate: float, subsample: float, seed: int) -> dict:
    return {"max_depth": depth, "eta": learning_rate, "subsample": subsample, "colsample_bytree": 0.8,
            "min_child_weight": 2.0, "lambda": 1.0, "seed": seed, "nthread": 1, "objective": "reg:squarederror",
            "base_score": 0.0}


def train_booster(x: np.ndarray, residual: np.ndarray, depth: int, rounds: int, learning_rate: float,
                  subsample: float, seed: int) -> xgb.Booster:
    import xgboost as xgb

    return xgb.train(_params(depth, learning_rate, subsample, seed), xgb.DMatrix(x, label=residual),
                     num_boost_round=rounds)


def _as_splits(folds: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(folds, np.ndarray) and folds.ndim == 1:
        return [folds]
    return [np.asarray(f) for f in folds]


def select_boosting(x: np.ndarray, target: np.ndarray, folds: np.ndarray | Sequence[np.ndarray],
                    base_fn: Callable[[np.ndarray], np.ndarray], *, depths: tuple[int, ...] = (2, 4),
                    max_rounds: int = 400, learning_rate: float = 0.05, subsample: float = 0.8, seed: int = 0,
                    allow_trees: bool = True) -> BoostChoice:
    """Choose (depth, rounds) for `base + trees` by the one-SE rule on the out-of-fold loss (`select_simplest`),
    candidates ordered by size (rounds x leaves per tree; no trees first).

    `target` is on the link scale (log ms for latency); `folds` is one fold assignment or several (`cv_splits`);
    `base_fn(train_mask)` fits the base model on the rows of `train_mask` and returns its predictions (link
    scale) for every row. Rounds are scored at every grid step, so one training per fold and depth covers the
    whole range 0..max_rounds.
    """
    import xgboost as xgb

    splits = _as_splits(folds)
    n = len(target)
    grid = _grid(max_rounds)
    trees = allow_trees and n >= 8
    base_oof = np.empty((len(splits), n))
    oof_by = {d: np.zeros((len(splits), len(grid), n)) for d in depths} if trees else {}
    for s, split in enumerate(splits):
        for fold in np.unique(split):
            test = split == fold
            base = base_fn(~test)
            base_oof[s, test] = base[test]
            if not trees:
                continue
            for depth in depths:
                if (~test).sum() < 4:
                    oof_by[depth][s][:, test] = base[test]
                    continue
                booster = train_booster(x[~test], target[~test] - base[~test], depth, max_rounds, learning_rate,
                                        subsample, seed)
                dtest = xgb.DMatrix(x[test])
                steps = np.stack([booster.predict(dtest, iteration_range=(0, int(r))) if r else
                                  np.zeros(int(test.sum())) for r in grid])
                oof_by[depth][s][:, test] = base[test][None, :] + steps

    def mse(oof: np.ndarray) -> float:
        return float(np.mean((oof - target[None, :]) ** 2))

    base_error = mse(base_oof)
    base_loss = float(np.mean([oof_loss(o, target) for o in base_oof]))
    if not trees:
        return BoostChoice(depths[0], 0, base_oof[0].copy(), base_error, base_error, base_loss, base_loss)
    candidates = [(depths[0], 0)] + sorted(((d, int(r)) for d in depths for r in grid[1:]),
                                           key=lambda c: (c[1] * 2 ** c[0], c[0]))
    oofs = np.stack([base_oof if r == 0 else oof_by[d][:, int(np.searchsorted(grid, r))] for d, r in candidates])
    depth, rounds = candidates[select_simplest(oofs, target, seed)]
    chosen = oofs[candidates.index((depth, rounds))]
    return BoostChoice(depth, rounds, chosen[0].copy(), mse(chosen), base_error,
                       float(np.mean([oof_loss(o, target) for o in chosen])), base_loss)


def _grid(max_rounds: int) -> np.ndarray:
    """The round counts scored: 0, then about 12 steps up to max_rounds."""
    steps = np.unique(np.round(np.geomspace(10, max(max_rounds, 10), 12)).astype(int))
    return np.concatenate([[0], steps[steps <= max_rounds]])
