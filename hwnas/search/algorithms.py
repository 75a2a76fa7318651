"""The search algorithm registry: each algorithm registers itself by name (`@register_algorithm("nsga2")`) and
`run_search` builds the chosen one with `create_algorithm(name, **options)`, as spaces and predictors are chosen.

An algorithm is a function `algorithm(evaluator, seed=0, progress=None, **options) -> evaluator` that proposes
archs to the budgeted `Evaluator` until its budget is spent."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from hwnas.errors import SearchError
from hwnas.registry import Registry
from hwnas.search.evaluator import Evaluator

__all__ = ["ALGORITHMS", "SearchAlgorithm", "algorithm_options", "create_algorithm", "list_algorithms",
           "register_algorithm"]

SearchAlgorithm = Callable[..., Evaluator]
"""`algorithm(evaluator, seed=..., progress=...) -> evaluator`, with its options bound."""

ALGORITHMS: Registry[SearchAlgorithm] = Registry("search algorithm", SearchError)
_RUN_ARGUMENTS = ("evaluator", "seed", "progress")  # given by whoever runs the algorithm, not options


def register_algorithm(name: str) -> Callable[[SearchAlgorithm], SearchAlgorithm]:
    """Function decorator: register a search algorithm under `name`; the function itself is unchanged."""

    def decorator(fn: SearchAlgorithm) -> SearchAlgorithm:
        @functools.wraps(fn)  # the registered factory shows fn's signature and docstring
        def configure(**options: Any) -> SearchAlgorithm:
            taken = [k for k in options if k in _RUN_ARGUMENTS]
            if taken:
                raise TypeError(f"{', '.join(taken)} is given when the algorithm runs, not as an option")
            inspect.signature(fn).bind_partial(**options)  # a TypeError names an unknown option
            return functools.partial(fn, **options)

        ALGORITHMS.register(name)(configure)
        return fn

    return decorator


def list_algorithms() -> list[str]:
    return ALGORITHMS.names()


def create_algorithm(name: str, **options: Any) -> SearchAlgorithm:
    """The algorithm registered as `name` with `options` bound (None keeps its default); run it as
    `algorithm(evaluator, seed=seed, progress=progress)`. An unknown name or option is a SearchError."""
    return ALGORITHMS.create(name, **options)


def algorithm_options(name: str) -> list[str]:
    """The options `create_algorithm(name, ...)` takes (e.g. whether it takes a `prior`)."""
    parameters = inspect.signature(ALGORITHMS.get(name)).parameters.values()
    return [p.name for p in parameters if p.name not in _RUN_ARGUMENTS and p.kind != p.VAR_KEYWORD]
