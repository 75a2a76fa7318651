"""The predictor-accelerated loop, in the manner of DyNAS-T's LINAS: validate a population with the expensive
objectives, refit a surrogate per expensive objective on everything validated so far, run an inner NSGA-II on
the surrogates (cheap objectives evaluated directly), validate the best new archs of its front, repeat.
No arch is validated twice. Each batch is checked against what the surrogates predicted for it
(`SurrogateMonitor`): where they stop ranking what is measured, part of the next batch goes to exploration
(NSGA-II offspring, spread samples); later in the run part of each batch refines the front where it is still
uncertain (one-edge neighbours of front archs, by optimistic hypervolume gain)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

from hwnas.search.algorithms import register_algorithm
from hwnas.search.diagnostics import Z_INTERVAL, SurrogateMonitor
from hwnas.search.evaluator import Evaluator
from hwnas.search.nsga2 import run_nsga2
from hwnas.search.pareto import Normalization, hypervolume, hypervolume_gains, nondominated_ranks, pareto_mask
from hwnas.search.prior import PriorModel, prior_front, prior_surrogate
from hwnas.search.sampling import effective_candidate, initial_design, sample_new, sample_spread
from hwnas.search.surrogate import SurrogateFactory, loop_surrogate
from hwnas.space import Arch

__all__ = ["accelerated_search"]


@register_algorithm("accelerated")
def accelerated_search(evaluator: Evaluator, seed: int = 0, n_init: int = 20, batch: int = 5,
                       inner_pop: int = 20, inner_gens: int = 5, select: str = "thompson", optimism: float = 0.0,
                       n_mutants: int = 10, n_random: int = 500, n_spread: int = 100,
                       surrogate: SurrogateFactory | None = None, prior: PriorModel | None = None,
                       explore: bool = True, refine_after: int = 100, refine_share: float = 0.4,
                       grow_batch: int = 500, minimal: bool = True,
                       progress: Callable[[Evaluator], None] | None = None) -> Evaluator:
    """Run the loop until the evaluator's budget is spent.

    Each round refits one surrogate per expensive objective (default `loop_surrogate`: a bootstrap ensemble
    on the space's surrogate features, `ArchFeatures`; for a measured latency that or a fitted lookup table on
    the operators each arch runs, whichever predicted the validated archs better out of bag) and runs an inner
    NSGA-II on the surrogates' mean for `inner_gens` generations, starting from the best validated archs.
    `select` picks the `batch` archs to validate next:
    - "thompson" (default): from a pool of the inner search's archs, the elite, `n_spread` archs spread
      over the FLOPs range, `n_mutants` mutations of each of those, and `n_random` random archs, each pick
      draws one ensemble member and takes the arch whose drawn objectives add the most hypervolume to the
      validated front. The members' disagreement makes it try archs the surrogates are unsure of, not only
      those their mean likes.
    - "hv": greedily the inner front's archs whose mean predictions add the most hypervolume;
    - "front": the inner front by rank and crowding distance, as LINAS does.
    With `optimism` > 0 the inner search sees predictions shifted that many standard deviations towards
    better values.

    With `prior` (a `PriorModel` fitted on a related task's values of one expensive objective), the first
    `n_init` archs are the prior's predicted front (`prior_front`) instead of archs spread over the FLOPs range,
    and, unless `surrogate` is given, that objective's surrogate takes the prior's prediction as a feature
    (`prior_surrogate`).

    Robustness (with `select` "thompson"):
    - `explore`: each batch's predictions at proposal time are paired with the values measured
      (`SurrogateMonitor`: Spearman correlation and 80%-interval coverage over the last 30 proposals); where the
      surrogates rank poorly, up to 60% of the next batch are NSGA-II offspring of the validated archs and spread
      samples instead of Thompson picks. Each batch's diagnostics go to `evaluator.note` (the run folder's
      diagnostics.jsonl).
    - `refine_after`: from that many evaluations on, `refine_share` of each batch (2-objective problems) are
      one-edge neighbours of validated front archs with the largest optimistic hypervolume gain (mean plus 1.28
      predictive standard deviations, measurement noise included): between front points and at its ends, where
      the front is still uncertain.
    - `minimal` (without a prior): the space's structurally smallest archs (`space.minimal_archs`) are evaluated
      with the first `n_init`, on top of them (`initial_design`): where each op costs a fixed overhead they are
      the front's fast end, and neither FLOPs nor a surrogate fitted on larger archs leads a search to them.
    - `grow_batch`: the batch grows by `batch` every that many evaluations (5, then 10 from 500 on), so the loop's
      own cost per proposal stays bounded as the surrogates' training set grows (0: fixed batch).
    """
    space = evaluator.space
    rng = np.random.default_rng(seed)
    make = surrogate or (prior_surrogate(prior) if prior is not None else loop_surrogate)
    objectives = evaluator.objectives
    constraints = evaluator.constraints
    n_obj, n_con = len(objectives), len(constraints)

    # records reused from another search stand in for as many of the initial archs
    n_first = min(max(0, n_init - len(evaluator.records)), evaluator.remaining)
    if not n_first:
        first = []
    elif prior is not None:
        first = prior_front(space, prior, objectives, n_first, rng, constraints, evaluator.admissible,
                            evaluator.seen_keys)
    else:
        first = initial_design(space, rng, n_first, evaluator.seen_keys, evaluator.admissible,
                               minimal)[:evaluator.remaining]
    if first:
        evaluator.evaluate(first)
        if progress is not None:
            progress(evaluator)
    monitor = SurrogateMonitor([o.name for o in evaluator.quantities if o.expensive])
    round_ = 0
    while evaluator.remaining > 0:
        round_ += 1
        records = evaluator.records
        monitor.observe(records)
        archs = [r.arch for r in records]
        models = {}
        for obj in evaluator.quantities:
            if obj.expensive:
                y = np.array([r.values[obj.name] for r in records])
                models[obj.name] = _fit(make(space, obj.name, seed + round_), archs, y,
                                        [r.extra.get("noise_std", {}).get(obj.name) for r in records])

        def fitness(cands: list[Arch], models: dict = models) -> tuple[np.ndarray, np.ndarray]:
            vals = {}
            for o in evaluator.quantities:
                if o.name not in models:
                    vals[o.name] = o.evaluate(cands)
                elif optimism and getattr(models[o.name], "has_std", False):
                    mean, std = models[o.name].predict(cands, return_std=True)
                    vals[o.name] = mean - o.sign * optimism * std  # optimistic: better by `optimism` std
                else:
                    vals[o.name] = models[o.name].predict(cands)
            F = np.stack([o.sign * vals[o.name] for o in objectives], axis=1)
            G = (np.stack([c.violation(vals[c.name]) for c in constraints], axis=1) if constraints
                 else np.zeros((len(cands), 0)))
            return F, G

        elite = _elite(evaluator, inner_pop)
        cands, F, G = run_nsga2(space, fitness, n_obj, n_con, pop_size=inner_pop, n_gen=inner_gens,
                                seed=seed * 7919 + round_, initial=elite)
        new = np.array([not evaluator.is_evaluated(a) and evaluator.admits(a) for a in cands], dtype=bool)
        cands = [a for a, k in zip(cands, new, strict=False) if k]
        F, G = F[new], G[new]
        size = batch * (1 + evaluator.spent // grow_batch) if grow_batch else batch
        k = min(size, evaluator.remaining)
        picks: dict[str, int] = {}
        if select == "thompson":
            n_explore = int(round(k * monitor.explore_share())) if explore else 0
            n_refine = (min(int(round(k * refine_share)), k - n_explore)
                        if evaluator.spent >= refine_after and n_obj == 2 else 0)
            pool = _candidate_pool(evaluator, cands + elite, rng, n_mutants, n_random, n_spread)
            chosen = (_select_thompson(evaluator, models, pool, k - n_explore - n_refine, rng)
                      if pool and k > n_explore + n_refine else [])
            picks["surrogate"] = len(chosen)
            if n_refine:
                chosen += _select_refine(evaluator, models, rng, n_refine, {a.key for a in chosen})
                picks["refine"] = len(chosen) - picks["surrogate"]
            if n_explore:
                chosen += _explore(evaluator, rng, n_explore, {a.key for a in chosen})
                picks["explore"] = len(chosen) - sum(picks.values())
        elif cands:
            order = (_select_hv(evaluator, F, G, k) if select == "hv" and n_obj >= 2
                     else _select_front(F, G, k))
            chosen = [cands[i] for i in order]
        else:
            chosen = []
        if len(chosen) < k:  # the inner search found too few new archs: fill with random new ones
            taken = evaluator.seen_keys | {a.key for a in chosen}
            chosen += sample_new(space, rng, k - len(chosen), taken, admissible=evaluator.admissible)
        if not chosen:
            break  # the whole space is evaluated
        if picks:
            picks["fill"] = len(chosen) - sum(picks.values())
        means, stds = _predictive(evaluator, models, chosen)
        monitor.propose([a.key for a in chosen], means, stds)
        evaluator.evaluate(chosen)
        monitor.observe(evaluator.records[-len(chosen):])
        noise = {n: float(np.median(m.noise_std_at(np.array([r.values[n] for r in records]))))
                 for n, m in models.items() if hasattr(m, "noise_std_at")}
        chosen_models = {n: m.chosen_name for n, m in models.items() if hasattr(m, "chosen_name")}
        evaluator.note(monitor.diagnostics(round_, evaluator.spent, {k: v for k, v in picks.items() if v},
                                           noise, chosen_models).to_dict())
        if progress is not None:
            progress(evaluator)
    return evaluator


def _fit(model, archs: list[Arch], y: np.ndarray, noise_std: list[float | None]):
    """Fit a surrogate, passing the records' measured noise (`record.extra["noise_std"][name]`, from repeated
    measurements) to those that take it."""
    import inspect

    if any(s is not None for s in noise_std) and "noise_std" in inspect.signature(model.fit).parameters:
        return model.fit(archs, y, noise_std=np.array([np.nan if s is None else s for s in noise_std], dtype=float))
    return model.fit(archs, y)


def _predictive(evaluator: Evaluator, models: dict, archs: list[Arch]) -> tuple[dict, dict]:
    """Per expensive quantity, the surrogate's mean and predictive standard deviation (its spread and the
    measurement noise where it models it; 0 for a surrogate without either) for `archs`."""
    means, stds = {}, {}
    for name, model in models.items():
        if getattr(model, "has_std", False):
            try:
                mean, std = model.predict(archs, return_std=True, noise=True)
            except TypeError:
                mean, std = model.predict(archs, return_std=True)
        else:
            mean = np.asarray(model.predict(archs), dtype=float)
            std = np.zeros(len(archs))
        means[name], stds[name] = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    return means, stds


def _explore(evaluator: Evaluator, rng: np.random.Generator, n: int, taken: set[str]) -> list[Arch]:
    """`n` archs that do not rely on the surrogates: two thirds NSGA-II offspring of the validated archs (binary
    tournament by rank and crowding, crossover, mutation), the rest spread over the FLOPs range; each new, in
    its effective form, admissible and of a network not validated before."""
    space = evaluator.space
    records = evaluator.records
    done = {space.effective(r.arch).key for r in records} | set(evaluator.seen_keys) | set(taken)
    order = _order_by_rank(evaluator.F(records), evaluator.G(records))
    position = np.empty(len(records), dtype=int)
    position[order] = np.arange(len(records))
    out: list[Arch] = []
    n_offspring = n - n // 3
    for _ in range(50 * n_offspring):
        if len(out) >= n_offspring:
            break
        parents = []
        for _ in range(2):  # binary tournament: the better by rank and crowding
            i, j = rng.integers(len(records), size=2)
            parents.append(records[i if position[i] < position[j] else j].arch)
        child = space.mutate(space.crossover(parents[0], parents[1], rng), rng)
        cand = effective_candidate(space, child, evaluator.admits)
        if cand is not None and cand.key not in done and space.effective(cand).key not in done:
            done |= {cand.key, space.effective(cand).key}
            out.append(cand)
    out += sample_spread(space, rng, n - len(out), done, admissible=evaluator.admissible)
    return out[:n]


def _select_refine(evaluator: Evaluator, models: dict, rng: np.random.Generator, n: int,
                   taken: set[str], n_mutants: int = 30) -> list[Arch]:
    """`n` one-edge neighbours (`space.mutate`) of the validated front's archs, picked greedily by the
    hypervolume their optimistic prediction (mean improved by `Z_INTERVAL` predictive standard deviations, noise
    included) adds to the validated front plus the picks before it (at their mean). Gains lie only between
    front points and past its ends, so these picks go where the front is still uncertain."""
    space = evaluator.space
    front = evaluator.front()
    if not front:
        return []
    done = {space.effective(r.arch).key for r in evaluator.records} | set(taken)
    found: dict[str, Arch] = {}
    for rec in front:
        for _ in range(n_mutants):
            cand = effective_candidate(space, space.mutate(rec.arch, rng), evaluator.admits)
            if cand is None:
                continue
            net = space.effective(cand).key
            if net not in done and cand.key not in evaluator.seen_keys and cand.key not in taken:
                found.setdefault(net, cand)
    pool = list(found.values())
    if not pool:
        return []
    means, stds = _predictive(evaluator, models, pool)
    vals_mean, vals_opt = {}, {}
    for o in evaluator.quantities:
        if o.name in models:
            vals_mean[o.name] = means[o.name]
            vals_opt[o.name] = means[o.name] - o.sign * Z_INTERVAL * stds[o.name]  # better by Z std
        else:
            vals_mean[o.name] = vals_opt[o.name] = np.asarray(o.evaluate(pool), dtype=float)
    F_mean = np.stack([o.sign * vals_mean[o.name] for o in evaluator.objectives], axis=1)
    F_opt = np.stack([o.sign * vals_opt[o.name] for o in evaluator.objectives], axis=1)
    if evaluator.constraints:
        G = np.stack([c.violation(vals_mean[c.name]) for c in evaluator.constraints], axis=1)
        feasible = np.all(G <= 0, axis=1)
    else:
        feasible = np.ones(len(pool), dtype=bool)
    validated = evaluator.F(front)
    norm = evaluator.normalization or Normalization.from_points(np.vstack([validated, F_mean]),
                                                                reference=[1.1] * F_mean.shape[1])
    current = norm.apply(validated)
    chosen: list[int] = []
    for _ in range(n):
        gains = np.zeros(len(pool))
        ok = feasible.copy()
        ok[chosen] = False
        if ok.any():
            gains[ok] = hypervolume_gains(current, norm.apply(F_opt[ok]), norm.ref_point)
        if gains.max() <= 0:
            break
        pick = int(np.argmax(gains))
        chosen.append(pick)
        pts = np.vstack([current, norm.apply(F_mean[pick:pick + 1])])
        current = pts[pareto_mask(pts)]
    return [pool[i] for i in chosen]


def _candidate_pool(evaluator: Evaluator, seeds: list[Arch], rng: np.random.Generator, n_mutants: int,
                    n_random: int, n_spread: int = 0) -> list[Arch]:
    """New archs to choose from: `seeds` (the inner search's archs and the elite), `n_spread` archs spread
    over the FLOPs range (`sample_spread`: the smallest and largest archs, which uniform samples rarely are),
    `n_mutants` mutations of each of those, and `n_random` uniform samples. One arch per effective form
    (`space.effective`), and none whose effective form was validated before: an arch that computes the same
    network as a validated one would spend an expensive evaluation to learn nothing new. Each candidate is the
    effective form itself where the problem admits it: the same network without the ops whose output is
    never used, which a device that runs every op it is given can only spend time on (on the NAS-Bench-201 device
    tables such twins are slower than their effective form in 62-64% of cases, by 0-3% at the median)."""
    space = evaluator.space
    done = {space.effective(r.arch).key for r in evaluator.records}
    archs = list(seeds) + (sample_spread(space, rng, n_spread, done, admissible=evaluator.admissible)
                           if n_spread else [])
    archs += [space.mutate(a, rng) for a in archs for _ in range(n_mutants)]
    archs += space.sample(rng, n_random)
    out: dict[str, Arch] = {}
    for a in archs:
        key = space.effective(a).key
        if key not in out and key not in done:
            cand = effective_candidate(space, a, evaluator.admits)
            if cand is not None:
                out[key] = cand
    return list(out.values())


def _select_thompson(evaluator: Evaluator, models: dict, pool: list[Arch], k: int,
                     rng: np.random.Generator) -> list[Arch]:
    """Batch Thompson sampling for hypervolume: each pick draws one ensemble member per expensive objective
    and takes the feasible arch whose drawn objectives add the most hypervolume to the validated front (plus
    the mean predictions of the picks before it). Picks no draw credits with any gain fall back to the mean
    predictions' rank and crowding order."""
    samples: dict[str, np.ndarray] = {}
    for o in evaluator.quantities:
        model = models.get(o.name)
        if model is None:
            samples[o.name] = np.asarray(o.evaluate(pool), dtype=float)[None, :]
        elif hasattr(model, "predict_members"):
            samples[o.name] = model.predict_members(pool)
        else:
            samples[o.name] = np.asarray(model.predict(pool), dtype=float)[None, :]
    n_draws = max(len(v) for v in samples.values())

    def matrices(draw: int | None) -> tuple[np.ndarray, np.ndarray]:
        vals = {n: (v.mean(axis=0) if draw is None else v[draw % len(v)]) for n, v in samples.items()}
        F = np.stack([o.sign * vals[o.name] for o in evaluator.objectives], axis=1)
        G = (np.stack([c.violation(vals[c.name]) for c in evaluator.constraints], axis=1)
             if evaluator.constraints else np.zeros((len(pool), 0)))
        return F, G

    F_mean, G_mean = matrices(None)
    validated = evaluator.F(evaluator.records)
    ok = evaluator.feasible(evaluator.records)
    norm = evaluator.normalization or Normalization.from_points(
        np.vstack([validated, F_mean]), reference=[1.1] * F_mean.shape[1])
    current = norm.apply(validated[ok]) if ok.any() else np.zeros((0, F_mean.shape[1]))
    fallback = [int(i) for i in _order_by_rank(F_mean, G_mean)]
    taken: list[int] = []
    offset = int(rng.integers(n_draws))
    for j in range(k):
        F, G = matrices(offset + j)
        feasible = np.all(G <= 0, axis=1) if G.size else np.ones(len(pool), dtype=bool)
        feasible[taken] = False
        gains = np.zeros(len(pool))
        if feasible.any():
            gains[feasible] = hypervolume_gains(current, norm.apply(F[feasible]), norm.ref_point)
        pick = int(np.argmax(gains)) if gains.max() > 0 else next((i for i in fallback if i not in taken), None)
        if pick is None:
            break
        taken.append(pick)
        if not G_mean.size or np.all(G_mean[pick] <= 0):
            pts = np.vstack([current, norm.apply(F_mean[pick:pick + 1])])
            current = pts[pareto_mask(pts)]
    return [pool[i] for i in taken]


def _elite(evaluator: Evaluator, n: int) -> list[Arch]:
    """The best `n` validated archs (feasible first, then by rank and crowding): the inner search starts from
    them, so its candidates are variations of what is known to be good."""
    records = evaluator.records
    order = _order_by_rank(evaluator.F(records), evaluator.G(records))
    return [records[i].arch for i in order[:n]]


def _order_by_rank(F: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Feasible first (least violation first), then by non-domination rank and crowding distance."""
    cv = G.clip(min=0).sum(axis=1) if G.size else np.zeros(len(F))
    ranks = nondominated_ranks(F)
    crowd = np.zeros(len(F))
    for r in np.unique(ranks):
        idx = np.where(ranks == r)[0]
        crowd[idx] = calc_crowding_distance(F[idx]) if len(idx) > 2 else np.inf
    return np.lexsort((-crowd, ranks, cv))


def _select_front(F: np.ndarray, G: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in _order_by_rank(F, G)[:k]]


def _select_hv(evaluator: Evaluator, F: np.ndarray, G: np.ndarray, k: int) -> list[int]:
    """Greedy: each step takes the candidate whose predicted point adds the most hypervolume to the validated
    front plus the points taken before it; candidates adding nothing are taken by rank and crowding."""
    cv = G.clip(min=0).sum(axis=1) if G.size else np.zeros(len(F))
    feasible = np.where(cv <= 0)[0]
    validated = evaluator.F(evaluator.records)
    ok = evaluator.feasible(evaluator.records)
    base = validated[ok] if ok.any() else np.zeros((0, F.shape[1]))
    pool = np.vstack([base, F]) if len(base) else F
    lo, hi = pool.min(axis=0), pool.max(axis=0)
    norm = Normalization(tuple(lo), tuple(hi), tuple([1.1] * F.shape[1]))
    # only the first few predicted fronts can add hypervolume worth validating
    idx = feasible[nondominated_ranks(F[feasible]) <= 2] if len(feasible) else feasible
    chosen: list[int] = []
    current = base[pareto_mask(base)] if len(base) else base
    hv_now = hypervolume(current, norm) if len(current) else 0.0
    remaining = list(idx)
    while len(chosen) < k and remaining:
        gains = []
        for i in remaining:
            pts = np.vstack([current, F[i:i + 1]]) if len(current) else F[i:i + 1]
            gains.append(hypervolume(pts, norm) - hv_now)
        best = int(np.argmax(gains))
        if gains[best] <= 1e-12:
            break
        i = remaining.pop(best)
        chosen.append(int(i))
        pts = np.vstack([current, F[i:i + 1]]) if len(current) else F[i:i + 1]
        current = pts[pareto_mask(pts)]
        hv_now = hypervolume(current, norm)
    if len(chosen) < k:
        rest = [int(i) for i in _order_by_rank(F, G) if int(i) not in set(chosen)]
        chosen += rest[: k - len(chosen)]
    return chosen
