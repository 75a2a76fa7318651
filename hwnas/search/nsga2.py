"""NSGA-II (pymoo, ask/tell) over a space's integer (ordinal) encoding, with duplicate elimination by arch key,
optionally also against archs evaluated before."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.problem import Problem
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.problems.static import StaticProblem

from hwnas.search.algorithms import register_algorithm
from hwnas.search.evaluator import Evaluator
from hwnas.search.prior import PriorModel, prior_front
from hwnas.space import Arch, SearchSpace

__all__ = ["make_nsga2", "decode_rows", "run_nsga2", "nsga2_search"]

Fitness = Callable[[list[Arch]], tuple[np.ndarray, np.ndarray]]


class _KeyDuplicates(DuplicateElimination):
    """Rows are duplicates when they decode to the same arch key as another row, a row of `other`, or a key
    in `exclude` (archs evaluated earlier)."""

    def __init__(self, space: SearchSpace, exclude: Collection[str] | None = None):
        super().__init__()
        self.space = space
        self.exclude = exclude if exclude is not None else set()
        self._keys: dict[bytes, str] = {}

    def keys(self, X: np.ndarray) -> list[str]:
        """Arch keys of the rows of X (decoded once per distinct row)."""
        X = np.rint(np.atleast_2d(np.asarray(X, dtype=float))).astype(np.int64)
        out = []
        for row in X:
            b = row.tobytes()
            if b not in self._keys:
                self._keys[b] = self.space.decode(row[None, :])[0].key
            out.append(self._keys[b])
        return out

    def _do(self, pop, other, is_duplicate):
        keys = self.keys(pop.get("X"))
        if other is None:
            seen: set[str] = set(self.exclude)
            for i, k in enumerate(keys):
                if k in seen:
                    is_duplicate[i] = True
                seen.add(k)
        else:
            others = set(self.keys(other.get("X")))
            for i, k in enumerate(keys):
                if k in others:
                    is_duplicate[i] = True
        return is_duplicate


def decode_rows(space: SearchSpace, X: np.ndarray) -> list[Arch]:
    X = np.atleast_2d(np.asarray(X))
    if X.size == 0:
        return []
    return space.decode(np.rint(X).astype(int))


def _problem(space: SearchSpace, n_obj: int, n_constr: int) -> Problem:
    xl, xu = space.bounds()
    return Problem(n_var=len(xl), n_obj=n_obj, n_ieq_constr=n_constr, xl=np.asarray(xl, dtype=float),
                   xu=np.asarray(xu, dtype=float), vtype=int)


def make_nsga2(space: SearchSpace, n_obj: int, n_constr: int = 0, pop_size: int = 50, seed: int = 0,
               initial: Sequence[Arch] = (), exclude: Collection[str] | None = None,
               eta_crossover: float = 3.0, eta_mutation: float = 3.0) -> tuple[NSGA2, Problem]:
    """A set-up pymoo NSGA-II for ask/tell over the ordinal encoding. `initial` archs start the population
    (random ones fill it up); offspring never repeat an arch in the population or in `exclude`."""
    sampling = IntegerRandomSampling()
    if initial:
        rng = np.random.default_rng(seed)
        archs = list(initial)[:pop_size]
        if len(archs) < pop_size:
            archs += space.sample(rng, pop_size - len(archs))
        sampling = space.encode(archs, "ordinal").astype(float)
    algorithm = NSGA2(
        pop_size=pop_size,
        sampling=sampling,
        crossover=SBX(prob=0.9, eta=eta_crossover, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=eta_mutation, vtype=float, repair=RoundingRepair()),
        # by arch key where earlier evaluations must be excluded, else pymoo's fast comparison of encodings
        eliminate_duplicates=_KeyDuplicates(space, exclude) if exclude is not None else True,
    )
    problem = _problem(space, n_obj, n_constr)
    algorithm.setup(problem, termination=NoTermination(), seed=seed, verbose=False)
    return algorithm, problem


def _tell(algorithm: NSGA2, problem: Problem, pop, F: np.ndarray, G: np.ndarray) -> None:
    kwargs = {"F": F}
    if problem.n_ieq_constr:
        kwargs["G"] = G
    PymooEvaluator().eval(StaticProblem(problem, **kwargs), pop)
    algorithm.tell(infills=pop)


def run_nsga2(space: SearchSpace, fitness: Fitness, n_obj: int, n_constr: int = 0, pop_size: int = 50,
              n_gen: int = 30, seed: int = 0, initial: Sequence[Arch] = ()) -> tuple[list[Arch], np.ndarray,
                                                                                        np.ndarray]:
    """Run NSGA-II for `n_gen` generations on a cheap `fitness(archs) -> (F, G)`. Returns every distinct arch
    it evaluated with its F and G (the inner search of the predictor-accelerated loop picks from them)."""
    algorithm, problem = make_nsga2(space, n_obj, n_constr, pop_size, seed, initial)
    seen: dict[str, int] = {}
    archs_all: list[Arch] = []
    F_all: list[np.ndarray] = []
    G_all: list[np.ndarray] = []
    for _ in range(n_gen):
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:
            break
        archs = decode_rows(space, pop.get("X"))
        F, G = fitness(archs)
        G = G.reshape(len(archs), n_constr)
        for a, f, g in zip(archs, F, G, strict=False):
            if a.key not in seen:
                seen[a.key] = len(archs_all)
                archs_all.append(a)
                F_all.append(f)
                G_all.append(g)
        _tell(algorithm, problem, pop, F, G)
    F_out = np.array(F_all).reshape(len(archs_all), n_obj)
    G_out = np.array(G_all).reshape(len(archs_all), n_constr)
    return archs_all, F_out, G_out


@register_algorithm("nsga2")
def nsga2_search(evaluator: Evaluator, pop_size: int = 50, seed: int = 0,
                 progress: Callable[[Evaluator], None] | None = None, prior: PriorModel | None = None,
                 **options) -> Evaluator:
    """Plain NSGA-II on the evaluator's (expensive) objectives until its budget is spent or no new arch can
    be bred. Offspring never repeat an evaluated arch, so every evaluation is a new one. With `prior` (a
    `PriorModel` of a related task), the first population is the prior's predicted front (`prior_front`)."""
    space = evaluator.space
    if prior is not None:
        options["initial"] = prior_front(space, prior, evaluator.objectives, pop_size, np.random.default_rng(seed),
                                         evaluator.constraints, evaluator.admissible, evaluator.seen_keys)
    algorithm, problem = make_nsga2(space, len(evaluator.objectives), len(evaluator.constraints), pop_size,
                                    seed, exclude=evaluator.seen_keys, **options)
    while evaluator.remaining > 0:
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:
            break
        archs = decode_rows(space, pop.get("X"))
        ok = np.array([evaluator.admits(a) for a in archs], dtype=bool)
        n = int(np.searchsorted(np.cumsum(ok), evaluator.remaining, side="right"))  # admissible ones fit
        pop, archs, ok = pop[:n], archs[:n], ok[:n]
        # an arch outside the problem costs nothing and scores worst on everything, so selection drops it
        F = np.full((n, problem.n_obj), _RULED_OUT)
        G = np.full((n, problem.n_ieq_constr), _RULED_OUT)
        records = evaluator.evaluate([a for a, k in zip(archs, ok) if k])
        F[ok], G[ok] = evaluator.F(records), evaluator.G(records)
        _tell(algorithm, problem, pop, F, G)
        if progress is not None:
            progress(evaluator)
    return evaluator


_RULED_OUT = 1e30
