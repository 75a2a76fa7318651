"""The accelerated loop's surrogates on NAS-Bench-201's measured data."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from hwnas.search.surrogate import BootstrapEnsemble, OperatorCounts, additive_surrogate, default_surrogate

COLUMNS = ("cifar10_test_acc", "cifar10_raspi4_latency_ms")


@pytest.mark.parametrize("column", COLUMNS)
def test_ensemble_ranks_held_out_archs_and_its_members_disagree(nb201_table, column):
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(nb201_table.archs))
    train = [nb201_table.archs[i] for i in idx[:100]]
    test = [nb201_table.archs[i] for i in idx[100:1100]]
    model = default_surrogate(nb201_table.space, column, seed=0).fit(train, nb201_table.lookup(train, column))
    members = model.predict_members(test)
    assert members.shape == (12, len(test)) and np.isfinite(members).all()
    assert spearmanr(model.predict(test), nb201_table.lookup(test, column))[0] > 0.6
    mean, std = model.predict(test, return_std=True)
    assert np.allclose(mean, members.mean(axis=0)) and (std > 0).mean() > 0.9  # bootstrap members differ


@pytest.mark.parametrize("power_transform", [True, False])
def test_predictions_stay_finite_and_in_units_for_a_heavy_tailed_target(nb201_table, power_transform):
    rng = np.random.default_rng(1)
    archs = [nb201_table.archs[i] for i in rng.choice(len(nb201_table.archs), 60, replace=False)]
    space = nb201_table.space  # a target the surrogate's features can express: edge 0 of the live cell
    y = np.exp(3 * space.encode([space.live(a) for a in archs], "ordinal")[:, 0] + rng.normal(0, 0.1, 60))  # 1..~e^12
    model = BootstrapEnsemble(nb201_table.space, n_members=6, trees=10, power_transform=power_transform)
    P = model.fit(archs, y).predict_members(nb201_table.archs[:3000])
    assert np.isfinite(P).all()
    if power_transform:  # back in the target's units: within the seen range widened by the transform's margin
        assert P.min() > 0 and P.max() < 10 * y.max()


def test_operator_counts_are_what_the_effective_form_runs(nb201_table):
    space = nb201_table.space
    rng = np.random.default_rng(3)
    archs = [nb201_table.archs[i] for i in rng.choice(len(nb201_table.archs), 40, replace=False)]
    counts = OperatorCounts(space).fit(archs)
    X = counts(archs)
    for a, row in zip(archs, X, strict=True):
        ops = space.operators(space.effective(a))
        assert row.sum() == len(ops)
        assert row[counts.columns_[ops[0].key]] == sum(op.key == ops[0].key for op in ops)
    only_skips = space.validate("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
                                "skip_connect~2|")
    narrow = OperatorCounts(space).fit([only_skips])
    # an operator never seen at fit has no column (the model cannot price it), it does not move the others
    assert narrow(archs).shape == (40, len(narrow.columns_))
    assert (narrow(archs).sum(axis=1) <= X.sum(axis=1)).all()


def test_additive_surrogate_learns_an_additive_latency_from_few_archs(nb201_table):
    """A latency that is a sum of per-operator costs (a lookup table) is learned from 20 measurements by the
    additive surrogate, far better than by the default one on the same 20."""
    space = nb201_table.space
    rng = np.random.default_rng(4)
    cost = {op.key: rng.uniform(0.01, 1.0) for op in space.all_operators()}

    def latency(archs):
        return np.array([sum(cost[op.key] for op in space.operators(space.effective(a))) for a in archs])

    idx = rng.permutation(len(nb201_table.archs))
    train = [nb201_table.archs[i] for i in idx[:20]]
    test = [nb201_table.archs[i] for i in idx[20:2020]]
    errors = {}
    for name, make in (("additive", additive_surrogate), ("default", default_surrogate)):
        model = make(space, "latency_ms[x]", 0).fit(train, latency(train))
        errors[name] = np.median(np.abs(model.predict(test) / latency(test) - 1))
    assert errors["additive"] < 0.01 < errors["default"]


def test_an_ensemble_needs_ridge_or_trees(nb201_table):
    with pytest.raises(ValueError, match="ridge regression or trees"):
        BootstrapEnsemble(nb201_table.space, ridge=False, trees=0)


@pytest.mark.parametrize("select", ["thompson", "hv"])
def test_the_loop_takes_any_regressor_as_its_surrogate(nb201_table, nb201_problem, select):
    from sklearn.gaussian_process import GaussianProcessRegressor

    from hwnas.search import Evaluator, accelerated_search
    from hwnas.search.surrogate import EncodedRegressor

    objectives, norm, _ = nb201_problem
    fitted = []

    def factory(space, objective, seed):
        fitted.append(objective)
        return EncodedRegressor(space, GaussianProcessRegressor(normalize_y=True, random_state=seed))

    ev = Evaluator(nb201_table.space, objectives, budget=35, normalization=norm, admissible=nb201_table.__contains__)
    accelerated_search(ev, seed=2, surrogate=factory, select=select, optimism=1.0)
    keys = [r.key for r in ev.records]
    assert ev.spent == 35 and len(set(keys)) == 35
    assert set(fitted) == {o.name for o in objectives} and len(fitted) >= 2 * 3  # refitted every round


def test_latency_surrogate_picks_by_out_of_bag_error_and_the_loop_uses_it(nb201_table):
    """On latency measured with 15% noise per arch the trees fit the noise: the out-of-bag choice takes the
    lookup table, whose predictions are closer to the noise-free latency. Top-1, which no sum over operators
    expresses, keeps the default model. The loop's surrogate for a latency is this choice."""
    from hwnas.search.surrogate import SelectedByOutOfBag, latency_surrogate, loop_surrogate

    space, column = nb201_table.space, "cifar10_raspi4_latency_ms"
    rng = np.random.default_rng(5)
    idx = rng.permutation(len(nb201_table.archs))
    train = [nb201_table.archs[i] for i in idx[:60]]
    test = [nb201_table.archs[i] for i in idx[60:2060]]
    clean = nb201_table.lookup(test, column)
    noisy = nb201_table.lookup(train, column) * rng.lognormal(0.0, 0.15, len(train))
    chosen = latency_surrogate(space, "latency_ms[x]", 0).fit(train, noisy)
    default = default_surrogate(space, "latency_ms[x]", 0).fit(train, noisy)
    assert chosen.chosen_ == 1 and chosen.model_ is chosen.candidates[1] and chosen.chosen_name == "lookup table"
    error = {name: np.median(np.abs(m.predict(test) / clean - 1)) for name, m in (("chosen", chosen),
                                                                                  ("default", default))}
    assert error["chosen"] < error["default"]
    mean, std = chosen.predict(test, return_std=True, noise=True)
    assert np.allclose(mean, chosen.predict_members(test).mean(axis=0)) and (std > 0).all()
    top1 = latency_surrogate(space, "latency_ms[x]", 0).fit(train, nb201_table.lookup(train, "cifar10_test_acc"))
    assert top1.chosen_ == 0
    assert isinstance(loop_surrogate(space, "latency_ms[pi]", 0), SelectedByOutOfBag)
    assert isinstance(loop_surrogate(space, "top1", 0), BootstrapEnsemble)
