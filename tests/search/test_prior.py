"""Priors from a related task (`hwnas search --prior`) on NAS-Bench-201: CIFAR-100 top-1 as the prior for a
search of CIFAR-10 top-1 against measured Raspberry Pi 4 latency."""

from pathlib import Path

import numpy as np
import pytest

from hwnas.objective import Constraint, FunctionObjective
from hwnas.search import Evaluator, Normalization, hypervolume, nsga2_search, pareto_mask
from hwnas.search.prior import PriorModel, prior_front, prior_surrogate
from hwnas.search.sampling import sample_spread
from hwnas.search.surrogate import default_surrogate
from hwnas.search.tabular import Table

NB201 = Path(__file__).resolve().parents[3] / "shared" / "data" / "nasbench201"
ACC, RELATED, LAT = "cifar10_test_acc", "cifar100_test_acc", "cifar10_raspi4_latency_ms"


@pytest.fixture(scope="module")
def table() -> Table:
    if not (NB201 / "nb201_accuracy.csv").is_file():
        pytest.skip(f"NAS-Bench-201 tables not found at {NB201}")
    t = Table.from_csv([NB201 / "nb201_accuracy.csv", NB201 / "nb201_cifar10_latency_via_help.csv"],
                       key="arch_str", columns=[ACC, RELATED, LAT])
    return t.filter(lambda a: not t.space.is_degenerate(a))


@pytest.fixture(scope="module")
def problem(table):
    """Objectives (top-1 expensive, latency cheap and exact), the table's normalisation and best hypervolume."""
    acc = table.objective(ACC, direction="max", name="top1", missing="worst")
    lat = table.objective(LAT, name="latency_ms[raspi4]", missing="worst", expensive=False)
    (a_lo, a_hi), (l_lo, l_hi) = table.bounds(ACC), table.bounds(LAT)
    norm = Normalization((-a_hi, l_lo), (-a_lo, l_hi), (1.0, 1.0))
    F = np.stack([-table.data[ACC], table.data[LAT]], axis=1)
    return [acc, lat], norm, hypervolume(F[pareto_mask(F)], norm)


def fit_prior(table, seed, n=300):
    related = [table.archs[i] for i in np.random.default_rng(seed).choice(len(table), n, replace=False)]
    return PriorModel(table.space, seed=seed).fit(related, table.lookup(related, RELATED))


def true_hypervolume(table, archs, norm):
    F = np.stack([-table.lookup(archs, ACC), table.lookup(archs, LAT)], axis=1)
    return hypervolume(F[pareto_mask(F)], norm)


def test_a_prior_from_a_related_task_makes_the_top1_surrogate_more_accurate(table):
    """As a feature, the prior lowers the error of a top-1 surrogate that has seen only 30 archs (the related
    task's values are never its targets)."""
    errors = {"default": [], "prior": []}
    for seed in range(3):
        idx = np.random.default_rng(100 + seed).permutation(len(table))
        train = [table.archs[i] for i in idx[:30]]
        test = [table.archs[i] for i in idx[30:3030]]
        prior = fit_prior(table, seed)
        truth = table.lookup(test, ACC)
        for name, make in (("default", default_surrogate), ("prior", prior_surrogate(prior))):
            model = make(table.space, "top1", seed).fit(train, table.lookup(train, ACC))
            errors[name].append(np.sqrt(np.mean((model.predict(test) - truth) ** 2)))
        # the other objectives keep the loop's own surrogate, without the prior
        other = prior_surrogate(prior)(table.space, "latency_ms[x]", seed)
        assert all(c.features.extra is None for c in other.candidates)
        assert prior_surrogate(prior)(table.space, "top1", seed).features.extra is not None
    assert np.mean(errors["prior"]) < 0.9 * np.mean(errors["default"]), errors


def test_prior_front_starts_near_the_true_front_and_respects_exclusions(table, problem):
    objectives, norm, best = problem
    space = table.space
    for seed in range(3):
        prior = fit_prior(table, seed)
        picked = prior_front(space, prior, objectives, 20, np.random.default_rng(seed), admissible=table.__contains__)
        spread = sample_spread(space, np.random.default_rng(seed), 20, admissible=table.__contains__)
        assert len({space.effective(a).key for a in picked}) == 20 and all(a in table for a in picked)
        assert true_hypervolume(table, picked, norm) > max(0.95 * best, true_hypervolume(table, spread, norm))
        # never an arch, or a network, given in `exclude`
        again = prior_front(space, prior, objectives, 20, np.random.default_rng(seed), admissible=table.__contains__,
                            exclude={a.key for a in picked})
        assert not {space.effective(a).key for a in again} & {space.effective(a).key for a in picked}


def test_prior_front_puts_archs_that_break_a_cheap_budget_last(table, problem):
    objectives, _, _ = problem
    space = table.space
    budget = Constraint(objectives[1], upper=10.0)
    picked = prior_front(space, fit_prior(table, 0), objectives, 20, np.random.default_rng(0), [budget],
                         admissible=table.__contains__)
    assert len(picked) == 20 and (table.lookup(picked, LAT) <= 10.0).all()
    # a cap on a quantity that is only constrained, not an objective
    flops = FunctionObjective("flops_m", lambda archs: np.array([space.flops(a) for a in archs]))
    cap = float(np.quantile([space.flops(a) for a in table.archs], 0.3))
    picked = prior_front(space, fit_prior(table, 0), objectives, 20, np.random.default_rng(0),
                         [Constraint(flops, upper=cap)], admissible=table.__contains__)
    assert len(picked) == 20 and max(space.flops(a) for a in picked) <= cap


def test_with_an_expensive_latency_flops_spread_the_prior_front(table, problem):
    objectives, norm, _ = problem
    measured = table.objective(LAT, name="latency_ms[raspi4]", missing="worst")  # expensive
    prior = fit_prior(table, 1)
    picked = prior_front(table.space, prior, [objectives[0], measured], 20, np.random.default_rng(1),
                         admissible=table.__contains__)
    flops = np.array([table.space.flops(a) for a in picked])
    everything = np.array([table.space.flops(a) for a in table.archs])
    # from small networks to large ones, not only the most accurate (which are all large)
    assert flops.min() <= np.quantile(everything, 0.1) and flops.max() >= np.quantile(everything, 0.9)


@pytest.mark.parametrize("seed", [0, 1])
def test_nsga2_with_a_prior_starts_from_its_front(table, problem, seed):
    objectives, norm, best = problem
    runs = {}
    for name, prior in (("plain", None), ("prior", fit_prior(table, seed))):
        ev = Evaluator(table.space, objectives, budget=20, normalization=norm, admissible=table.__contains__)
        nsga2_search(ev, pop_size=20, seed=seed, prior=prior)
        assert ev.spent == 20
        runs[name] = ev.hypervolume() / best
    assert runs["prior"] > max(0.95, runs["plain"]), runs
