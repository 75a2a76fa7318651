"""Random search: the baseline every search is measured against. Samples new archs uniformly."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from hwnas.search.evaluator import Evaluator
from hwnas.space import Arch, SearchSpace

__all__ = ["random_search", "sample_new"]


def sample_new(space: SearchSpace, rng: np.random.Generator, n: int, exclude: Collection[str],
               max_tries: int | None = None, admissible: Callable[[Arch], bool] | None = None) -> list[Arch]:
    """Up to `n` distinct random archs whose keys are not in `exclude` and that `admissible` accepts (fewer
    if the space runs out within `max_tries` draws)."""
    out: list[Arch] = []
    keys = set(exclude)
    tries = max_tries if max_tries is not None else 50 * n + 1000
    while len(out) < n and tries > 0:
        batch = space.sample(rng, min(max(n - len(out), 1) * 2, tries))
        tries -= len(batch)
        for a in batch:
            if a.key not in keys and len(out) < n and (admissible is None or admissible(a)):
                keys.add(a.key)
                out.append(a)
    return out


def random_search(evaluator: Evaluator, seed: int = 0, batch: int = 10,
                  progress: Callable[[Evaluator], None] | None = None) -> Evaluator:
    """Evaluate uniformly sampled new archs, `batch` at a time, until the budget is spent."""
    rng = np.random.default_rng(seed)
    while evaluator.remaining > 0:
        archs = sample_new(evaluator.space, rng, min(batch, evaluator.remaining), evaluator.seen_keys,
                           admissible=evaluator.admissible)
        if not archs:
            break
        evaluator.evaluate(archs)
        if progress is not None:
            progress(evaluator)
    return evaluator
