"""Features predictors compute from an arch's operators: per-stage latency-table sums, FLOPs, op counts.

A stage is the set of operators with the same output feature size, so the grouping works for any space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hwnas.errors import PredictorError
from hwnas.space import Arch, OpSpec, SearchSpace

__all__ = ["stage_count", "op_stages", "arch_features", "op_flops_m", "summarize", "summary_lut"]


def _size(op: OpSpec) -> int:
    return int(op.output[0]) if len(op.output) == 3 else 1


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


class ArchSummary:
    """What features need from one arch's operators: keys, stage indices, FLOPs (M) and types."""

    __slots__ = ("keys", "stages", "flops_m", "types")

    def __init__(self, space: SearchSpace, arch: Arch, n_stages: int):
        ops = space.operators(arch)
        self.keys = [op.key for op in ops]
        self.stages = np.array(op_stages(ops, n_stages), dtype=int)
        self.flops_m = np.array([op_flops_m(space, op) for op in ops])
        self.types = [op.type for op in ops]


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
    """Per-stage latency-table sums (ms) of a summarised arch; a missing operator is a PredictorError."""
    try:
        values = np.array([table[k] for k in summary.keys])
    except KeyError as exc:
        raise PredictorError(f"operator {exc.args[0]} is not in the latency table; profile the device at this "
                             "resolution (`hwnas profile DEVICE --resolutions ...`)") from None
    return np.bincount(summary.stages, weights=values, minlength=n_stages)[:n_stages]


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
