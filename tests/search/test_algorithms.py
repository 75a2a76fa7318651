"""Search algorithms on NAS-Bench-201 (a known true front): budgets, no repeated evaluation, seeds, quality."""

import numpy as np
import pytest

from hwnas.errors import SearchError
from hwnas.objective import Constraint, FunctionObjective
from hwnas.search import (
    BudgetExhausted,
    Evaluator,
    accelerated_search,
    nsga2_search,
    random_search,
)
from hwnas.search.evolution import constrained_evolution
from hwnas.search.feasibility import BudgetInfeasible, check_constraints


class Counting:
    """Wraps an objective and counts the archs it evaluates."""

    def __init__(self, objective):
        self.objective = objective
        self.calls = []

    def __call__(self, archs):
        self.calls += [a.key for a in archs]
        return self.objective.evaluate(archs)


def _counted(objectives):
    counters = [Counting(o) for o in objectives]
    wrapped = [FunctionObjective(o.name, c, o.direction, o.expensive) for o, c in zip(objectives, counters)]
    return wrapped, counters


def test_evaluator_counts_each_arch_once_and_enforces_the_budget(nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    wrapped, counters = _counted(objectives)
    ev = Evaluator(nb201_table.space, wrapped, budget=5, normalization=norm)
    archs = nb201_table.archs[:4]
    ev.evaluate(archs + archs[:2])
    assert ev.spent == 4 and ev.remaining == 1
    ev.evaluate(archs)  # all known: free
    assert ev.spent == 4 and len(counters[0].calls) == 4
    with pytest.raises(BudgetExhausted):
        ev.evaluate(nb201_table.archs[4:6])
    assert [r.index for r in ev.records] == [1, 2, 3, 4]
    assert len(ev.hv_history) == 4 and ev.hv_history[-1][1] == pytest.approx(ev.hypervolume())


@pytest.mark.parametrize("algorithm", [accelerated_search, nsga2_search, random_search])
def test_algorithms_spend_the_budget_without_repeating_an_arch(nb201_table, nb201_problem, algorithm):
    objectives, norm, best = nb201_problem
    wrapped, counters = _counted(objectives)
    ev = Evaluator(nb201_table.space, wrapped, budget=60, normalization=norm)
    algorithm(ev, seed=3)
    assert ev.spent == 60
    assert len(counters[0].calls) == 60 and len(set(counters[0].calls)) == 60
    hv = [h for _, h in ev.hv_history]
    assert all(b >= a for a, b in zip(hv, hv[1:]))  # the front only improves
    assert 0 < hv[-1] <= best + 1e-9


@pytest.mark.parametrize("algorithm", [accelerated_search, nsga2_search, random_search])
def test_same_seed_same_search(nb201_table, nb201_problem, algorithm):
    objectives, _, _ = nb201_problem
    runs = []
    for _ in range(2):
        ev = Evaluator(nb201_table.space, objectives, budget=40)
        algorithm(ev, seed=11)
        runs.append([r.key for r in ev.records])
    assert runs[0] == runs[1]
    ev = Evaluator(nb201_table.space, objectives, budget=40)
    algorithm(ev, seed=12)
    assert [r.key for r in ev.records] != runs[0]


def test_accelerated_loop_gets_close_to_the_true_front(nb201_table, nb201_problem):
    objectives, norm, best = nb201_problem
    ev = Evaluator(nb201_table.space, objectives, budget=150, normalization=norm)
    accelerated_search(ev, seed=0)
    assert ev.hypervolume() >= 0.95 * best


def test_resumed_evaluator_retraces_without_recomputing(nb201_table, nb201_problem):
    objectives, _, _ = nb201_problem
    first = Evaluator(nb201_table.space, objectives, budget=30)
    accelerated_search(first, seed=5, n_init=10, batch=5)
    wrapped, counters = _counted(objectives)
    reported = []
    resumed = Evaluator(nb201_table.space, wrapped, budget=50, resume=first.records[:20], on_record=reported.append)
    accelerated_search(resumed, seed=5, n_init=10, batch=5)
    assert [r.key for r in resumed.records[:30]] == [r.key for r in first.records]
    assert len(counters[0].calls) == 30 and len(reported) == 30  # the first 20 came from the log


def test_constrained_evolution_keeps_to_the_budget(nb201_table):
    t = nb201_table
    acc = t.objective("cifar10_test_acc", direction="max", name="top1", missing="worst")
    lat = t.objective("cifar10_raspi4_latency_ms", name="latency_ms[raspi4]", expensive=False, missing="worst")
    limit = float(np.quantile(t.data["cifar10_raspi4_latency_ms"], 0.3))
    ev = Evaluator(t.space, [acc], [Constraint(lat, upper=limit)], budget=120)
    constrained_evolution(ev, seed=0, population=20)
    assert ev.spent == 120
    lats = np.array([r.values["latency_ms[raspi4]"] for r in ev.records])
    assert np.all(lats <= limit)
    feasible = t.data["cifar10_raspi4_latency_ms"] <= limit
    best_true = t.data["cifar10_test_acc"][feasible].max()
    found = max(r.values["top1"] for r in ev.records)
    assert found >= best_true - 2.0  # within 2 points of the best arch under the budget


def test_impossible_budget_names_the_fastest_arch(nb201_table):
    t = nb201_table
    lat = t.objective("cifar10_raspi4_latency_ms", name="latency_ms[raspi4]", expensive=False, missing="worst")
    fastest = t.data["cifar10_raspi4_latency_ms"].min()
    with pytest.raises(BudgetInfeasible, match="no subnet meets latency_ms\\[raspi4\\] <= ") as info:
        check_constraints(t.space, [Constraint(lat, upper=fastest / 2)])
    assert info.value.values["latency_ms[raspi4]"] <= fastest * 1.2
    assert info.value.arch is not None


def test_objectives_need_distinct_names(nb201_problem, nb201_table):
    objectives, _, _ = nb201_problem
    with pytest.raises(SearchError, match="distinct"):
        Evaluator(nb201_table.space, [objectives[0], objectives[0]])


@pytest.mark.parametrize("algorithm", [accelerated_search, nsga2_search, random_search, constrained_evolution])
def test_algorithms_never_propose_an_inadmissible_arch(nb201_table, nb201_problem, algorithm):
    objectives, norm, _ = nb201_problem
    wrapped, counters = _counted(objectives)
    banned = {a.key for a in nb201_table.archs if a.ops[0] == 3}  # a fifth of the space ruled out
    ev = Evaluator(nb201_table.space, wrapped, budget=40, normalization=norm,
                   admissible=lambda a: a.key not in banned)
    algorithm(ev, seed=1)
    assert ev.spent == 40 and not banned & set(counters[0].calls)
    with pytest.raises(SearchError, match="not admissible"):
        ev.evaluate([next(a for a in nb201_table.archs if a.key in banned)])


def test_candidate_pool_holds_one_arch_per_network_and_none_already_validated(nb201_table, nb201_problem):
    from hwnas.search.accelerated import _candidate_pool

    objectives, norm, _ = nb201_problem
    space = nb201_table.space
    ev = Evaluator(space, objectives, budget=30, normalization=norm, admissible=nb201_table.__contains__)
    ev.evaluate(space.sample(np.random.default_rng(3), 30))
    seeds = [r.arch for r in ev.records]
    pool = _candidate_pool(ev, seeds, np.random.default_rng(4), n_mutants=10, n_random=300)
    networks = [space.effective(a).key for a in pool]
    assert len(pool) > 100 and len(set(networks)) == len(networks)
    assert not set(networks) & {space.effective(a).key for a in seeds}
    assert all(a in nb201_table for a in pool)
    # each candidate is its network's effective form (no ops whose output is never used) where the table has it
    assert all(space.effective(a).key == a.key for a in pool if space.effective(a) in nb201_table)
    # NB201 has many archs computing one network (dead edges): the raw samples hold such twins, the pool none
    raw = seeds + [space.mutate(a, np.random.default_rng(4)) for a in seeds for _ in range(10)]
    assert len({space.effective(a).key for a in raw}) < len({a.key for a in raw})


def test_sample_spread_covers_the_flops_range_with_new_effective_archs(nb201_table):
    from hwnas.search.sampling import sample_new, sample_spread

    space = nb201_table.space
    table_flops = np.array([space.flops(space.effective(a)) for a in nb201_table.archs])
    exclude = {a.key for a in space.sample(np.random.default_rng(9), 2000)}
    for seed in range(5):
        spread = sample_spread(space, np.random.default_rng(seed), 20, exclude, admissible=nb201_table.__contains__)
        uniform = sample_new(space, np.random.default_rng(seed), 20, set(), admissible=nb201_table.__contains__)
        assert len({a.key for a in spread}) == 20
        assert all(a in nb201_table and space.effective(a).key == a.key and a.key not in exclude for a in spread)
        flops = np.array([space.flops(a) for a in spread])
        assert flops.max() >= np.percentile(table_flops, 95)
        assert flops.std() > np.std([space.flops(space.effective(a)) for a in uniform])


def _live_ops(space, arch) -> int:
    return sum(op != 0 for op in space.effective(arch).ops)


def test_initial_design_starts_with_the_cells_that_run_the_fewest_ops(nb201_table):
    from hwnas.search.sampling import initial_design, sample_spread

    space = nb201_table.space
    minimal = space.minimal_archs()
    fewest = min(_live_ops(space, a) for a in nb201_table.archs)
    assert {a.key for a in minimal} == {space.effective(a).key for a in nb201_table.archs
                                        if _live_ops(space, a) == fewest}
    assert len(minimal) == 4 and not any(space.is_degenerate(a) for a in minimal)
    design = initial_design(space, np.random.default_rng(0), 20, {minimal[0].key},
                            admissible=nb201_table.__contains__)
    keys = [a.key for a in design]
    assert len(set(keys)) == len(keys) == 23 and all(a in nb201_table for a in design)
    assert keys[:3] == [a.key for a in minimal[1:]] and minimal[0].key not in keys
    spread = sample_spread(space, np.random.default_rng(0), 20, {minimal[0].key}, admissible=nb201_table.__contains__)
    assert keys[3:] == [a.key for a in spread]  # the spread is drawn as it would be without them
    plain = initial_design(space, np.random.default_rng(0), 20, {minimal[0].key}, minimal=False)
    assert not {a.key for a in plain} & {a.key for a in minimal[1:]}

def test_loop_finds_the_fast_end_where_each_op_costs_the_same(nb201_table):
    """A device where every live op costs about the same whatever it computes (a GPU at batch 1): its fastest
    networks are the single-op cells, which FLOPs cannot tell from larger cells of skips and pooling."""
    space = nb201_table.space
    acc = nb201_table.objective("cifar10_test_acc", direction="max", name="top1", missing="worst")
    lat = FunctionObjective("latency_ms", lambda archs: np.array(
        [1.0 + _live_ops(space, a) + 0.01 * sum(space.effective(a).ops) for a in archs]), expensive=True)
    ev = accelerated_search(Evaluator(space, [acc, lat], budget=40, admissible=nb201_table.__contains__), seed=3)
    fastest = min((lat.evaluate([a])[0], a.key) for a in nb201_table.archs)[0]
    assert min(r.values["latency_ms"] for r in ev.front()) == pytest.approx(fastest)
