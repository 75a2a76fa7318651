"""Constrained single-objective evolution, as Once-for-All searches "the best accuracy under X ms on device D":
children by mutation and crossover of the best parents, each resampled until its cheap constraints hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from hwnas.errors import SearchError
from hwnas.search.algorithms import register_algorithm
from hwnas.search.evaluator import Evaluator
from hwnas.search.feasibility import check_constraints, feasible_child
from hwnas.space import Arch, SearchSpace

__all__ = ["constrained_evolution"]


def _mutant(space: SearchSpace, parents: Sequence[Arch], rng: np.random.Generator, prob: float) -> Arch:
    return space.mutate(parents[int(rng.integers(len(parents)))], rng, prob)


def _crossed(space: SearchSpace, parents: Sequence[Arch], rng: np.random.Generator) -> Arch:
    return space.crossover(parents[int(rng.integers(len(parents)))], parents[int(rng.integers(len(parents)))], rng)


@register_algorithm("evolution")
def constrained_evolution(evaluator: Evaluator, objective: str | None = None, seed: int = 0,
                          population: int = 50, parent_ratio: float = 0.25, mutation_ratio: float = 0.5,
                          mutate_prob: float = 0.1, max_tries: int = 200,
                          progress: Callable[[Evaluator], None] | None = None) -> Evaluator:
    """Maximise (or minimise, by its direction) one objective under the evaluator's constraints until the
    budget is spent. Children that break a cheap constraint are redrawn (at most `max_tries` times each);
    expensive constraints are checked on evaluation and break ties against the arch."""
    space = evaluator.space
    objective = objective or evaluator.objectives[0].name
    obj = next((o for o in evaluator.objectives if o.name == objective), None)
    if obj is None:
        raise SearchError(f"unknown objective {objective!r}; the search has {[o.name for o in evaluator.objectives]}")
    rng = np.random.default_rng(seed)
    check_constraints(space, evaluator.constraints, seed)

    def score(records: Sequence[Any]) -> np.ndarray:
        """Lower is better: violations first, then the objective to minimise."""
        cv = evaluator.G(records).clip(min=0).sum(axis=1)
        return np.array([obj.sign * r.values[obj.name] for r in records]) + 1e9 * cv

    def fresh(make: Callable[[], Arch], fallback: Callable[[], Arch] | None = None) -> Arch | None:
        """A feasible child not evaluated before; after half the tries, `fallback` makes the children
        (crossover of converged parents keeps giving known archs; mutation does not)."""
        taken = evaluator.seen_keys
        for i in range(max_tries):
            maker = fallback if fallback is not None and i >= max_tries // 2 else make
            child = feasible_child(maker, evaluator.constraints, max_tries)
            if child is None:
                return None
            if child.key not in taken and evaluator.admits(child):
                return child
        return None

    first: list[Arch] = []
    keys: set[str] = set()
    for _ in range(min(population, evaluator.remaining)):
        a = fresh(lambda: space.sample(rng, 1)[0])
        if a is not None and a.key not in keys:
            first.append(a)
            keys.add(a.key)
    if not first:
        raise SearchError("could not draw a new arch that meets the constraints; relax the budget")
    pop = evaluator.evaluate(first)
    if progress is not None:
        progress(evaluator)
    n_parents = max(2, int(round(population * parent_ratio)))
    while evaluator.remaining > 0:
        parents = [pop[i].arch for i in np.argsort(score(pop), kind="stable")[:n_parents]]
        n_children = min(population - n_parents, evaluator.remaining) if population > n_parents else 1
        n_mut = int(round(n_children * mutation_ratio))
        children: list[Arch] = []
        keys = set()
        for i in range(n_children):
            mutant = partial(_mutant, space, parents, rng, mutate_prob)
            child = fresh(mutant) if i < n_mut else fresh(partial(_crossed, space, parents, rng), mutant)
            if child is not None and child.key not in keys:
                children.append(child)
                keys.add(child.key)
        if not children:
            break
        records = evaluator.evaluate(children)
        pool = {r.key: r for r in list(pop) + list(records)}
        ordered = sorted(pool.values(), key=lambda r: (score([r])[0], r.index))
        pop = ordered[:population]
        if progress is not None:
            progress(evaluator)
    return evaluator
