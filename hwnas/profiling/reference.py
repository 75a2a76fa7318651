"""The archs profiling measures whole: a fixed reference set (the same on every device) and random
calibration subnets, both drawn from fixed seeds so that a re-run picks the same ones.

Reference subnets come from the space's profiled resolutions (`space.profiled_space()`), so the cross-device
anchor stays the same set whatever other resolutions a space accepts; calibration subnets come from every
resolution the space accepts, so predictors are calibrated, and their held-out error reported, on resolutions
they interpolate as well as on profiled ones."""

from __future__ import annotations

import numpy as np

from hwnas.space import Arch, SearchSpace

__all__ = ["reference_archs", "calibration_archs", "corner_archs", "REFERENCE_SEED", "CALIBRATION_SEED"]

REFERENCE_SEED = 20_201
CALIBRATION_SEED = 7
POOL = 1000


def reference_archs(space: SearchSpace, n: int = 20) -> list[Arch]:
    """`n` archs spread evenly over FLOPs: sample a fixed pool, sort by FLOPs, take evenly spaced ranks.

    Deterministic for a space config, so every device measures the same set (the few-shot anchor).
    """
    if n <= 0:
        return []
    sampler = space.profiled_space()
    pool = [a for a in {a.key: a for a in sampler.sample(np.random.default_rng(REFERENCE_SEED), POOL)}.values()
            if not _degenerate(space, a)]
    pool.sort(key=lambda a: (sampler.flops(a), a.key))
    picks = np.unique(np.round(np.linspace(0, len(pool) - 1, min(n, len(pool)))).astype(int))
    return [pool[i] for i in picks]


CORNERS_FROM = 10  # calibration sets of at least this many subnets start with the space's two ends
PER_RESOLUTION_FROM = 30  # ... and from this many, with the smallest and largest at each profiled resolution


def calibration_archs(space: SearchSpace, n: int, seed: int = CALIBRATION_SEED,
                      exclude: set[str] | None = None) -> list[Arch]:
    """`n` distinct archs, none of them in `exclude` (keys); the same on every call.

    From `CORNERS_FROM` subnets on, the set starts with the space's corners (`corner_archs`: BigNAS's sandwich
    for predictors): a random sample rarely comes near the smallest and largest subnets, and a budgeted front
    sits at the fast end, where a predictor fitted on random subnets alone extrapolates (on the demo supernet
    it over-predicted the front's smallest subnets by 5-13%; with the corners, -3% to +1%: benchmarks/README.md).
    The rest are random, drawn from `seed`.
    """
    exclude = set(exclude or ())
    out: dict[str, Arch] = {}
    if n >= CORNERS_FROM:
        for arch in corner_archs(space, per_resolution=n >= PER_RESOLUTION_FROM):
            if arch.key not in exclude and len(out) < n:
                out[arch.key] = arch
    rng = np.random.default_rng(seed)
    for _ in range(50):  # bounded: a tiny space may have fewer archs than asked for
        if len(out) >= n:
            break
        for arch in space.sample(rng, max(n, 8)):
            if arch.key not in exclude and arch.key not in out and not _degenerate(space, arch):
                out[arch.key] = arch
                if len(out) >= n:
                    break
    return list(out.values())


def corner_archs(space: SearchSpace, per_resolution: bool = False) -> list[Arch]:
    """The space's smallest and largest subnets by FLOPs, and with `per_resolution` also those at each profiled
    resolution: the ends a random sample misses and a budgeted front reaches. Candidates are the lowest and
    highest choice everywhere (the ordinal bounds) and a fixed random pool; degenerate archs are skipped."""
    lower, upper = space.bounds()
    pool = space.decode(np.stack([lower, upper])) + space.sample(np.random.default_rng(REFERENCE_SEED), POOL)
    pool = [a for a in pool if not _degenerate(space, a)]
    groups: dict[object, list[Arch]] = {None: pool}
    resolutions = getattr(space, "profiled_resolutions", None) if per_resolution else None
    for r in resolutions or ():
        groups[r] = [space.at_resolution(a, r) for a in pool]
    out: dict[str, Arch] = {}
    for group in groups.values():
        ranked = sorted(group, key=lambda a: (space.flops(a), a.key))
        for arch in (ranked[0], ranked[-1]):
            out.setdefault(arch.key, arch)
    return list(out.values())


def _degenerate(space: SearchSpace, arch: Arch) -> bool:
    """Archs whose output does not depend on their input (NAS-Bench-201 cells cut by `none`) are skipped."""
    check = getattr(space, "is_degenerate", None)
    return bool(check(arch)) if check is not None else False
