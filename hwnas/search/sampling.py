"""Drawing new archs for a search: uniform samples not seen before, one candidate per distinct network (its
effective form), samples spread over the FLOPs range, and a first batch that also holds the structurally
smallest archs."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from hwnas.space import Arch, SearchSpace

__all__ = ["effective_candidate", "effective_sample", "initial_design", "sample_new", "sample_spread"]


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


def effective_candidate(space: SearchSpace, arch: Arch,
                        admissible: Callable[[Arch], bool] | None = None) -> Arch | None:
    """The arch to propose for `arch`'s network: its effective form (`space.effective`) where `admissible`
    accepts it, else the arch itself where accepted (the canonical form may lie outside the problem, e.g. not in
    a benchmark table), else None."""
    for a in (space.effective(arch), arch):
        if admissible is None or admissible(a):
            return a
    return None


def effective_sample(space: SearchSpace, rng: np.random.Generator, n_draws: int, exclude: Collection[str] = (),
                     admissible: Callable[[Arch], bool] | None = None) -> list[Arch]:
    """Of `n_draws` random archs, one candidate per distinct network (`effective_candidate`), none whose key
    or effective key is in `exclude`."""
    found: dict[str, Arch] = {}
    for a in space.sample(rng, n_draws):
        e = effective_candidate(space, a, admissible)
        network = space.effective(e).key if e is not None else None
        if network is not None and e.key not in exclude and network not in exclude:
            found.setdefault(network, e)
    return list(found.values())


def sample_spread(space: SearchSpace, rng: np.random.Generator, n: int, exclude: Collection[str] = (),
                  admissible: Callable[[Arch], bool] | None = None, oversample: int = 20) -> list[Arch]:
    """Up to `n` new archs spread over the whole range of FLOPs, each in its effective form (`space.effective`).

    Draws `n * oversample` random archs, splits their FLOPs range into `n` equal bins and takes one arch at
    random from each non-empty bin, then fills up with random others. Uniform sampling piles archs up in the
    middle of the range (most random cells and networks are mid-sized), while a front of accuracy against
    latency also needs the smallest and the largest. The effective form computes the same network without the ops
    whose output is never used (a device that runs them anyway can only spend time on them). Archs whose key or
    effective key is in `exclude`, or that `admissible` rejects, are never returned."""
    archs = effective_sample(space, rng, max(n, 1) * oversample, exclude, admissible)
    if len(archs) <= n:
        return archs
    flops = np.array([space.flops(a) for a in archs])
    edges = np.linspace(flops.min(), flops.max(), n + 1)
    bins = np.clip(np.searchsorted(edges, flops, side="right") - 1, 0, n - 1)
    picked = [int(rng.choice(np.flatnonzero(bins == b))) for b in range(n) if (bins == b).any()]
    rest = np.setdiff1d(np.arange(len(archs)), picked)
    picked += [int(i) for i in rng.permutation(rest)[: n - len(picked)]]
    return [archs[i] for i in picked]


def initial_design(space: SearchSpace, rng: np.random.Generator, n: int, exclude: Collection[str] = (),
                   admissible: Callable[[Arch], bool] | None = None, minimal: bool = True) -> list[Arch]:
    """A search's first archs: with `minimal`, the space's structurally smallest (`space.minimal_archs`), then
    `n` archs spread over the FLOPs range (`sample_spread`, drawn as without them). A spread over FLOPs reaches
    the cheapest networks by compute, but not those with the fewest operators, which FLOPs cannot tell from
    larger cells of parameter-free ops: where each operator costs a fixed overhead (a GPU at batch 1, a DSP),
    those are the fast end of the front, and a surrogate fitted on larger cells over-predicts them, so a search
    that never measures one may never try one. Archs whose key or effective key is in `exclude`, or that
    `admissible` rejects, are never returned."""
    spread = sample_spread(space, rng, n, exclude, admissible=admissible)
    taken = set(exclude) | {a.key for a in spread} | {space.effective(a).key for a in spread}
    first: list[Arch] = []
    for arch in space.minimal_archs() if minimal and n > 0 else ():
        cand = effective_candidate(space, arch, admissible)
        if cand is None:
            continue
        keys = {cand.key, space.effective(cand).key}
        if not keys & taken:
            taken |= keys
            first.append(cand)
    return first + spread
