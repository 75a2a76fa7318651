"""The predictor-accelerated loop, in the manner of DyNAS-T's LINAS: validate a population with the expensive
objectives, refit a surrogate per expensive objective on everything validated so far, run an inner NSGA-II on
the surrogates (cheap objectives evaluated directly), validate the best new archs of its front, repeat.
No arch is validated twice."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

from hwnas.search.evaluator import Evaluator
from hwnas.search.nsga2 import run_nsga2
from hwnas.search.pareto import Normalization, hypervolume, nondominated_ranks, pareto_mask
from hwnas.search.random_search import sample_new
from hwnas.search.surrogate import SurrogateFactory, default_surrogate
from hwnas.space import Arch

__all__ = ["accelerated_search"]


def accelerated_search(evaluator: Evaluator, seed: int = 0, n_init: int = 20, batch: int = 5,
                       inner_pop: int = 20, inner_gens: int = 5, select: str = "front", optimism: float = 0.0,
                       surrogate: SurrogateFactory | None = None,
                       progress: Callable[[Evaluator], None] | None = None) -> Evaluator:
    """Run the loop until the evaluator's budget is spent.

    `select` picks which new archs of the inner search to validate each round: "hv" greedily takes those whose
    predicted objectives add the most hypervolume to the validated front (normalised over what is validated),
    "front" takes the inner front by rank and crowding distance, as LINAS does. The inner NSGA-II starts from
    the best validated archs and runs `inner_gens` generations, so its candidates stay near what is known to
    be good (few generations: the surrogates are trusted locally, not far away). With `optimism` > 0 and a
    surrogate that gives a standard deviation (`gaussian_process`), predictions are shifted that many standard
    deviations towards better values.
    """
    space = evaluator.space
    rng = np.random.default_rng(seed)
    make = surrogate or default_surrogate
    objectives = evaluator.objectives
    constraints = evaluator.constraints
    n_obj, n_con = len(objectives), len(constraints)

    first = sample_new(space, rng, min(n_init, evaluator.remaining), evaluator.seen_keys)
    if first:
        evaluator.evaluate(first)
        if progress is not None:
            progress(evaluator)
    round_ = 0
    while evaluator.remaining > 0:
        round_ += 1
        records = evaluator.records
        archs = [r.arch for r in records]
        models = {}
        for obj in evaluator._all:
            if obj.expensive:
                y = np.array([r.values[obj.name] for r in records])
                models[obj.name] = make(space, obj.name, seed + round_).fit(archs, y)

        def fitness(cands: list[Arch], models: dict = models) -> tuple[np.ndarray, np.ndarray]:
            vals = {}
            for o in evaluator._all:
                if o.name not in models:
                    vals[o.name] = o.evaluate(cands)
                elif optimism and getattr(models[o.name], "has_std", False):
                    mean, std = models[o.name].predict(cands, return_std=True)
                    vals[o.name] = mean - o.sign * optimism * std  # optimistic: better by `optimism` std
                else:
                    vals[o.name] = models[o.name].predict(cands)
            F = np.stack([o.sign * vals[o.name] for o in objectives], axis=1)
            G = (np.stack([c.violation(vals[c.name]) for c in constraints], axis=1) if constraints
                 else np.zeros((len(cands), 0)))
            return F, G

        elite = _elite(evaluator, inner_pop)
        cands, F, G = run_nsga2(space, fitness, n_obj, n_con, pop_size=inner_pop, n_gen=inner_gens,
                                seed=seed * 7919 + round_, initial=elite)
        new = np.array([not evaluator.is_evaluated(a) for a in cands], dtype=bool)
        cands = [a for a, k in zip(cands, new, strict=False) if k]
        F, G = F[new], G[new]
        k = min(batch, evaluator.remaining)
        if cands:
            order = (_select_hv(evaluator, F, G, k) if select == "hv" and n_obj >= 2
                     else _select_front(F, G, k))
            chosen = [cands[i] for i in order]
        else:
            chosen = []
        if len(chosen) < k:  # the inner search found too few new archs: fill with random new ones
            taken = evaluator.seen_keys | {a.key for a in chosen}
            chosen += sample_new(space, rng, k - len(chosen), taken)
        if not chosen:
            break  # the whole space is evaluated
        evaluator.evaluate(chosen)
        if progress is not None:
            progress(evaluator)
    return evaluator


def _elite(evaluator: Evaluator, n: int) -> list[Arch]:
    """The best `n` validated archs (feasible first, then by rank and crowding): the inner search starts from
    them, so its candidates are variations of what is known to be good."""
    records = evaluator.records
    order = _order_by_rank(evaluator.F(records), evaluator.G(records))
    return [records[i].arch for i in order[:n]]


def _order_by_rank(F: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Feasible first (least violation first), then by non-domination rank and crowding distance."""
    cv = G.clip(min=0).sum(axis=1) if G.size else np.zeros(len(F))
    ranks = nondominated_ranks(F)
    crowd = np.zeros(len(F))
    for r in np.unique(ranks):
        idx = np.where(ranks == r)[0]
        crowd[idx] = calc_crowding_distance(F[idx]) if len(idx) > 2 else np.inf
    return np.lexsort((-crowd, ranks, cv))


def _select_front(F: np.ndarray, G: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in _order_by_rank(F, G)[:k]]


def _select_hv(evaluator: Evaluator, F: np.ndarray, G: np.ndarray, k: int) -> list[int]:
    """Greedy: each step takes the candidate whose predicted point adds the most hypervolume to the validated
    front plus the points taken before it; candidates adding nothing are taken by rank and crowding."""
    cv = G.clip(min=0).sum(axis=1) if G.size else np.zeros(len(F))
    feasible = np.where(cv <= 0)[0]
    validated = evaluator.F(evaluator.records)
    ok = evaluator.feasible(evaluator.records)
    base = validated[ok] if ok.any() else np.zeros((0, F.shape[1]))
    pool = np.vstack([base, F]) if len(base) else F
    lo, hi = pool.min(axis=0), pool.max(axis=0)
    norm = Normalization(tuple(lo), tuple(hi), tuple([1.1] * F.shape[1]))
    # only the first few predicted fronts can add hypervolume worth validating
    idx = feasible[nondominated_ranks(F[feasible]) <= 2] if len(feasible) else feasible
    chosen: list[int] = []
    current = base[pareto_mask(base)] if len(base) else base
    hv_now = hypervolume(current, norm) if len(current) else 0.0
    remaining = list(idx)
    while len(chosen) < k and remaining:
        gains = []
        for i in remaining:
            pts = np.vstack([current, F[i:i + 1]]) if len(current) else F[i:i + 1]
            gains.append(hypervolume(pts, norm) - hv_now)
        best = int(np.argmax(gains))
        if gains[best] <= 1e-12:
            break
        i = remaining.pop(best)
        chosen.append(int(i))
        pts = np.vstack([current, F[i:i + 1]]) if len(current) else F[i:i + 1]
        current = pts[pareto_mask(pts)]
        hv_now = hypervolume(current, norm)
    if len(chosen) < k:
        rest = [int(i) for i in _order_by_rank(F, G) if int(i) not in set(chosen)]
        chosen += rest[: k - len(chosen)]
    return chosen
