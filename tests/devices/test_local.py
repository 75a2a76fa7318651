"""The `local` transport: the runner in a subprocess on this machine, with real ONNX and TFLite models."""

import math
from pathlib import Path

from helpers import kill, own_runner_pids, round_counts

from hwnas.devices import BenchmarkModel, BenchmarkSettings, open_device
from hwnas.workspace import Workspace

REPO = Workspace(Path(__file__).resolve().parents[2])


def test_shipped_local_devices_measure_real_models(onnx_models, tflite_models):
    for name, paths in (("local-cpu-ort", onnx_models[:2]), ("local-cpu", tflite_models)):
        with open_device(name, REPO) as device:
            settings = device.config.settings(warmup=2, runs=6, rounds=2)
            models = [BenchmarkModel(p, f"op-{p.stem}") for p in paths]
            got = list(device.benchmark(models, settings))
        assert [m.key for m in sorted(got, key=lambda m: m.key)] == sorted(m.key for m in models)
        for m in got:
            assert m.ok and m.n == 6 and m.threads == 1 and m.device == name
            assert 0 < m.min_ms <= m.median_ms <= m.p90_ms
            assert m.wall_ms is not None and m.run_total_ms is not None and m.wall_ms > 0
            assert m.model_sha256 == next(x.sha256 for x in models if x.key == m.key)


def test_info_fingerprints_this_machine():
    with open_device("local-cpu", REPO) as device:
        info = device.info()
    assert info["transport"] == "local" and info["cores"] >= 1
    assert info["runtimes"]["tflite"] and info["runtimes"]["onnxruntime"]


def test_killed_runner_is_resumed_and_nothing_is_measured_twice(tmp_path, onnx_models):
    ws = Workspace.init(tmp_path / "ws")
    from hwnas.devices import add_device

    add_device(ws, "here", transport="local", runtime="onnxruntime")
    models = [BenchmarkModel(p, p.stem) for p in onnx_models]
    killed = []
    with open_device("here", ws) as device:
        device.keep_runs = True

        def progress(m, done, total):
            if not killed:
                pids = own_runner_pids(device.last_run_dir, "run")
                kill(pids)
                killed.extend(pids)

        device.progress = progress
        got = list(device.benchmark(models, BenchmarkSettings(runtime="onnxruntime", warmup=1, runs=4, rounds=2)))
        counts = round_counts(Path(device.last_run_dir) / "results.jsonl")
    assert killed, "the runner was not found to kill"
    assert sorted(m.key for m in got) == sorted(m.key for m in models)  # each model yielded exactly once
    assert all(m.ok for m in got)
    assert set(counts.values()) == {1} and len(counts) == len(models) * 2


def test_failed_models_are_yielded_with_status_failed(tmp_path, onnx_models, corrupt_models):
    with open_device("local-cpu-ort", REPO) as device:
        models = [BenchmarkModel(corrupt_models["onnx"], "bad"), BenchmarkModel(onnx_models[0], "good")]
        got = {m.key: m for m in device.benchmark(models, BenchmarkSettings(runtime="onnxruntime", warmup=1,
                                                                               runs=2, rounds=1))}
    assert got["bad"].status == "failed" and got["bad"].error and math.isnan(got["bad"].median_ms)
    assert got["good"].ok


def test_batch_timeout_fails_what_is_left(tmp_path, onnx_models, hung_onnx_model):
    with open_device("local-cpu-ort", REPO) as device:
        models = [BenchmarkModel(onnx_models[0], "first"), BenchmarkModel(hung_onnx_model, "hang"),
                  BenchmarkModel(onnx_models[1], "last")]
        settings = BenchmarkSettings(runtime="onnxruntime", warmup=1, runs=2, rounds=1, timeout_per_model_s=60,
                                     timeout_per_batch_s=3)
        got = {m.key: m for m in device.benchmark(models, settings)}
    assert got["first"].ok
    assert got["hang"].status == got["last"].status == "failed"
    assert "batch timed out" in got["hang"].error
