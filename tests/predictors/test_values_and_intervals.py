"""Predictor values are checked: damaged tables are refused on load, predictions are never negative, NaN or
absurd; split-conformal intervals are stored at fit time and cover held-out measurements."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hwnas.errors import PredictorError
from hwnas.predictors import create_predictor, load_predictor
from hwnas.predictors.base import conformal_halfwidth


@pytest.fixture()
def saved_files(tmp_path, ofa, ofa_table, subnet_latency):
    rng = np.random.default_rng(0)
    archs = ofa.sample(rng, 30)
    y = subnet_latency(ofa, ofa_table, archs, rng)
    out = {}
    for name in ("lut", "lut-calibrated", "gbm"):
        predictor = create_predictor(name, space=ofa, table=ofa_table, **({"n_estimators": 20} if name == "gbm"
                                                                             else {}))
        predictor.fit(archs, y) if name != "lut" else predictor.fit()
        out[name] = predictor.save(tmp_path / f"{name}.json")
    return out


@pytest.mark.parametrize("name", ["lut", "lut-calibrated", "gbm"])
@pytest.mark.parametrize("bad", [-50.0, float("nan"), 1e308])
def test_damaged_table_entry_is_refused_on_load_naming_file_and_entry(saved_files, name, bad):
    path = saved_files[name]
    data = json.loads(path.read_text())
    key = sorted(data["state"]["table_ms"])[3]
    data["state"]["table_ms"][key] = bad
    path.write_text(json.dumps(data))  # json writes NaN as the (invalid) token NaN, which Python reads back
    with pytest.raises(PredictorError) as err:
        load_predictor(path)
    message = str(err.value)
    assert str(path) in message and key in message and "\n" not in message


@pytest.mark.parametrize("field,bad", [("scale", float("nan")), ("scale", -3.0), ("offset_ms", 1e308)])
def test_damaged_calibration_numbers_are_refused_on_load(saved_files, field, bad):
    path = saved_files["lut-calibrated"]
    data = json.loads(path.read_text())
    data["state"][field] = bad
    path.write_text(json.dumps(data))
    with pytest.raises(PredictorError, match=field):
        load_predictor(path)


def test_damaged_linear_coefficients_are_refused_on_load(saved_files):
    path = saved_files["gbm"]
    data = json.loads(path.read_text())
    data["state"]["linear"]["coef"][0] = float("inf")
    path.write_text(json.dumps(data))
    with pytest.raises(PredictorError, match="coef"):
        load_predictor(path)


def test_prediction_below_zero_is_floored_at_a_positive_latency(ofa, ofa_table):
    archs = ofa.sample(np.random.default_rng(1), 40)
    lut = create_predictor("lut", space=ofa, table=ofa_table).fit()
    base = lut.predict(archs)
    # measurements that make the calibration's offset very negative: small archs extrapolate below zero
    y = np.maximum(3 * base - 0.9 * base.max() * 2, 0.01)
    predictor = create_predictor("lut-calibrated", space=ofa, table=ofa_table).fit(archs, y)
    pred = predictor.predict(ofa.sample(np.random.default_rng(2), 200))
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)


def test_absurd_prediction_is_an_error_not_a_number(saved_files, ofa):
    path = saved_files["lut"]
    data = json.loads(path.read_text())
    for key in data["state"]["table_ms"]:
        data["state"]["table_ms"][key] = 9e5  # each entry allowed; the sum of ~60 operators is not a latency
    path.write_text(json.dumps(data))
    predictor = load_predictor(path)
    with pytest.raises(PredictorError, match="damaged or the arch is far outside"):
        predictor.predict(ofa.sample(np.random.default_rng(3), 2))


@pytest.mark.parametrize("name", ["lut-calibrated", "gbm"])
def test_intervals_are_stored_at_fit_time_and_cover_held_out_measurements(tmp_path, ofa, ofa_table, subnet_latency,
                                                                         name):
    rng = np.random.default_rng(4)
    train, test = ofa.sample(rng, 80), ofa.sample(rng, 300)
    y_train = subnet_latency(ofa, ofa_table, train, rng, noise=0.05)
    y_test = subnet_latency(ofa, ofa_table, test, rng, noise=0.05)
    predictor = create_predictor(name, space=ofa, table=ofa_table, n_estimators=50) if name == "gbm" else \
        create_predictor(name, space=ofa, table=ofa_table)
    predictor.fit(train, y_train)
    lo, hi = predictor.predict_interval(test, coverage=0.95)
    assert np.all(lo < predictor.predict(test)) and np.all(predictor.predict(test) < hi)
    covered = np.mean((y_test >= lo) & (y_test <= hi))
    assert covered >= 0.90, covered
    loaded = load_predictor(predictor.save(tmp_path / "p.json"))
    lo2, hi2 = loaded.predict_interval(test, coverage=0.95)
    np.testing.assert_allclose(lo2, lo, rtol=1e-5)
    # a narrower coverage gives a narrower interval
    lo80, hi80 = loaded.predict_interval(test, coverage=0.8)
    assert np.all(hi80 <= hi2) and np.all(lo80 >= lo2)


def test_too_few_samples_give_an_unbounded_interval_not_a_false_one(ofa, ofa_table, subnet_latency):
    rng = np.random.default_rng(5)
    archs = ofa.sample(rng, 8)
    predictor = create_predictor("lut-calibrated", space=ofa, table=ofa_table).fit(
        archs, subnet_latency(ofa, ofa_table, archs, rng))
    lo, hi = predictor.predict_interval(archs, coverage=0.95)
    assert np.all(np.isinf(hi)) and np.all(lo >= 0)
    assert math.isfinite(predictor.interval_halfwidth(0.5))


def test_conformalize_recalibrates_from_held_out_measurements(ofa, ofa_table, subnet_latency):
    rng = np.random.default_rng(6)
    lut = create_predictor("lut", space=ofa, table=ofa_table).fit()
    with pytest.raises(PredictorError, match="no calibration for intervals"):
        lut.predict_interval(ofa.sample(rng, 2))
    held = ofa.sample(rng, 50)
    lut.conformalize(held, subnet_latency(ofa, ofa_table, held, rng))
    assert lut.conformal_["source"] == "held-out" and lut.conformal_["n"] == 50
    lo, hi = lut.predict_interval(held)
    assert np.all(np.isfinite(hi))


@pytest.mark.parametrize("n", [20, 40])
def test_interval_from_few_samples_covers_at_least_its_nominal_share_on_average(ofa, ofa_table, subnet_latency, n):
    """Known noise (log-t, 3 degrees of freedom: heavy-tailed, like batch-1 GPU latency): over many fits from n
    samples, the 95% interval calibrated on the fit's own cross-validation residuals covers >= 93% of new
    measurements on average. (From 20 cross-validation residuals it cannot: the interval is unbounded.)"""
    rng = np.random.default_rng(7)
    test = ofa.sample(rng, 200)

    def measure(archs):
        return subnet_latency(ofa, ofa_table, archs, rng, noise=0.0) * np.exp(0.04 * rng.standard_t(3, len(archs)))

    y_test = measure(test)
    covered, bounded = [], 0
    for _ in range(12):
        train = ofa.sample(rng, n)
        predictor = create_predictor("gbm", space=ofa, table=ofa_table, n_estimators=30, max_depth=2,
                                     seed=int(rng.integers(1000))).fit(train, measure(train))
        lo, hi = predictor.predict_interval(test, coverage=0.95)
        covered.append(np.mean((y_test >= lo) & (y_test <= hi)))
        bounded += bool(np.all(np.isfinite(hi)))
    assert np.mean(covered) >= 0.93, (n, np.mean(covered), covered)
    assert bounded == (12 if n >= 30 else 0)


def test_cross_validation_residuals_need_more_samples_than_held_out_ones_for_a_bound():
    scores = np.linspace(0.01, 0.2, 20)
    assert math.isfinite(conformal_halfwidth(scores, 0.95, "held-out"))
    assert math.isinf(conformal_halfwidth(scores, 0.95, "cross-validation"))
    many = np.linspace(0.01, 0.2, 1000)
    # with many samples the two agree to within a few order statistics
    assert conformal_halfwidth(many, 0.95, "held-out") <= conformal_halfwidth(many, 0.95, "cross-validation") \
        <= many[955]
