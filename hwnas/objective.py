"""Objectives and constraints of a search: a name, a direction, `evaluate(archs) -> ndarray`, and whether
one evaluation is expensive (measured, counted against the budget) or cheap (predicted)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwnas.errors import SearchError

__all__ = ["Objective", "FunctionObjective", "Constraint", "DIRECTIONS", "minimization_matrix"]

DIRECTIONS = ("min", "max")


class Objective:
    """One quantity a search optimises. Subclasses implement `evaluate`.

    `expensive` objectives (supernet top-1, on-device latency, table lookups standing in for them) are what a
    search budget counts; cheap ones (predicted latency, FLOPs, params) are evaluated freely.
    """

    name: str = ""
    direction: str = "min"
    expensive: bool = False
    unit: str = ""

    def evaluate(self, archs: Sequence[Any]) -> np.ndarray:  # pragma: no cover - abstract
        """One float per arch, in the objective's natural units and direction."""
        raise NotImplementedError

    @property
    def sign(self) -> float:
        """+1 for "min", -1 for "max": `sign * value` is to be minimised."""
        return 1.0 if self.direction == "min" else -1.0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction, "expensive": self.expensive, "unit": self.unit}

    def __repr__(self) -> str:
        kind = "expensive" if self.expensive else "cheap"
        return f"{type(self).__name__}({self.name!r}, {self.direction}, {kind})"


class FunctionObjective(Objective):
    """An objective backed by a vectorised function `fn(archs) -> values` (a predictor, a table, FLOPs)."""

    def __init__(self, name: str, fn: Callable[[Sequence[Any]], Any], direction: str = "min",
                 expensive: bool = False, unit: str = ""):
        if direction not in DIRECTIONS:
            raise SearchError(f"objective {name!r} has direction {direction!r}; choose 'min' or 'max'")
        if not name:
            raise SearchError("an objective needs a non-empty name")
        self.name = name
        self.fn = fn
        self.direction = direction
        self.expensive = bool(expensive)
        self.unit = unit

    def evaluate(self, archs: Sequence[Any]) -> np.ndarray:
        values = np.asarray(self.fn(list(archs)), dtype=float).reshape(-1)
        if len(values) != len(archs):
            raise SearchError(f"objective {self.name!r} returned {len(values)} values for {len(archs)} archs")
        return values


@dataclass(frozen=True)
class Constraint:
    """`objective <= upper` and/or `objective >= lower`, e.g. latency on a device under 30 ms."""

    objective: Objective
    upper: float | None = None
    lower: float | None = None

    def __post_init__(self) -> None:
        if self.upper is None and self.lower is None:
            raise SearchError(f"constraint on {self.objective.name!r} needs an upper or a lower limit")

    @property
    def name(self) -> str:
        return self.objective.name

    def violation(self, values: np.ndarray) -> np.ndarray:
        """How far each value is outside the limits (0 where it satisfies them)."""
        values = np.asarray(values, dtype=float)
        out = np.zeros_like(values)
        if self.upper is not None:
            out = np.maximum(out, values - self.upper)
        if self.lower is not None:
            out = np.maximum(out, self.lower - values)
        return out

    def describe(self) -> dict[str, Any]:
        return {"objective": self.objective.name, "upper": self.upper, "lower": self.lower,
                "unit": self.objective.unit}


def minimization_matrix(objectives: Sequence[Objective], values: dict[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """Stack objective values (dict by name, or an (n, m) array in objective order) into an (n, m) matrix to
    minimise: "max" objectives are negated."""
    if isinstance(values, dict):
        cols = [np.asarray(values[o.name], dtype=float) for o in objectives]
        raw = np.stack(cols, axis=1) if cols else np.zeros((0, 0))
    else:
        raw = np.asarray(values, dtype=float)
    signs = np.array([o.sign for o in objectives])
    return raw * signs
