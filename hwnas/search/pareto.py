"""Pareto fronts and hypervolume in minimisation space, with an explicit normalisation and reference point."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from hwnas.errors import SearchError

__all__ = ["Normalization", "pareto_mask", "nondominated_ranks", "hypervolume", "hypervolume_2d",
           "hypervolume_gains"]


@dataclass(frozen=True)
class Normalization:
    """Per-objective bounds in minimisation space; `apply` maps [lower, upper] to [0, 1]. The hypervolume
    reference point is given in normalised units (default (1, ..., 1))."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    reference: tuple[float, ...] | None = None

    @classmethod
    def from_points(cls, F: np.ndarray, reference: Sequence[float] | None = None) -> Normalization:
        F = np.atleast_2d(np.asarray(F, dtype=float))
        return cls(tuple(F.min(axis=0)), tuple(F.max(axis=0)), None if reference is None else tuple(reference))

    @property
    def ref_point(self) -> np.ndarray:
        return np.ones(len(self.lower)) if self.reference is None else np.asarray(self.reference, dtype=float)

    def apply(self, F: np.ndarray) -> np.ndarray:
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        span = np.where(hi > lo, hi - lo, 1.0)
        return (np.atleast_2d(np.asarray(F, dtype=float)) - lo) / span

    def to_dict(self) -> dict[str, Any]:
        return {"lower": list(self.lower), "upper": list(self.upper), "reference": list(self.ref_point)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        return cls(tuple(data["lower"]), tuple(data["upper"]), tuple(data.get("reference") or ()) or None)


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of F (minimisation). Duplicated points are all kept."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    if len(F) == 0:
        return np.zeros(0, dtype=bool)
    mask = np.zeros(len(F), dtype=bool)
    mask[NonDominatedSorting().do(F, only_non_dominated_front=True)] = True
    return mask


def nondominated_ranks(F: np.ndarray) -> np.ndarray:
    """Front number (0 = non-dominated) of each row of F."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    ranks = np.zeros(len(F), dtype=int)
    for r, front in enumerate(NonDominatedSorting().do(F)):
        ranks[front] = r
    return ranks


def hypervolume_2d(P: np.ndarray, ref: Sequence[float]) -> float:
    """Exact 2-D hypervolume dominated by P (minimisation) and bounded by `ref`."""
    P = np.atleast_2d(np.asarray(P, dtype=float))
    r0, r1 = float(ref[0]), float(ref[1])
    P = P[(P[:, 0] < r0) & (P[:, 1] < r1)]
    if len(P) == 0:
        return 0.0
    P = P[np.lexsort((P[:, 1], P[:, 0]))]
    volume, best1 = 0.0, r1
    for x, y in P:
        if y < best1:
            volume += (r0 - x) * (best1 - y)
            best1 = y
    return volume


def hypervolume(F: np.ndarray, normalization: Normalization) -> float:
    """Hypervolume of the points F (minimisation space) after normalising, w.r.t. the reference point."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    if F.size == 0:
        return 0.0
    P = normalization.apply(F)
    ref = normalization.ref_point
    if P.shape[1] != len(ref):
        raise SearchError(f"{P.shape[1]} objectives but a {len(ref)}-D reference point")
    if P.shape[1] == 2:
        return hypervolume_2d(P, ref)
    from pymoo.indicators.hv import HV

    P = P[np.all(P < ref, axis=1)]
    return float(HV(ref_point=ref)(P)) if len(P) else 0.0


def hypervolume_gains(front: np.ndarray, points: np.ndarray, ref: Sequence[float]) -> np.ndarray:
    """Hypervolume each row of `points` would add, alone, to the region dominated by `front` (both already
    normalised, minimisation) and bounded by `ref`. Vectorised in 2-D; one hypervolume per point otherwise."""
    front = np.atleast_2d(np.asarray(front, dtype=float)).reshape(-1, np.shape(points)[-1])
    points = np.atleast_2d(np.asarray(points, dtype=float))
    ref = np.asarray(ref, dtype=float)
    if points.shape[1] != 2:
        d = points.shape[1]
        as_is = Normalization((0.0,) * d, (1.0,) * d, tuple(ref))  # the points are normalised already
        base = hypervolume(front, as_is)
        return np.array([hypervolume(np.vstack([front, p[None, :]]), as_is) - base for p in points])
    # 2-D: the dominated region's upper edge h(x) is a staircase; a point p adds the area between
    # max(p1, .) and min(h(x), r1) for x in [p0, r0]
    F = front[(front[:, 0] < ref[0]) & (front[:, 1] < ref[1])]
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    xs, hs, best = [], [], ref[1]
    for x, y in F:
        if y < best:
            xs.append(x)
            hs.append(y)
            best = y
    edges = np.array([*xs, ref[0]])  # h is ref[1] left of edges[0], hs[i] on [edges[i], edges[i + 1])
    starts = np.concatenate([[-np.inf], edges[:-1]])
    ends = edges
    heights = np.concatenate([[ref[1]], hs])
    lo = np.maximum(points[:, :1], starts[None, :])
    width = np.clip(ends[None, :] - lo, 0.0, None)
    depth = np.clip(heights[None, :] - points[:, 1:2], 0.0, None)
    gains = (width * depth).sum(axis=1)
    return np.where((points[:, 0] < ref[0]) & (points[:, 1] < ref[1]), gains, 0.0)
