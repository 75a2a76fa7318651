"""Predictors at resolutions a profile did not measure: operator latencies interpolated linearly in pixel count
between the nearest profiled resolutions (extrapolated with a warning outside them), and `hwnas predictor eval`
reporting the error on unprofiled resolutions apart. On the shipped real profile of this repo's local CPU device
(onnxruntime), whose operators and whole subnets were measured at 160-224 in steps of 16."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwnas import space as spaces
from hwnas.errors import PredictorError
from hwnas.predictors import create_predictor
from hwnas.predictors.features import ResolutionExtrapolationWarning
from hwnas.predictors.metrics import mape
from hwnas.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
REAL_PROFILE = ROOT / "profiles" / "local-cpu-ort" / "ofa-mbv3-onnxruntime-fp32.json"


@pytest.fixture(scope="module")
def real_profile() -> dict:
    return json.loads(REAL_PROFILE.read_text())


@pytest.fixture(scope="module")
def real_table(real_profile) -> dict[str, float]:
    return {key: value["median_ms"] for key, value in real_profile["operators"].items()}


def _pixel_interpolation(space, table, arch, r, lo, hi):
    """The documented rule, written out: each operator the table lacks at `r` takes the same operator's latency
    at `lo` and `hi`, linear in its input pixel count; operators the table has keep their value."""
    at = [space.operators(space.at_resolution(arch, x)) for x in (r, lo, hi)]
    total = 0.0
    for op, op_lo, op_hi in zip(*at, strict=True):
        if op.key in table:
            total += table[op.key]
            continue
        px, px_lo, px_hi = (o.input[0] * o.input[1] for o in (op, op_lo, op_hi))
        total += table[op_lo.key] + (table[op_hi.key] - table[op_lo.key]) * (px - px_lo) / (px_hi - px_lo)
    return total


def test_lut_at_200_lies_between_192_and_208_and_is_the_pixel_count_interpolation(real_table):
    space = spaces.create("ofa-mbv3", profiled_resolutions=[192, 208])
    lut = create_predictor("lut", space=space, table=real_table).fit()
    for arch in space.sample(np.random.default_rng(0), 10):
        at = {r: space.at_resolution(arch, r) for r in (192, 200, 208)}
        low, mid, high = lut.predict([at[192], at[200], at[208]])
        assert low < mid < high
        assert mid == pytest.approx(_pixel_interpolation(space, real_table, arch, 200, 192, 208), rel=1e-12)
        # at a profiled resolution the table is read as it is
        assert low == pytest.approx(sum(real_table[op.key] for op in space.operators(at[192])), rel=1e-12)


def test_interpolating_from_160_192_224_predicts_the_measured_tables_at_176_and_208(real_profile, real_table):
    """The real profile measured 176 and 208 too: a table interpolated without them is within a few % of it."""
    sparse = spaces.create("ofa-mbv3", profiled_resolutions=[160, 192, 224])
    full = spaces.create("ofa-mbv3")
    kept = {op.key for op in sparse.all_operators()}  # what a profile at 160, 192, 224 measures
    assert len(kept) < len(real_table)
    interp = create_predictor("lut", space=sparse, table={k: v for k, v in real_table.items() if k in kept}).fit()
    measured = create_predictor("lut", space=full, table=real_table).fit()
    archs = [sparse.validate(row["arch"]) for role in ("reference", "calibration", "extra")
             for row in real_profile[role] if row["arch"]["r"] in (176, 208)]
    assert len(archs) > 40
    assert mape(measured.predict(archs), interp.predict(archs)) < 5.0


def test_outside_the_profiled_range_it_extrapolates_with_one_warning(real_table):
    space = spaces.create("ofa-mbv3")  # profiled 160-224: 128-156 lie below
    lut = create_predictor("lut", space=space, table=real_table).fit()
    arch = space.sample(np.random.default_rng(3), 1)[0]
    with pytest.warns(ResolutionExtrapolationWarning, match="below the profiled range"):
        small = lut.predict([space.at_resolution(arch, 128)])[0]
    assert 0 < small < lut.predict([space.at_resolution(arch, 160)])[0]
    assert small == pytest.approx(_pixel_interpolation(space, real_table, arch, 128, 160, 176), rel=1e-9)


def test_a_resolution_with_nothing_profiled_on_one_side_and_one_on_the_other_is_refused_in_one_line(real_table):
    space = spaces.create("ofa-mbv3", profiled_resolutions=[224])
    lut = create_predictor("lut", space=space, table=real_table).fit()
    arch = space.at_resolution(space.sample(np.random.default_rng(4), 1)[0], 204)
    with pytest.raises(PredictorError) as info:
        lut.predict([arch])
    assert "204" in str(info.value) and "--resolutions" in str(info.value) and "\n" not in str(info.value)


def test_a_missing_operator_at_a_profiled_resolution_is_not_papered_over(real_table):
    space = spaces.create("ofa-mbv3")
    arch = space.at_resolution(space.sample(np.random.default_rng(5), 1)[0], 192)
    dropped = space.operators(arch)[0].key
    lut = create_predictor("lut", space=space, table={k: v for k, v in real_table.items() if k != dropped}).fit()
    with pytest.raises(PredictorError, match="re-run `hwnas profile"):
        lut.predict([arch])


@pytest.mark.parametrize("name", ["lut-calibrated", "gbm"])
def test_fitted_predictors_learn_and_predict_across_resolutions(real_profile, real_table, name):
    space = spaces.create("ofa-mbv3", profiled_resolutions=[160, 192, 224])
    rows = [row for role in ("reference", "calibration", "extra") for row in real_profile[role]]
    train = [r for i, r in enumerate(rows) if i % 2 == 0]
    test = [r for i, r in enumerate(rows) if i % 2 == 1 and r["arch"]["r"] in (176, 208)]
    predictor = create_predictor(name, space=space, table=real_table)
    predictor.fit([r["arch"] for r in train], np.array([r["median_ms"] for r in train]))
    assert mape([r["median_ms"] for r in test], predictor.predict([r["arch"] for r in test])) < 25


def test_predictor_eval_reports_profiled_and_unprofiled_resolutions_apart(tmp_path, real_profile):
    """A workspace whose profile measured operators at 160, 192, 224 only and whole subnets at all five:
    `hwnas predictor eval` adds a row for each group under the predictor."""
    ws = Workspace.init(tmp_path / "ws")
    (ws.devices_dir / "cpu.toml").write_text('transport = "local"\nruntime = "onnxruntime"\nthreads = 1\n')
    sparse = spaces.create("ofa-mbv3", profiled_resolutions=[160, 192, 224])
    profile = {**real_profile, "device": "cpu", "space": sparse.config(), "resolutions": [160, 192, 224]}
    kept = {op.key for op in sparse.all_operators()}
    profile["operators"] = {k: v for k, v in real_profile["operators"].items() if k in kept}
    folder = ws.profile_dir("cpu")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ofa-mbv3-onnxruntime-fp32.json").write_text(json.dumps(profile))
    env = {**os.environ, "HWNAS_WORKSPACE": str(ws.root), "COLUMNS": "160"}

    def hwnas(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hwnas.cli.app", *args], cwd=ws.root, env=env,
                              capture_output=True, text=True, timeout=600)

    fitted = hwnas("fit", "cpu", "--predictor", "lut-calibrated")
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    result = hwnas("predictor", "eval", "cpu", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    split = json.loads(result.stdout)["by_resolution"]["lut-calibrated (file)"]
    profiled, unprofiled = split["profiled resolutions"], split["unprofiled resolutions"]
    total = json.loads(result.stdout)["metrics"]["lut-calibrated (file)"]["n"]
    assert profiled["n"] + unprofiled["n"] == total and unprofiled["n"] > 10
    assert unprofiled["mape_pct"] < 25 and 0 <= unprofiled["within_10pct"] <= 1
    table = hwnas("predictor", "eval", "cpu")
    assert table.returncode == 0, table.stderr[-2000:]
    lines = table.stdout.splitlines()
    assert any("  profiled resolutions" in line for line in lines), table.stdout
    assert any("  unprofiled resolutions" in line for line in lines), table.stdout


def test_trees_fitted_on_the_old_resolution_one_hot_ask_for_a_refit():
    """gbm and few-shot files saved when ofa-mbv3 encoded the resolution as 5 one-hot columns (now 2 numbers)."""
    import xgboost as xgb

    from hwnas.predictors.gbm import booster_predict

    rng = np.random.default_rng(0)
    old = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(rng.random((20, 140)), label=rng.random(20)), 3)
    with pytest.raises(PredictorError, match="fitted on 140 features .* 137 .* refit"):
        booster_predict(old, rng.random((4, 137)))
    assert booster_predict(old, rng.random((4, 140))).shape == (4,)


def test_a_predictor_of_some_profiled_resolutions_loads_for_the_default_space(tmp_path):
    """Which resolutions a profile measured is a measurement choice, not another network: a predictor fitted on a
    `--resolutions 160,192,224` profile serves the default ofa-mbv3 space; one of other widths is refused."""
    import numpy as np
    import pytest as _pytest

    from hwnas import space as spaces
    from hwnas.errors import PredictorError
    from hwnas.predictors import create_predictor, load_predictor

    some = spaces.create("ofa-mbv3", profiled_resolutions=[160, 192, 224])
    archs = some.sample(np.random.default_rng(0), 30)
    path = tmp_path / "p.json"
    create_predictor("gbm", space=some, min_samples_trees=10, n_estimators=20).fit(
        archs, np.array([1.0 + 0.01 * some.flops(a) for a in archs])).save(path)
    loaded = load_predictor(path, space=spaces.create("ofa-mbv3"))
    assert loaded.predict(archs[:3]).shape == (3,)
    with _pytest.raises(PredictorError, match="other options"):
        load_predictor(path, space=spaces.create("ofa-mbv3", width_mult=1.2))
