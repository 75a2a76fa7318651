"""Slow rounds: a slowdown that covers rounds of a block stays out of every model's latency (`median_ms`, the fastest
round's median) and its level is divided out of the other statistics. The runner is fed rounds recorded by an
earlier run of the manifest (resume), so the samples are known exactly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwnas.devices.runner import ROUND_LEVEL_MIN_MODELS, round_levels
from hwnas.devices.runner_host import RUNNER_PATH

SAMPLES = [1.0, 1.02, 0.98, 1.01, 0.99]  # one round of one model, times its own latency


def recorded_batch(tmp_path, n_models: int, rounds: int, slow_round: int | tuple[int, ...], factor: float):
    """A manifest and a results file holding every round of `n_models` models (model i takes i + 1 ms), with
    round(s) `slow_round` measured `factor` times slower for all of them."""
    slow = (slow_round,) if isinstance(slow_round, int) else slow_round
    results = tmp_path / "results.jsonl"
    models = [{"index": i, "path": f"m{i}.onnx", "key": f"m{i}", "sha256": f"{i:064x}"} for i in range(n_models)]
    manifest = {"version": 1, "runtime": "onnxruntime", "runs": rounds * len(SAMPLES), "rounds": rounds,
                "results": str(results), "models": models}
    with results.open("w") as out:
        for rnd in range(rounds):
            for i in range(n_models):
                scale = (i + 1) * (factor if rnd in slow else 1.0)
                out.write(json.dumps({"type": "round", "index": i, "round": rnd, "run_total_ms": 1.0,
                                      "samples_ms": [scale * s for s in SAMPLES]}) + "\n")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def run_results(manifest) -> dict[int, dict]:
    proc = subprocess.run([sys.executable, str(RUNNER_PATH), "run", str(manifest)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {r["index"]: r for r in records if r["type"] == "result"}


def test_a_slow_round_is_divided_out_of_every_models_statistics(tmp_path):
    got = run_results(recorded_batch(tmp_path, n_models=10, rounds=4, slow_round=1, factor=1.5))
    assert sorted(got) == list(range(10))
    for i, result in got.items():
        assert result["round_levels"] == pytest.approx([1.0, 1.5, 1.0, 1.0])
        assert result["median_ms"] == pytest.approx(i + 1.0)  # as if no round had been slow
        assert result["min_ms"] == pytest.approx(0.98 * (i + 1))
        assert result["raw_median_ms"] > result["median_ms"]  # the slow round pulled the plain median up
        assert result["round_medians_ms"][1] == pytest.approx(1.5 * (i + 1))


def test_a_slowdown_over_most_rounds_stays_out_of_the_latency(tmp_path):
    """Two of three rounds slow for the whole block: the levels take the slow speed for the usual one, the
    fastest round does not."""
    got = run_results(recorded_batch(tmp_path, n_models=10, rounds=3, slow_round=(1, 2), factor=1.5))
    for i, result in got.items():
        assert result["median_ms"] == pytest.approx(i + 1.0)
        assert result["raw_median_ms"] == pytest.approx(1.5 * (i + 1) * 0.99)  # 5 fast and 10 slow samples
        assert result["round_levels"] == pytest.approx([1 / 1.5, 1.0, 1.0])


@pytest.mark.parametrize(("n_models", "rounds"), [(ROUND_LEVEL_MIN_MODELS - 1, 4), (10, 2)])
def test_too_few_models_or_rounds_leave_the_samples_as_measured(tmp_path, n_models, rounds):
    got = run_results(recorded_batch(tmp_path, n_models=n_models, rounds=rounds, slow_round=1, factor=1.5))
    for i, result in got.items():
        assert result["round_levels"] == [1.0] * rounds
        assert result["median_ms"] == pytest.approx(i + 1.0)  # the fastest round, levels or not
        assert result["raw_median_ms"] > result["median_ms"]
        assert result["mean_ms"] == pytest.approx((i + 1) * (rounds + 0.5) / rounds)  # as measured


def test_levels_are_a_median_so_one_model_slow_in_a_round_does_not_move_it():
    medians = [[1.0, 1.0, 1.0] for _ in range(9)] + [[1.0, 3.0, 1.0]]
    assert round_levels(medians) == [1.0, 1.0, 1.0]


def tool_round(latency_us: float) -> dict:
    """One benchmark_model round as `parse_benchmark_output` returns it: 10 timed runs around `latency_us`."""
    return {"inference_avg_us": latency_us, "warmup": {"count": 2.0, "avg": latency_us},
            "runs": {"count": 10.0, "avg": latency_us, "median": latency_us, "std": 0.01 * latency_us,
                     "min": 0.98 * latency_us, "max": 1.02 * latency_us}, "op_profile": None}


def test_benchmark_model_rounds_are_levelled_like_the_runners():
    from hwnas.devices import BenchmarkModel, BenchmarkSettings
    from hwnas.devices.adb import tool_measurement

    settings = BenchmarkSettings(runtime="tflite", runs=30, rounds=3)
    per_model = [[tool_round(1000.0 * (i + 1) * f) for f in (1.0, 1.5, 1.0)] for i in range(10)]
    levels = round_levels([[r["runs"]["median"] for r in rounds] for rounds in per_model])
    assert levels == pytest.approx([1.0, 1.5, 1.0])
    model = BenchmarkModel(RUNNER_PATH, key="m")  # any file: only its name and hash are read
    m = tool_measurement("phone", model, settings, per_model[1], {}, levels)
    assert m.median_ms == pytest.approx(2.0)
    assert m.mean_ms == pytest.approx(2.0) and m.p90_ms == pytest.approx(2.04) and m.min_ms == pytest.approx(1.96)
    assert m.round_medians_ms == pytest.approx([2.0, 3.0, 2.0]) and m.round_levels == pytest.approx(levels)
    assert m.run_total_ms == pytest.approx(12 * (2.0 + 3.0 + 2.0))  # time spent, as measured
    plain = tool_measurement("phone", model, settings, per_model[1], {})
    assert plain.mean_ms == pytest.approx(7.0 / 3) and plain.round_levels == [1.0] * 3
    assert plain.median_ms == pytest.approx(2.0)  # the fastest round, levels or not
    mostly_slow = tool_measurement("phone", model, settings, [tool_round(f * 2000.0) for f in (1.5, 1.0, 1.5)], {})
    assert mostly_slow.median_ms == pytest.approx(2.0) and mostly_slow.raw_median_ms == pytest.approx(3.0)
