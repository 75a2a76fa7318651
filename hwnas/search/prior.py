"""Priors for the search: what a related task (other data, another checkpoint of the supernet) measured about
the same space, used to start NSGA-II or the predictor-accelerated loop near the front and to sharpen the loop's
surrogate, never taken as the search's own results (`hwnas search --prior`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.objective import Constraint, Objective
from hwnas.search.pareto import nondominated_ranks
from hwnas.search.sampling import effective_sample
from hwnas.search.surrogate import (
    ArchFeatures,
    BootstrapEnsemble,
    SelectedByOutOfBag,
    SurrogateFactory,
    default_surrogate,
    loop_surrogate,
)
from hwnas.space import Arch, SearchSpace

__all__ = ["PriorModel", "prior_front", "prior_surrogate"]


@dataclass(eq=False)
class PriorModel:
    """A model of one objective (`objective`, top-1 by default) fitted once, before a search, on evaluations
    of a related task: the same space's archs measured on other data, or on an earlier checkpoint of the
    supernet. xgboost on `ArchFeatures`; predictions are cached per arch, since the loop asks for the same pool
    round after round. On NAS-Bench-201, fitted on 300 archs' CIFAR-100 top-1, it ranks the most accurate 5% of
    archs by CIFAR-10 top-1 at Kendall tau 0.17-0.21 on its own, and as a feature it cuts the RMS error there of
    a top-1 surrogate fitted on 30 archs from 0.87-1.56 to 0.78-1.43 points (4 draws)."""

    space: SearchSpace
    objective: str = "top1"
    n_estimators: int = 600
    max_depth: int = 6
    learning_rate: float = 0.05
    seed: int = 0

    def fit(self, archs: Sequence[Arch], y: Sequence[float] | np.ndarray) -> PriorModel:
        import xgboost as xgb

        y = np.asarray(y, dtype=float)
        if len(archs) < 2 or len(archs) != len(y):
            raise ValueError(f"a prior needs at least 2 archs with one value each (got {len(archs)} archs, "
                             f"{len(y)} values)")
        self.features_ = ArchFeatures(self.space).fit(archs)
        self.model_ = xgb.XGBRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                       learning_rate=self.learning_rate, random_state=self.seed, n_jobs=1)
        self.model_.fit(self.features_(archs), y)
        self.n_fit_ = len(y)
        self._memo: dict[str, float] = {}  # arch key -> prediction
        return self

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        missing = list({a.key: a for a in archs if a.key not in self._memo}.values())
        if missing:
            pred = self.model_.predict(self.features_(missing))
            self._memo.update(zip((a.key for a in missing), map(float, pred), strict=True))
        return np.array([self._memo[a.key] for a in archs], dtype=float)


def prior_surrogate(prior: PriorModel) -> SurrogateFactory:
    """A surrogate factory for the loop: for the prior's objective, `default_surrogate`'s ensemble with the
    prior's prediction as one more feature (the ensemble learns from the search's own evaluations how far to
    trust it); for the other objectives, the loop's own (`loop_surrogate`)."""

    def make(space: SearchSpace, name: str, seed: int) -> BootstrapEnsemble | SelectedByOutOfBag:
        if name == prior.objective:
            return default_surrogate(space, name, seed, extra_feature=prior.predict)
        return loop_surrogate(space, name, seed)

    return make


def prior_front(space: SearchSpace, prior: PriorModel, objectives: Sequence[Objective], n: int,
                rng: np.random.Generator, constraints: Sequence[Constraint] = (),
                admissible: Callable[[Arch], bool] | None = None, exclude: Collection[str] = (),
                n_pool: int = 2000) -> list[Arch]:
    """The `n` archs a prior puts nearest the front: of `n_pool` random archs (effective forms, one per network,
    none whose key or network is in `exclude`), the first `n` by non-dominated rank of the prior's prediction
    against the cheap objectives, archs that break a constraint on those last. Nothing is known of the other
    expensive objectives (measured latency, say) before they are measured: FLOPs stand in for them, so that the
    picks spread from small to large networks."""
    pool = effective_sample(space, rng, n_pool, exclude, admissible)
    if len(pool) <= n:
        return pool
    known = {o.name: o for o in objectives if not o.expensive}
    values = {name: np.asarray(o.evaluate(pool), dtype=float) for name, o in known.items()}
    values[prior.objective] = prior.predict(pool)
    for c in constraints:  # a cheap quantity only constrained (a FLOPs cap, say)
        if c.name not in values and not c.objective.expensive:
            values[c.name] = np.asarray(c.objective.evaluate(pool), dtype=float)
    signs = {o.name: o.sign for o in objectives}
    columns = [signs[name] * v for name, v in values.items() if name in signs]
    if any(o.expensive and o.name != prior.objective for o in objectives):  # e.g. measured latency: FLOPs
        columns.append(np.array([space.flops(a) for a in pool], dtype=float))  # stand in, to spread the picks
    F = np.stack(columns, axis=1)
    broken = np.zeros(len(pool), dtype=bool)
    for c in constraints:
        if c.name in values:
            broken |= np.asarray(c.violation(values[c.name])) > 0
    order = np.lexsort((rng.random(len(pool)), nondominated_ranks(F), broken))
    return [pool[i] for i in order[:n]]
