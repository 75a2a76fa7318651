"""The on-device runner on its own: statistics, interleaved rounds, resume, crashes and hangs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.devices.runner_host import RUNNER_PATH


def run_runner(tmp_path: Path, paths, timeout=120, **options):
    manifest = {"runtime": "onnxruntime", "threads": 1, "warmup": 2, "runs": 6, "rounds": 3,
                "timeout_per_model_s": 30, "results": str(tmp_path / "results.jsonl"),
                "models": [{"index": i, "path": str(p), "key": f"k{i}", "sha256": f"s{i}"}
                           for i, p in enumerate(paths)]}
    manifest.update(options)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    proc = subprocess.run([sys.executable, str(RUNNER_PATH), "run", str(path)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    # liveness lines left out; "busy": waiting for the device lock while another runner on this machine (a test in
    # the other pytest worker) measures
    return [r for r in lines if r["type"] not in ("heartbeat", "progress", "busy")], tmp_path / "results.jsonl"


def file_records(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rounds_are_interleaved_and_statistics_cover_all_samples(tmp_path, onnx_models):
    out, results = run_runner(tmp_path, onnx_models[:3])
    assert [r["type"] for r in out] == ["result"] * 3 + ["end"]
    rounds = [(r["index"], r["round"]) for r in file_records(results) if r["type"] == "round"]
    assert rounds == [(i, rnd) for rnd in range(3) for i in range(3)]  # round-major: interleaved
    for r in out[:3]:
        samples = [x for rec in file_records(results) if rec["type"] == "round" and rec["index"] == r["index"]
                   for x in rec["samples_ms"]]
        assert r["n"] == len(samples) == 6
        assert r["min_ms"] == min(samples) and r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= max(samples)
        assert r["run_total_ms"] >= sum(samples)
        assert r["runtime_version"] and r["key"] == f"k{r['index']}"


def test_second_run_resumes_without_measuring_anything_twice(tmp_path, onnx_models):
    results = tmp_path / "results.jsonl"
    # a first run that stopped after model 0's round 0 and 1 and model 1's round 0 (as if the device rebooted)
    first, _ = run_runner(tmp_path, onnx_models[:1], rounds=1)  # produces real samples for model 0
    sample = [r for r in file_records(results) if r["type"] == "round"][0]
    results.write_text("".join(json.dumps({**sample, "index": i, "round": rnd}) + "\n"
                               for i, rnd in [(0, 0), (0, 1), (1, 0)]) + '{"type": "round", "ind')  # torn line
    out, _ = run_runner(tmp_path, onnx_models[:2])
    assert sorted(r["index"] for r in out if r["type"] == "result") == [0, 1]
    rounds = [(r["index"], r["round"]) for r in file_records_tolerant(results) if r.get("type") == "round"]
    assert sorted(rounds) == sorted({(i, rnd) for i in range(2) for rnd in range(3)})  # each exactly once
    assert len(rounds) == 6


def file_records_tolerant(path: Path):
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return records


def test_corrupt_model_fails_and_the_batch_goes_on(tmp_path, onnx_models, corrupt_models):
    out, _ = run_runner(tmp_path, [onnx_models[0], corrupt_models["onnx"], onnx_models[1]])
    by_index = {r["index"]: r for r in out if "index" in r}
    assert by_index[1]["type"] == "failed" and "onnx" in by_index[1]["error"].lower()
    assert by_index[0]["type"] == by_index[2]["type"] == "result"


def test_crashing_runtime_is_reported_and_a_fresh_worker_continues(tmp_path, tflite_models, corrupt_models):
    out, _ = run_runner(tmp_path, [corrupt_models["tflite"], tflite_models[0]], runtime="tflite")
    by_index = {r["index"]: r for r in out if "index" in r}
    assert by_index[0]["type"] == "failed" and by_index[0]["error"]
    assert by_index[1]["type"] == "result" and by_index[1]["n"] == 6


def test_hung_model_hits_its_timeout(tmp_path, onnx_models, hung_onnx_model):
    out, _ = run_runner(tmp_path, [hung_onnx_model, onnx_models[0]], timeout_per_model_s=1.5, rounds=1)
    by_index = {r["index"]: r for r in out if "index" in r}
    assert by_index[0]["type"] == "failed" and "timed out" in by_index[0]["error"]
    assert by_index[1]["type"] == "result"


def test_missing_runtime_fails_every_model_with_the_fix(tmp_path, onnx_models):
    out, _ = run_runner(tmp_path, onnx_models[:2], runtime="no-such-runtime")
    assert [r["type"] for r in out] == ["failed", "failed", "end"]
    assert "unknown runtime" in out[0]["error"]


def test_min_seconds_extends_the_timed_runs(tmp_path, onnx_models):
    out, _ = run_runner(tmp_path, onnx_models[:1], runs=3, rounds=1, min_seconds=0.2)
    assert out[0]["n"] > 3


def test_info_reports_the_fingerprint():
    proc = subprocess.run([sys.executable, str(RUNNER_PATH), "info"], capture_output=True, text=True, timeout=60)
    info = json.loads(proc.stdout)
    assert info["cores"] >= 1 and info["python"].count(".") == 2
    assert info["runtimes"]["onnxruntime"] and info["runtimes"]["tflite"].startswith("ai_edge_litert")


def test_runner_is_self_contained():
    text = RUNNER_PATH.read_text()
    assert "hwnas" not in "".join(line for line in text.splitlines() if line.startswith(("import", "from")))
    compile(text, str(RUNNER_PATH), "exec", flags=0, dont_inherit=True)


@pytest.mark.skipif(not Path("/dev/nvidia0").exists(), reason="GPU-only path: no NVIDIA GPU here")
def test_torch_cuda_is_timed_with_cuda_events(tmp_path):
    import torch

    module = torch.jit.script(torch.nn.Conv2d(8, 8, 3))
    path = tmp_path / "conv.pt"
    module.save(str(path))
    out, _ = run_runner(tmp_path, [path], runtime="torch", use_gpu=True,
                        models=[{"index": 0, "path": str(path), "key": "k", "sha256": "s",
                                 "input_shapes": [[1, 8, 16, 16]]}])
    assert out[0]["type"] == "result" and out[0]["median_ms"] > 0


def test_torch_runtime_runs_torchscript_on_cpu(tmp_path):
    import torch

    module = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3), torch.nn.ReLU()).eval())
    path = tmp_path / "conv.pt"
    module.save(str(path))
    out, _ = run_runner(tmp_path, [path], runtime="torch", rounds=1, runs=3,
                        models=[{"index": 0, "path": str(path), "key": "k", "sha256": "s",
                                 "input_shapes": [[1, 4, 8, 8]]}])
    assert out[0]["type"] == "result" and out[0]["n"] == 3 and out[0]["runtime_version"].startswith("2.")


def test_gpu_asked_without_a_gpu_provider_fails_clearly(tmp_path, onnx_models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has a CUDA provider; see test_onnxruntime_cuda_provider_is_used")
    out, _ = run_runner(tmp_path, onnx_models[:1], use_gpu=True, rounds=1)
    assert out[0]["type"] == "failed" and "no GPU provider" in out[0]["error"]


def test_onnxruntime_cuda_provider_is_used(tmp_path, onnx_models):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("GPU-only path: onnxruntime has no CUDA provider here")
    out, _ = run_runner(tmp_path, onnx_models[:1], use_gpu=True, rounds=1)
    assert out[0]["type"] == "result" and "CUDAExecutionProvider" in out[0]["providers"]


def _tar(path: Path, members: dict):
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_unpack_checks_names_and_content(tmp_path):
    import hashlib

    data = b"model bytes"
    good = hashlib.sha256(data).hexdigest() + ".onnx"
    dest = tmp_path / "models"
    for members, code in (({"../escape.onnx": data}, 2), ({good: b"other bytes"}, 3), ({good: data}, 0)):
        archive = tmp_path / "in.tar"
        _tar(archive, members)
        proc = subprocess.run([sys.executable, str(RUNNER_PATH), "unpack", str(archive), str(dest)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == code, proc.stderr
    assert [p.name for p in dest.iterdir()] == [good] and (dest / good).read_bytes() == data
    assert not (tmp_path / "escape.onnx").exists() and not archive.exists()


def test_pinned_cores_are_applied_and_recorded(tmp_path, onnx_models):
    out, _ = run_runner(tmp_path, onnx_models[:1], pin_cores=[0], rounds=1)
    assert out[0]["type"] == "result" and out[0]["state_before"]["cpu_affinity"] == [0]


def test_tflite_gpu_in_the_python_runner_is_refused_not_faked(tmp_path, tflite_models):
    out, _ = run_runner(tmp_path, tflite_models[:1], runtime="tflite", use_gpu=True, rounds=1)
    assert out[0]["type"] == "failed" and "benchmark_model --use_gpu" in out[0]["error"]
