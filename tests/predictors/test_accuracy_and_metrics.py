"""The accuracy predictor and the metrics module."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hwnas.errors import PredictorError
from hwnas.predictors import create_predictor, load_predictor
from hwnas.predictors.metrics import evaluate_predictions, kendall, mape, rmspe, spearman, within


def test_accuracy_predictor_ranks_nasbench201_accuracy(nb201, tmp_path):
    archs, _, acc = nb201
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(archs))
    train, test = idx[:300], idx[300:2300]
    predictor = create_predictor("accuracy", space="nasbench201").fit([archs[i] for i in train], acc[train])
    pred = predictor.predict([archs[i] for i in test])
    assert stats.spearmanr(acc[test], pred).statistic > 0.6
    loaded = load_predictor(predictor.save(tmp_path / "acc.json"))
    assert loaded.target == "top1"
    np.testing.assert_allclose(loaded.predict([archs[i] for i in test[:50]]), pred[:50], rtol=1e-6)


def test_percentage_errors_of_a_constant_overestimate():
    y = np.array([1.0, 2.0, 5.0, 10.0])
    assert mape(y, y * 1.1) == pytest.approx(10.0)
    assert rmspe(y, y * 1.1) == pytest.approx(10.0)
    assert within(y, y * 1.1, 10) == 1.0 and within(y, y * 1.1, 5) == 0.0


def test_within_counts_the_share_inside_the_band():
    y = np.ones(10)
    errors = np.array([0.0, 0.04, -0.04, 0.06, -0.09, 0.11, -0.2, 0.5, 0.0, 0.1])
    share = within(y, y * (1 + errors), 10)
    assert share == pytest.approx(np.mean(np.abs(errors) <= 0.1))


def test_rank_metrics_follow_order_not_scale():
    y = np.arange(1, 21, dtype=float)
    assert spearman(y, np.exp(y)) == pytest.approx(1.0)
    assert kendall(y, -y) == pytest.approx(-1.0)
    m = evaluate_predictions(y, y[::-1])
    assert set(m) == {"n", "mape_pct", "rmspe_pct", "within_5pct", "within_10pct", "spearman", "kendall"}
    assert m["n"] == 20 and m["spearman"] == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", [([1.0, 2.0], [1.0]), ([], []), ([0.0, 1.0], [1.0, 1.0]), ([1.0], [np.nan])])
def test_metrics_reject_unusable_inputs(bad):
    with pytest.raises(PredictorError):
        evaluate_predictions(*bad)
