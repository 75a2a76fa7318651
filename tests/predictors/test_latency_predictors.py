"""Latency predictors: the table sum, calibration on whole subnets, boosting, few-shot transfer, JSON round trips."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from hwnas.errors import PredictorError
from hwnas.predictors import create_predictor, list_predictors, load_predictor
from hwnas.predictors.metrics import evaluate_predictions

LATENCY = ["lut", "lut-calibrated", "gbm"]


def test_registry_lists_every_predictor():
    assert {"lut", "lut-calibrated", "gbm", "few-shot", "accuracy"} <= set(list_predictors())


def test_unknown_predictor_name_is_a_clear_error():
    with pytest.raises(PredictorError, match="unknown predictor 'nope'.*lut"):
        create_predictor("nope", space="ofa-mbv3")


def test_init_only_stores_arguments_and_clone_keeps_them(ofa):
    predictor = create_predictor("gbm", space="ofa-mbv3", table="/does/not/exist.json", n_estimators=7)
    assert predictor.get_params()["table"] == "/does/not/exist.json"  # nothing read in __init__
    copy = clone(predictor)
    assert copy.get_params()["n_estimators"] == 7 and not hasattr(copy, "booster_")
    with pytest.raises(PredictorError, match="does not exist"):
        predictor.fit(ofa.sample(np.random.default_rng(0), 1), [1.0])


def test_lut_is_the_sum_of_operator_latencies(ofa, ofa_table):
    archs = ofa.profiled_space().sample(np.random.default_rng(1), 25)
    predictor = create_predictor("lut", space=ofa, table=ofa_table).fit()
    expected = [sum(ofa_table[op.key] for op in ofa.operators(a)) for a in archs]
    np.testing.assert_allclose(predictor.predict(archs), expected, rtol=1e-12)
    # per-stage components add up to the prediction
    np.testing.assert_allclose(predictor.components(archs).sum(axis=1), expected, rtol=1e-12)


def test_predict_accepts_archs_dicts_keys_and_ordinal_arrays(ofa, ofa_table):
    archs = ofa.sample(np.random.default_rng(2), 6)
    predictor = create_predictor("lut", space="ofa-mbv3", table=ofa_table).fit()
    base = predictor.predict(archs)
    np.testing.assert_allclose(predictor.predict([a.to_dict() for a in archs]), base)
    np.testing.assert_allclose(predictor.predict([a.key for a in archs]), base)
    np.testing.assert_allclose(predictor.predict(ofa.encode(archs, "ordinal")), base)
    assert predictor.predict(archs[0]).shape == (1,)


def test_lut_reads_ofa_yaml_tables(tmp_path, ofa):
    arch = ofa.sample(np.random.default_rng(3), 1)[0]
    rng = np.random.default_rng(0)
    entries = {op.key: {"count": 10, "mean": float(rng.uniform(0.1, 2)), "std": 0.01} for op in ofa.operators(arch)}
    lines = [f"{key}:\n  count: {v['count']}\n  mean: {v['mean']!r}\n  std: {v['std']}" for key, v in entries.items()]
    path = tmp_path / f"{arch.r}_lookup_table.yaml"
    path.write_text("\n".join(lines) + "\n")
    predictor = create_predictor("lut", space=ofa, table=str(path)).fit()
    expected = sum(entries[op.key]["mean"] for op in ofa.operators(arch))
    assert predictor.predict([arch])[0] == pytest.approx(expected, rel=1e-12)


def test_yaml_is_read_safely(tmp_path, ofa):
    path = tmp_path / "evil.yaml"
    path.write_text("key: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(PredictorError, match="not valid YAML"):
        create_predictor("lut", space=ofa, table=str(path)).fit()


def test_missing_operator_names_the_operator(ofa, ofa_table):
    arch = ofa.profiled_space().sample(np.random.default_rng(4), 1)[0]
    dropped = ofa.operators(arch)[3].key
    table = {k: v for k, v in ofa_table.items() if k != dropped}
    predictor = create_predictor("lut", space=ofa, table=table).fit()
    with pytest.raises(PredictorError, match=dropped.split("-")[0]):
        predictor.predict([arch])


def test_calibration_absorbs_invoke_overhead_and_fusion(ofa, ofa_table, subnet_latency):
    rng = np.random.default_rng(5)
    train, test = ofa.sample(rng, 40), ofa.sample(rng, 60)
    y_train, y_test = subnet_latency(ofa, ofa_table, train, rng), subnet_latency(ofa, ofa_table, test, rng)
    plain = create_predictor("lut", space=ofa, table=ofa_table).fit()
    calibrated = create_predictor("lut-calibrated", space=ofa, table=ofa_table).fit(train, y_train)
    plain_m = evaluate_predictions(y_test, plain.predict(test))
    cal_m = evaluate_predictions(y_test, calibrated.predict(test))
    assert cal_m["mape_pct"] < plain_m["mape_pct"] / 3
    assert cal_m["within_10pct"] >= 0.95


def test_calibration_from_a_single_subnet_is_a_rescaled_table(ofa, ofa_table):
    archs = ofa.sample(np.random.default_rng(6), 5)
    lut = create_predictor("lut", space=ofa, table=ofa_table).fit()
    base = lut.predict(archs)
    calibrated = create_predictor("lut-calibrated", space=ofa, table=ofa_table).fit(archs[:1], [2 * base[0]])
    np.testing.assert_allclose(calibrated.predict(archs), 2 * base, rtol=1e-9)


@pytest.mark.parametrize("name", LATENCY)
def test_save_load_round_trip_predicts_the_same(tmp_path, ofa, ofa_table, name, subnet_latency):
    rng = np.random.default_rng(7)
    train = ofa.sample(rng, 30)
    predictor = create_predictor(name, space=ofa, table=ofa_table)
    predictor.fit(train, subnet_latency(ofa, ofa_table, train, rng))
    path = predictor.save(tmp_path / "p.json", meta={"device": "test"})
    loaded = load_predictor(path)
    test = ofa.sample(rng, 20)
    assert type(loaded) is type(predictor) and loaded.meta_["device"] == "test"
    np.testing.assert_allclose(loaded.predict(test), predictor.predict(test), rtol=1e-6)
    assert "pickle" not in path.read_text() and path.read_text().lstrip().startswith("{")


def test_gbm_saves_the_booster_as_xgboost_json(tmp_path, ofa, ofa_table, subnet_latency):
    import json

    rng = np.random.default_rng(8)
    train = ofa.sample(rng, 60)
    # an interaction no linear model of the table holds: large inputs with deep first stages run 1.6x slower
    slow = np.array([1.6 if a.r >= 192 and a.d[0] >= 3 else 1.0 for a in train])
    predictor = create_predictor("gbm", space=ofa, table=ofa_table, n_estimators=60).fit(
        train, slow * subnet_latency(ofa, ofa_table, train, rng))
    assert predictor.capacity_["rounds"] > 0
    data = json.loads(predictor.save(tmp_path / "g.json").read_text())
    booster = data["state"]["xgboost_json"]
    assert "learner" in booster and booster["learner"]["gradient_booster"]["model"]["trees"]


def test_gbm_without_a_table_ranks_nasbench201_from_few_samples(nb201):
    archs, latency, _ = nb201
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(archs))
    train, test = idx[:50], idx[50:3050]
    for device in ("pixel3", "raspi4"):
        y = latency[device]
        predictor = create_predictor("gbm", space="nasbench201").fit([archs[i] for i in train], y[train])
        m = evaluate_predictions(y[test], predictor.predict([archs[i] for i in test]))
        assert m["spearman"] > 0.85, (device, m)


def test_few_shot_transfers_pixel3_to_raspi4_from_20_subnets(nb201):
    archs, latency, _ = nb201
    rng = np.random.default_rng(1)
    idx = rng.permutation(len(archs))
    source, target, test = idx[:300], idx[300:320], idx[320:3320]
    base = create_predictor("gbm", space="nasbench201").fit([archs[i] for i in source], latency["pixel3"][source])
    adapted = create_predictor("few-shot", space="nasbench201", base=base).fit(
        [archs[i] for i in target], latency["raspi4"][target])
    y = latency["raspi4"][test]
    test_archs = [archs[i] for i in test]
    before = evaluate_predictions(y, base.predict(test_archs))
    after = evaluate_predictions(y, adapted.predict(test_archs))
    assert after["mape_pct"] < before["mape_pct"] / 2
    assert after["spearman"] > 0.85


def test_few_shot_round_trip_embeds_its_base(tmp_path, ofa, ofa_table):
    rng = np.random.default_rng(9)
    lut = create_predictor("lut", space=ofa, table=ofa_table).fit()
    base_path = lut.save(tmp_path / "base.json")
    archs = ofa.sample(rng, 8)
    adapted = create_predictor("few-shot", space=ofa, base=str(base_path)).fit(archs, 3 * lut.predict(archs))
    path = adapted.save(tmp_path / "few.json")
    base_path.unlink()  # the file is self-contained
    np.testing.assert_allclose(load_predictor(path).predict(archs), 3 * lut.predict(archs), rtol=1e-6)
