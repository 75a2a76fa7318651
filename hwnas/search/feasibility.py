"""Feasibility: whether archs meet a search's constraints, whether any arch of the space can (the budget is not
infeasible), and drawing archs until their cheap constraints hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hwnas.errors import SearchError
from hwnas.objective import Constraint
from hwnas.search.nsga2 import run_nsga2
from hwnas.space import Arch, SearchSpace

__all__ = ["BudgetInfeasible", "check_constraints", "constraint_violation", "feasible_child"]


class BudgetInfeasible(SearchError):
    """No arch of the space meets the constraints; `arch` and `values` describe the closest one found."""

    def __init__(self, message: str, arch: Arch | None = None, values: dict[str, float] | None = None):
        super().__init__(message)
        self.arch = arch
        self.values = values or {}


def constraint_violation(constraints: Sequence[Constraint],
                         archs: Sequence[Arch]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(total violation per arch, 0 where every constraint holds; each constraint's values per arch)."""
    values = {c.name: c.objective.evaluate(archs) for c in constraints}
    cv = np.zeros(len(archs))
    for c in constraints:
        cv = cv + c.violation(values[c.name])
    return cv, values


def check_constraints(space: SearchSpace, constraints: Sequence[Constraint], seed: int = 0,
                      n_sample: int = 500, generations: int = 30) -> Arch | None:
    """Make sure some arch meets the cheap constraints: random samples first, then a short NSGA-II minimising
    the total violation. Raises BudgetInfeasible naming the closest arch found (e.g. the fastest subnet).
    Returns a feasible arch (None when there are no cheap constraints to check)."""
    cheap = [c for c in constraints if not c.objective.expensive]
    if not cheap:
        return None
    rng = np.random.default_rng(seed)
    archs = space.sample(rng, n_sample)
    cv, _ = constraint_violation(cheap, archs)
    if (cv <= 0).any():
        return archs[int(np.argmin(cv))]

    def fitness(cands: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        v, _ = constraint_violation(cheap, cands)
        return v[:, None], np.zeros((len(cands), 0))

    start = [archs[i] for i in np.argsort(cv)[:50]]
    found, F, _ = run_nsga2(space, fitness, 1, 0, pop_size=50, n_gen=generations, seed=seed, initial=start)
    best = int(np.argmin(F[:, 0]))
    if F[best, 0] <= 0:
        return found[best]
    _, values = constraint_violation(cheap, [found[best]])
    closest = {name: float(v[0]) for name, v in values.items()}
    limits = ", ".join(f"{c.name} <= {c.upper:g}" if c.upper is not None else f"{c.name} >= {c.lower:g}"
                       for c in cheap)
    got = ", ".join(f"{name} = {v:.3g}" for name, v in closest.items())
    raise BudgetInfeasible(f"no subnet meets {limits}; the closest found is {found[best].key} with {got}: "
                           "relax the budget", found[best], closest)


def feasible_child(make: Callable[[], Arch], constraints: Sequence[Constraint], tries: int) -> Arch | None:
    """An arch from `make()` that meets the cheap constraints, redrawn at most `tries` times (None if none did)."""
    cheap = [c for c in constraints if not c.objective.expensive]
    for _ in range(tries):
        child = make()
        if not cheap or constraint_violation(cheap, [child])[0][0] <= 0:
            return child
    return None
