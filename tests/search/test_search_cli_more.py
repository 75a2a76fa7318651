"""`hwnas search` on two devices with a budget on each, `hwnas deploy --int8`, and a real Ctrl-C (SIGINT to a
running `hwnas search` process) followed by a resume."""

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hwnas.predictors import load_predictor
from hwnas.supernet import load_checkpoint


def _argv(ws, ckpt, out, *extra, devices=("cpu",)):
    dev = [a for d in devices for a in ("--device", d)]
    return ["search", "--space", "ofa-mbv3", "--supernet", str(ckpt), "--data", "mnist5k", *dev, "--limit", "50",
            "--out", str(out), "-w", str(ws.root), *extra]


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_two_devices_each_get_a_latency_column_and_a_budget(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    space = load_checkpoint(ckpt).space
    predictors = {d: load_predictor(ws.predictor_path(d, space.name, "onnxruntime"), space=space)
                  for d in ("cpu", "cpu2")}
    sample = space.sample(np.random.default_rng(1), 200)
    # budgets at each device's median: about half the space misses each, so both constraints bind
    budget = {d: float(np.median(p.predict(sample))) for d, p in predictors.items()}
    out = tmp_path / "run"
    code, _, err = cli(_argv(ws, ckpt, out, "--evals", "6", "--algorithm", "random", "--latency-ms",
                             f"cpu={budget['cpu']:.6f}", "--latency-ms", f"cpu2={budget['cpu2']:.6f}",
                             "--budget-coverage", "0",  # budgets on the point prediction: this test is about binding
                             devices=("cpu", "cpu2")))
    assert code == 0, err

    doc = json.loads((out / "front.json").read_text())
    assert [o["name"] for o in doc["objectives"]] == ["top1", "latency_ms[cpu]", "latency_ms[cpu2]"]
    assert len(doc["constraints"]) == 2
    evaluated = _jsonl(out / "evaluated.jsonl")
    assert len(evaluated) == 6
    # the budgets bound: some evaluated archs miss one of them, and none of those is on the front
    misses = {r["key"] for r in evaluated for d in budget if r["values"][f"latency_ms[{d}]"] > budget[d] + 1e-6}
    assert misses and doc["front"]
    front_keys = {r["key"] for r in doc["front"]}
    assert not front_keys & misses
    rows = _csv(out / "front.csv")
    assert [r["key"] for r in rows] == [r["key"] for r in doc["front"]]
    for row in rows:
        arch = space.validate(json.loads(row["arch"]))
        for d, p in predictors.items():
            ms = float(row[f"latency_ms[{d}]"])
            assert ms <= budget[d] + 1e-6
            assert ms == pytest.approx(float(p.predict([arch])[0]), rel=1e-4)  # each column is its own device's
    # the two devices' predictors differ, and so do their columns
    assert any(abs(float(r["latency_ms[cpu]"]) - float(r["latency_ms[cpu2]"])) > 0.1 for r in rows)


def test_deploy_int8_writes_measures_and_validates_int8_next_to_fp32(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    out = tmp_path / "run"
    code, _, err = cli(_argv(ws, ckpt, out, "--evals", "3", "--algorithm", "random"))
    assert code == 0, err
    code, _, err = cli(["deploy", str(out), "--device", "cpu", "--format", "onnx", "--int8", "-w", str(ws.root)])
    assert code == 0, err

    rows = _csv(out / "front.csv")
    assert rows
    for row in rows:
        fp32, int8 = out / row["model_onnx-fp32"], out / row["model_onnx-int8"]
        assert fp32.is_file() and int8.is_file() and fp32.parent.parent == int8.parent.parent
        assert int8.stat().st_size < fp32.stat().st_size
        predicted = float(row["latency_ms[cpu]"])
        assert float(row["measured_latency_ms[cpu]"]) > 0 and float(row["measured_latency_ms[cpu,onnx,int8]"]) > 0
        side = json.loads(int8.with_name("model.json").read_text())
        assert side["precision"] == "int8" and side["arch_key"] == row["key"]
        entry = side["deployed"]["cpu/onnx-int8"]
        assert entry["status"] == "ok" and entry["runtime"] == "onnxruntime"
        assert entry["measured_ms"] == pytest.approx(float(row["measured_latency_ms[cpu,onnx,int8]"]), rel=1e-4)
        assert entry["predicted_ms"] == pytest.approx(predicted, rel=1e-4)
        # validated against PyTorch on calibration images, within the int8 tolerances it records
        v = side["validation"]
        assert v["passed"] and v["precision"] == "int8" and v["n_inputs"] > 0
        assert v["top1_agreement"] >= v["min_top1_agreement"] > 0
        assert 0 <= v["nrmse"] <= v["max_nrmse"]
        # fp32 and int8 hold the network the search scored: batch norms re-estimated on the search's images
        fp32_side = json.loads(fp32.with_name("model.json").read_text())
        settings = json.loads((out / "settings.json").read_text())
        for s in (side, fp32_side):
            assert f"re-estimated on {settings['bn_calibration_images']} images" in s["weights"]
        assert fp32_side["deployed"]["cpu/onnx-fp32"]["measured_ms"] > 0


def test_ctrl_c_keeps_whole_records_says_how_to_resume_and_resumes(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    out = tmp_path / "run"
    evals = 12
    argv = _argv(ws, ckpt, out, "--evals", str(evals), "--algorithm", "random")
    log = out / "evaluated.jsonl"
    env = {**os.environ, "COLUMNS": "80"}  # a narrow terminal must not break the resume command across lines
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.cli.app", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
                            # a suite started in the background (`cmd &` in a script) ignores SIGINT, and so would
                            # the search: give it Ctrl-C back, as a terminal would
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600  # only so that a hung search fails the test instead of hanging it
    try:
        while proc.poll() is None and not (log.is_file() and len(log.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline, "the search wrote fewer than 2 evaluations in 10 minutes"
            time.sleep(0.02)
        assert proc.poll() is None, f"the search ended before it could be interrupted: {proc.communicate()}"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    command = shlex.join(["hwnas", *argv])
    assert command in [line.strip() for line in err.splitlines()], err  # the command, whole, on its own line
    assert "resume" in err and str(log) in err.replace("\n", "")
    before = _jsonl(log)  # every line parses: nothing half-written
    assert 2 <= len(before) < evals
    assert (out / "front.json").is_file()  # results so far are written on the way out

    code, _, err = cli(argv)
    assert code == 0, err
    after = _jsonl(log)
    keys = [r["key"] for r in after]
    assert len(keys) == evals == len(set(keys))  # exactly the budget, no arch evaluated twice
    assert after[:len(before)] == before  # the interrupted run's records are kept, in order
    # one whole line, so the path in it can be copied
    assert f"resumed: {len(before)} evaluations taken from {log}" in err.splitlines(), err
    assert json.loads((out / "front.json").read_text())["evaluations"] == evals
