"""Features predictors compute from an arch's operators: per-stage latency-table sums, FLOPs, op counts.

A stage is the set of operators with the same output feature size, so the grouping works for any space.

Resolutions a profile did not measure (not in the space's `profiled_resolutions`, which a profile records) are
interpolated (`op_latencies_ms`): an operator missing from the table takes the latency of the same operator
(same position in the same arch) at the nearest profiled resolutions below and above, linearly in the
operator's input pixel count (h x w: its compute scales with it). An operator the table holds (deep, small
layers often have the same size at nearby resolutions) keeps its measured value. Outside the profiled range
the line through the two nearest profiled resolutions is extrapolated (never below zero), with one
`ResolutionExtrapolationWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from hwnas.errors import PredictorError
from hwnas.space import Arch, OpSpec, SearchSpace

__all__ = ["stage_count", "op_stages", "arch_features", "op_flops_m", "summarize", "summary_lut", "op_latencies_ms",
           "ResolutionExtrapolationWarning"]


class ResolutionExtrapolationWarning(UserWarning):
    """A latency was predicted at a resolution outside the range the table's profile measured."""


def _size(op: OpSpec) -> int:
    return int(op.output[0]) if len(op.output) == 3 else 1


MAX_STAGES = 64  # far above any space's stage count; a saved predictor claiming more is damaged


def stage_count(space: SearchSpace) -> int:
    """How many stages (distinct output sizes) the space's archs have; the most over a few samples."""
    archs = space.sample(np.random.default_rng(0), 8)
    return max(len({_size(op) for op in space.operators(a)}) for a in archs)


def op_stages(ops: Sequence[OpSpec], n_stages: int) -> list[int]:
    """Stage index of each operator: 0 for the largest output size, capped at n_stages - 1."""
    sizes = sorted({_size(op) for op in ops}, reverse=True)
    rank = {s: min(i, n_stages - 1) for i, s in enumerate(sizes)}
    return [rank[_size(op)] for op in ops]


def op_flops_m(space: SearchSpace, op: OpSpec) -> float:
    """FLOPs of one operator in millions, through the space's own counter."""
    return space.op_flops(op) / 1e6


def _pixels(op: OpSpec) -> int:
    return int(op.input[0]) * int(op.input[1]) if len(op.input) == 3 else 1


class ArchSummary:
    """What features need from one arch's operators: keys, stage indices, FLOPs (M), types, input pixel counts,
    and (for interpolation) the space and arch they came from."""

    __slots__ = ("keys", "stages", "flops_m", "types", "pixels", "space", "arch", "n_stages")

    def __init__(self, space: SearchSpace, arch: Arch, n_stages: int):
        ops = space.operators(arch)
        self.keys = [op.key for op in ops]
        self.stages = np.array(op_stages(ops, n_stages), dtype=int)
        self.flops_m = np.array([op_flops_m(space, op) for op in ops])
        self.types = [op.type for op in ops]
        self.pixels = np.array([_pixels(op) for op in ops], dtype=float)
        self.space, self.arch, self.n_stages = space, arch, n_stages


_CACHE: dict[tuple[str, str, int], ArchSummary] = {}
_CACHE_LIMIT = 200_000


def summarize(space: SearchSpace, arch: Arch, n_stages: int) -> ArchSummary:
    """The arch's ArchSummary, cached by (space config, arch key): repeated predictions skip operators()."""
    cache_key = (repr(sorted(space.config().items())), arch.key, n_stages)
    found = _CACHE.get(cache_key)
    if found is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        found = _CACHE[cache_key] = ArchSummary(space, arch, n_stages)
    return found


def summary_lut(summary: ArchSummary, table: Mapping[str, float], n_stages: int) -> np.ndarray:
    """Per-stage latency-table sums (ms) of a summarised arch, interpolating unprofiled resolutions
    (`op_latencies_ms`); an operator neither in the table nor interpolable is a PredictorError."""
    values = op_latencies_ms(summary, table)
    return np.bincount(summary.stages, weights=values, minlength=n_stages)[:n_stages]


def op_latencies_ms(summary: ArchSummary, table: Mapping[str, float]) -> np.ndarray:
    """Each operator's latency (ms) from the table; at a resolution the space does not profile
    (`space.profiled_resolutions`), interpolated between the nearest profiled ones (see the module docstring)."""
    missing = next((k for k in summary.keys if k not in table), None)
    if missing is None:
        return np.array([table[k] for k in summary.keys], dtype=float)
    space, arch = summary.space, summary.arch
    r = space.resolution(arch)
    profiled = tuple(getattr(space, "profiled_resolutions", ()) or ())
    if r is None or r in profiled or not profiled:
        raise PredictorError(f"operator {missing} is not in the latency table; re-run `hwnas profile DEVICE` to "
                             "measure the profile's missing operators")
    below, above = _covered(summary, table, profiled, r, -1), _covered(summary, table, profiled, r, +1)
    if below and above:
        lo, hi = below[0], above[0]
    else:
        side = below or above
        if len(side) < 2:
            held = f"resolution {space.resolution(side[0].arch)} only" if side else "no resolution"
            raise PredictorError(f"operator {missing} is not in the latency table and resolution {r} cannot be "
                                 f"interpolated: the table holds this arch's operators at {held}; profile the "
                                 f"device at resolutions around {r} (`hwnas profile DEVICE --resolutions ...`)")
        lo, hi = side[0], side[1]
        _warn_extrapolated(r, space.resolution(lo.arch), space.resolution(hi.arch))
    if len(lo.keys) != len(summary.keys) or len(hi.keys) != len(summary.keys):
        raise PredictorError(f"arch {arch.key} runs other operators at resolution {r} than at "
                             f"{space.resolution(lo.arch)}; its latency cannot be interpolated")
    t_lo = np.array([table[k] for k in lo.keys])
    t_hi = np.array([table[k] for k in hi.keys])
    span = hi.pixels - lo.pixels
    weight = np.divide(summary.pixels - lo.pixels, span, out=np.zeros_like(span), where=span != 0)
    values = np.maximum(t_lo + weight * (t_hi - t_lo), 0.0)
    exact = np.array([k in table for k in summary.keys])
    if exact.any():
        values[exact] = [table[k] for k, e in zip(summary.keys, exact) if e]
    return values


def _covered(summary: ArchSummary, table: Mapping[str, float], profiled: Sequence[int], r: int,
             direction: int) -> list[ArchSummary]:
    """The arch's summaries at the two nearest profiled resolutions on one side of `r` (direction -1 below,
    +1 above) whose operators the table holds, nearest first."""
    space = summary.space
    found = []
    for x in sorted((x for x in profiled if (x - r) * direction > 0), key=lambda x: abs(x - r)):
        other = summarize(space, space.at_resolution(summary.arch, x), summary.n_stages)
        if all(k in table for k in other.keys):
            found.append(other)
            if len(found) == 2:
                break
    return found


def _warn_extrapolated(r: int, nearest: int, other: int) -> None:
    low, high = sorted((nearest, other))
    side = "below" if r < low else "above"
    warnings.warn(f"latency at resolution(s) {side} the profiled range (nearest profiled: {low} and {high}) is "
                  "extrapolated linearly in pixel count; profile those resolutions (`hwnas profile DEVICE "
                  "--resolutions ...`) to predict from measurements", ResolutionExtrapolationWarning, stacklevel=2)


def arch_features(space: SearchSpace, archs: Sequence[Arch], table: Mapping[str, float] | None,
                  n_stages: int, op_types: Sequence[str]) -> np.ndarray:
    """Rows of [lut per stage, lut total (if a table), FLOPs per stage, FLOPs total, n_ops, count per op type]."""
    type_index = {t: i for i, t in enumerate(op_types)}
    rows = []
    for arch in archs:
        summary = summarize(space, arch, n_stages)
        flops = np.bincount(summary.stages, weights=summary.flops_m, minlength=n_stages)[:n_stages]
        counts = np.zeros(len(op_types))
        for t in summary.types:
            if t in type_index:
                counts[type_index[t]] += 1
        parts = []
        if table is not None:
            lut = summary_lut(summary, table, n_stages)
            parts += [lut, [lut.sum()]]
        parts += [flops, [flops.sum(), len(summary.keys)], counts]
        rows.append(np.concatenate([np.asarray(p, dtype=float) for p in parts]))
    return np.array(rows).reshape(len(archs), -1)
