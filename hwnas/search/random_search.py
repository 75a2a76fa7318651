"""Random search: the baseline every search is measured against. Samples new archs uniformly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwnas.search.algorithms import register_algorithm
from hwnas.search.evaluator import Evaluator
from hwnas.search.sampling import sample_new

__all__ = ["random_search"]


@register_algorithm("random")
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
