"""A new user's whole path from the CLI only, with stdout not a terminal (as under nohup or CI): init -> device
add -> profile --supernet -> fit (prints its error) -> optimize with a latency budget -> export of the run's
front.json -> bench of one exported file. Every step logs progress, prints a --json summary, and refuses one bad
input of its own in one line with exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.supernet import demo_checkpoint_path

pytestmark = pytest.mark.slow


def _hwnas(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas.cli.app", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env={**__import__("os").environ, "HWNAS_WORKSPACE": ""})


def _ok_json(args: list[str], cwd: Path) -> tuple[object, str]:
    result = _hwnas([*args, "--json"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), result.stderr


def _refused(args: list[str], cwd: Path, words: str) -> None:
    result = _hwnas(args, cwd)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_new_user_path_from_the_cli(tmp_path):
    ckpt = str(demo_checkpoint_path())
    (tmp_path / "not-a-folder").write_text("x")
    _refused(["init", "not-a-folder"], tmp_path, "not a folder")
    result = _hwnas(["init", "ws"], tmp_path)
    assert result.returncode == 0 and "local-cpu-ort" in result.stdout, result.stderr
    ws = tmp_path / "ws"
    assert (ws / "devices" / "local-cpu.toml").is_file() and (ws / "devices" / "local-cpu-ort.toml").is_file()

    _refused(["device", "add", "../evil", "--local"], ws, "bad device name")
    result = _hwnas(["device", "add", "mycpu", "--local", "--runtime", "onnxruntime"], ws)
    assert result.returncode == 0, result.stderr

    _refused(["profile", "mycpu", "--supernet", "missing.pt"], ws, "does not exist")
    profile, log = _ok_json(["profile", "mycpu", "--supernet", ckpt, "--no-operators", "--calibration", "10",
                             "--reference", "6", "--runs", "3", "--warmup", "1", "--rounds", "1", "--jobs", "1"], ws)
    assert profile["archs"] == 16 and Path(profile["profile"]).is_file()
    assert "archs: 16/16 (100%)" in log  # progress logged although stderr is not a terminal

    _refused(["fit", "mycpu", "--predictor", "gbm", "--statistic", "fastest"], ws, "statistic")
    result = _hwnas(["fit", "mycpu", "--predictor", "gbm"], ws)
    assert result.returncode == 0 and "held-out: 6 subnets, MAPE" in result.stdout, result.stdout + result.stderr
    fitted, _ = _ok_json(["fit", "mycpu", "--predictor", "gbm"], ws)
    assert fitted["held_out"]["n"] == 6 and fitted["trained_on"] == 10

    _refused(["optimize", "--device", "mycpu", "--supernet", ckpt, "--max-latency", "-5"], ws, "positive")
    done, log = _ok_json(["optimize", "--device", "mycpu", "--supernet", ckpt, "--max-latency", "50", "--evals", "4",
                          "--limit", "50", "--max-models", "2", "--format", "onnx"], ws)
    assert done["predictor_reused"] and done["evaluations"] == 4 and done["budget_ms"] == 50
    assert 1 <= len(done["deployed"]) <= 2 and all(r["within_budget"] is True for r in done["deployed"])
    assert "search: 4/4 (100%)" in log
    front = Path(done["run"]) / "front.json"
    # measured as the profile the reused predictor was fitted on (3 runs, 1 round), not with optimize's own 60 x 6
    deployed = json.loads(front.read_text())["deployed"]["mycpu"]
    assert deployed["settings"] == {"warmup": 1, "runs": 3, "min_seconds": 0.0, "rounds": 1, "fresh_session": False,
                                    "from": "profile"}
    assert deployed["session_check"]["settings_differ"] == {}

    _refused(["export", str(front), "--supernet", ckpt, "--format", "pdf", "--out", "models"], ws, "--format")
    exported, log = _ok_json(["export", str(front), "--supernet", ckpt, "--format", "onnx", "--out", "models"], ws)
    assert len(exported) == done["front_size"] and all(Path(m["path"]).is_file() for m in exported)
    assert "export: " in log

    (ws / "notes.txt").write_text("not a model")
    _refused(["bench", "notes.txt", "--device", "mycpu"], ws, ".onnx and .tflite")
    measured, log = _ok_json(["bench", exported[0]["path"], "--device", "mycpu", "--runs", "5", "--rounds", "1"], ws)
    assert measured[0]["status"] == "ok" and measured[0]["median_ms"] > 0 and measured[0]["runs"] >= 5
    assert "measure: 1/1 (100%)" in log
