"""Capacity chosen by cross-validation (no switch at a fixed sample count) and few-shot transfer that picks among
several sources and can re-rank once the target's samples allow it."""

from __future__ import annotations

import numpy as np

from hwnas.predictors import create_predictor, load_predictor
from hwnas.predictors.metrics import spearman


def test_gbm_uses_trees_only_when_they_beat_the_base_out_of_fold(ofa, ofa_table, subnet_latency):
    rng = np.random.default_rng(0)
    archs = ofa.sample(rng, 80)
    linear = subnet_latency(ofa, ofa_table, archs, rng)
    few = create_predictor("gbm", space=ofa, table=ofa_table, n_estimators=60).fit(archs[:6], linear[:6])
    assert few.capacity_["rounds"] == 0  # too few samples for trees to win out of fold
    slow = np.array([1.6 if a.r >= 192 and a.d[0] >= 3 else 1.0 for a in archs])
    boosted = create_predictor("gbm", space=ofa, table=ofa_table, n_estimators=60).fit(archs, slow * linear)
    assert boosted.capacity_["rounds"] > 0 and boosted.capacity_["cv_mse"] < boosted.capacity_["base_cv_mse"]


def test_few_shot_picks_the_source_that_ranks_the_target(nb201):
    archs, latency, _ = nb201
    idx = np.random.default_rng(1).permutation(len(archs))
    src, train, test = idx[:400], idx[400:420], idx[1000:3000]
    pixel3 = create_predictor("gbm", space="nasbench201").fit([archs[i] for i in src], latency["pixel3"][src])
    rng = np.random.default_rng(2)
    fake = rng.uniform(1, 10, len(archs))
    useless = create_predictor("gbm", space="nasbench201").fit([archs[i] for i in src], fake[src])
    few = create_predictor("few-shot", space="nasbench201", base=[useless, pixel3]).fit(
        [archs[i] for i in train], latency["raspi4"][train])
    assert 1 in few.capacity_["columns"]
    rho = spearman(latency["raspi4"][test], few.predict([archs[i] for i in test]))
    assert rho > 0.93, rho


def test_few_shot_re_ranks_when_the_target_differs_from_its_source(ofa, ofa_table, subnet_latency):
    rng = np.random.default_rng(3)
    profiled = ofa.profiled_space()
    source_archs, train, test = profiled.sample(rng, 200), profiled.sample(rng, 300), profiled.sample(rng, 300)
    source = create_predictor("lut-calibrated", space=ofa, table=ofa_table).fit(
        source_archs, subnet_latency(ofa, ofa_table, source_archs, rng))

    def target(archs):  # the target device runs high resolutions 1.8x slower: a ranking the source lacks
        return subnet_latency(ofa, ofa_table, archs, rng) * np.array([1.8 if a.r >= 208 else 1.0 for a in archs])

    y_test = target(test)
    few = create_predictor("few-shot", space=ofa, base=source, n_estimators=100).fit(train, target(train))
    assert spearman(y_test, few.predict(test)) > spearman(y_test, source.predict(test)) + 0.005


def test_few_shot_with_several_sources_round_trips(tmp_path, ofa, ofa_table):
    rng = np.random.default_rng(4)
    lut = create_predictor("lut", space=ofa, table=ofa_table).fit()
    archs = ofa.sample(rng, 12)
    few = create_predictor("few-shot", space=ofa, base=[lut, lut]).fit(archs, 2 * lut.predict(archs))
    loaded = load_predictor(few.save(tmp_path / "few.json"))
    np.testing.assert_allclose(loaded.predict(archs), few.predict(archs), rtol=1e-6)
    assert len(loaded.sources_) == 2 and loaded.conformal_["n"] == 12
