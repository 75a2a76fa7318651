"""A real profile of this machine, then `hwnas fit`, `hwnas predict` and `hwnas predictor eval` on it; bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.errors import ProfilingError
from hwnas.predictors import FORMAT_VERSION, load_predictor
from hwnas.profiling import calibration_archs, load_profile, plan_operators, reference_archs
from hwnas.profiling.reference import corner_archs
from hwnas.profiling.store import MeasurementStore
from hwnas.space import create

PROFILE = "nasbench201-onnxruntime-fp32.json"


def test_profile_holds_fingerprint_operators_and_subnets(profiled):
    data = load_profile(profiled.profile_dir("cpu") / PROFILE, space="nasbench201", runtime="onnxruntime")
    expected_ops = {op.key for op in create("nasbench201").all_operators()}
    assert data["complete"] and set(data["operators"]) == expected_ops
    for stats in data["operators"].values():
        assert stats["median_ms"] > 0 and stats["n"] == 3 and {"mean_ms", "std_ms"} <= set(stats)
    assert len(data["reference"]) == 3 and len(data["calibration"]) == 4
    assert [r["key"] for r in data["reference"]] == [a.key for a in reference_archs(create("nasbench201"), 3)]
    assert data["fingerprint"] and data["settings"]["runs"] == 3 and data["date"]


def test_reference_set_is_fixed_and_spread_over_flops():
    space = create("ofa-mbv3")
    first, second = reference_archs(space), reference_archs(create("ofa-mbv3"))
    assert [a.key for a in first] == [a.key for a in second] and len({a.key for a in first}) == 20
    flops = [space.flops(a) for a in first]
    assert flops == sorted(flops) and flops[0] < 0.5 * flops[-1]


def test_calibration_sets_hold_the_corners_a_random_sample_misses():
    space = create("ofa-mbv3")
    sample = space.sample(np.random.default_rng(1), 2000)
    calib = calibration_archs(space, 50)
    assert len({a.key for a in calib}) == 50 and calib == calibration_archs(space, 50)
    flops = [space.flops(a) for a in calib]
    # the space's ends, beyond anything 2,000 random subnets reach, and both ends at every profiled resolution
    assert min(flops) < min(space.flops(a) for a in sample) and max(flops) > max(space.flops(a) for a in sample)
    for r in space.profiled_resolutions:
        at_r = [space.flops(a) for a in sample if a.r == r]
        assert min(space.flops(a) for a in calib if a.r == r) < min(at_r)
    # small sets stay random (a handful of subnets cannot spare six for corners); the ends skip excluded keys
    small = calibration_archs(space, 4)
    assert min(space.flops(a) for a in small) > min(flops)
    ends = [a.key for a in corner_archs(space)]
    assert not set(ends) & {a.key for a in calibration_archs(space, 20, exclude=set(ends))}
    nb = create("nasbench201")
    assert not any(nb.is_degenerate(a) for a in calibration_archs(nb, 30))


def test_operators_can_be_restricted_to_those_of_some_archs():
    space = create("ofa-mbv3")
    archs = space.sample(np.random.default_rng(0), 2)
    ops = plan_operators(space, archs=archs)
    assert {op.key for op in ops} == {op.key for a in archs for op in space.operators(a)}
    assert len(ops) < len(space.all_operators())


def test_fit_predict_and_eval_from_the_cli(profiled, hwnas_cli, tmp_path):
    result = hwnas_cli(["fit", "cpu", "--space", "nasbench201", "--predictor", "lut-calibrated"], profiled.root)
    assert result.returncode == 0, result.stderr
    path = profiled.predictors_dir / "cpu-nasbench201-onnxruntime.json"
    predictor = load_predictor(path, space="nasbench201")
    assert predictor.name == "lut-calibrated" and len(predictor.meta_["trained_on"]) == 4
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    result = hwnas_cli(["predict", "cpu", json.dumps({"arch_str": arch}), "--json"], profiled.root)
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)[0]["latency_ms"]
    assert value == pytest.approx(float(predictor.predict([{"arch_str": arch}])[0]))
    plot = tmp_path / "scatter.png"
    result = hwnas_cli(["predictor", "eval", "cpu", "--plot", str(plot), "--json"], profiled.root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics = next(iter(report["metrics"].values()))
    assert metrics["n"] == 3  # the reference subnets: not trained on
    assert {"mape_pct", "rmspe_pct", "within_5pct", "within_10pct", "spearman", "kendall"} <= set(metrics)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_refuses_to_overwrite_a_newer_predictor_file(profiled, hwnas_cli):
    path = profiled.predictors_dir / "newer.json"
    path.write_text(json.dumps({"format": "hwnas-predictor", "format_version": FORMAT_VERSION + 1,
                                "predictor": "lut", "space": {"name": "nasbench201"}}))
    before = path.read_bytes()
    result = hwnas_cli(["fit", "cpu", "--predictor", "lut", "--out", str(path)], profiled.root)
    assert result.returncode == 1 and "newer" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_profile_of_another_space_or_runtime_is_refused(profiled, hwnas_cli):
    path = profiled.profile_dir("cpu") / PROFILE
    with pytest.raises(ProfilingError, match="space 'nasbench201', not 'ofa-mbv3'"):
        load_profile(path, space="ofa-mbv3")
    with pytest.raises(ProfilingError, match="runtime 'onnxruntime', not 'tflite'"):
        load_profile(path, runtime="tflite")
    result = hwnas_cli(["fit", "cpu", "--space", "ofa-mbv3"], profiled.root)
    assert result.returncode == 1 and "no profile" in result.stderr


@pytest.mark.parametrize("damage", ["truncate", "newer"])
def test_damaged_profile_is_a_clear_error_and_left_alone(profiled, hwnas_cli, tmp_path, damage):
    source = (profiled.profile_dir("cpu") / PROFILE).read_text()
    path = tmp_path / PROFILE
    if damage == "truncate":
        path.write_text(source[: len(source) // 2])
    else:
        data = json.loads(source)
        data["format_version"] = 99
        path.write_text(json.dumps(data))
    before = path.read_bytes()
    with pytest.raises(ProfilingError, match="corrupt or truncated" if damage == "truncate" else "newer"):
        load_profile(path)
    assert path.read_bytes() == before


def test_unknown_device_and_bad_resolutions_fail_in_one_line(workspace_root, hwnas_cli):
    result = hwnas_cli(["profile", "nope", "--space", "nasbench201"], workspace_root)
    assert result.returncode == 1 and "no device 'nope'" in result.stderr
    result = hwnas_cli(["profile", "cpu", "--resolutions", "161"], workspace_root)
    assert result.returncode == 1 and "161" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture()
def workspace_root(tmp_path, new_workspace):
    return new_workspace(tmp_path / "ws").root


def test_profile_with_a_fresh_session_per_round_records_it(hwnas_cli, new_workspace, tmp_path):
    ws = new_workspace(tmp_path / "ws")
    arch = create("nasbench201").sample(np.random.default_rng(3), 1)[0]
    archs = tmp_path / "archs.json"
    archs.write_text(json.dumps([arch.to_dict()]))
    result = hwnas_cli(["profile", "cpu", "--space", "nasbench201", "--no-operators", "--reference", "0",
                        "--calibration", "0", "--measure-archs", str(archs), "--runs", "4", "--warmup", "1",
                        "--rounds", "2", "--fresh-session", "--jobs", "1"], ws.root)
    assert result.returncode == 0, result.stderr
    data = load_profile(ws.profile_dir("cpu") / PROFILE)
    assert data["settings"]["fresh_session"] is True and data["settings"]["rounds"] == 2
    assert [r["key"] for r in data["extra"]] == [arch.key] and data["extra"][0]["n"] == 4
    stored = [r for r in MeasurementStore.for_device(ws, "cpu").records() if r.key == arch.key]
    assert [r.measurement.sessions for r in stored] == [2]  # loaded once per round
