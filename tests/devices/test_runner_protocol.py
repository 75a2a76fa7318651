"""The host <-> runner protocol as docs/devices.md ("Runner protocol") describes it: the manifest the host writes,
the records the runner writes, stop and follow; the documented tables are read from the page itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import round_counts

from hwnas.devices import BenchmarkModel, BenchmarkSettings, DeviceConfig
from hwnas.devices.local import LocalDevice
from hwnas.devices.runner import MANIFEST_FIELDS, MODEL_FIELDS
from hwnas.devices.runner_host import RUNNER_PATH, build_manifest, measurement_from_record
from hwnas.errors import DeviceError

DOC = Path(__file__).resolve().parents[2] / "docs" / "devices.md"


def doc_tables(heading: str) -> list[list[list[str]]]:
    """The markdown tables under `### heading` of docs/devices.md: tables, rows (header and rule left out), cells."""
    text = DOC.read_text(encoding="utf-8").split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    tables: list[list[list[str]]] = []
    in_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table:
            tables.append([])
            in_table = True
            continue  # header row
        if not line.startswith("| ---"):
            tables[-1].append([cell.strip() for cell in line.strip("|").split("|")])
    return tables


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def documented_records() -> dict[str, tuple[str, set[str], set[str]]]:
    """record type -> (where, required fields, optional fields)."""
    records = {}
    for row in doc_tables("Records")[0]:
        required, _, optional = row[2].partition("optional:")
        records[names(row[0])[0]] = (row[1], set(names(required)), set(names(optional)))
    return records


def run_runner(manifest_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUNNER_PATH), "run", str(manifest_path)], capture_output=True,
                          text=True, timeout=timeout)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_documented_manifest_fields_are_the_ones_the_runner_checks():
    manifest_rows, model_rows = doc_tables("Manifest")
    for rows, schema in ((manifest_rows, MANIFEST_FIELDS), (model_rows, MODEL_FIELDS)):
        documented = {names(row[0])[0]: "required" in row[1] for row in rows}
        assert documented == {name: required for name, (_, _, required) in schema.items()}


def test_manifest_built_by_the_host_is_run_by_the_runner_and_its_records_parse_back(tmp_path, onnx_models,
                                                                                     corrupt_models):
    models = [BenchmarkModel(onnx_models[0], key="conv-a"), BenchmarkModel(corrupt_models["onnx"], key="broken"),
              BenchmarkModel(onnx_models[1], key="conv-b")]
    settings = BenchmarkSettings(runtime="onnxruntime", warmup=1, runs=5, rounds=2, timeout_per_model_s=60)
    results = tmp_path / "results.jsonl"
    manifest = build_manifest(models, {m.sha256: str(m.path) for m in models}, settings, str(results))
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))

    proc = run_runner(manifest_path)
    assert proc.returncode == 0, proc.stderr
    stdout, in_file = lines(proc.stdout), lines(results.read_text())

    documented = documented_records()
    for where, records in (("stdout", stdout), ("file", in_file)):
        for record in records:
            place, required, optional = documented[record["type"]]
            assert place in (where, "both"), f"{record['type']} record found in {where}"
            assert required <= set(record) <= required | optional, record
    assert stdout[-1] == in_file[-1] == {"type": "end"}
    assert round_counts(results) == {(0, 0): 1, (0, 1): 1, (2, 0): 1, (2, 1): 1}

    measured = {m.key: m for m in (measurement_from_record(r, "here", settings) for r in stdout
                                   if r["type"] in ("result", "failed"))}
    assert set(measured) == {"conv-a", "broken", "conv-b"}
    assert measured["broken"].status == "failed" and measured["broken"].model_sha256 == models[1].sha256
    assert "onnx" in measured["broken"].error.lower()
    for model in (models[0], models[2]):
        m = measured[model.key]
        assert m.ok and m.model_sha256 == model.sha256 and m.runtime == "onnxruntime" and m.runtime_version
        assert m.runs == m.n == 6  # ceil(5 / 2) runs in each of 2 rounds
        assert 0 < m.min_ms <= m.median_ms <= m.p90_ms and m.run_total_ms >= m.n * m.min_ms


@pytest.mark.parametrize("fresh", [False, True])
def test_fresh_session_loads_each_model_again_every_round(tmp_path, onnx_models, fresh):
    models = [BenchmarkModel(p, key=f"m{i}") for i, p in enumerate(onnx_models[:2])]
    settings = BenchmarkSettings(runtime="onnxruntime", warmup=1, runs=6, rounds=3, fresh_session=fresh)
    results = tmp_path / "results.jsonl"
    manifest = build_manifest(models, {m.sha256: str(m.path) for m in models}, settings, str(results))
    assert manifest["fresh_session"] is fresh
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    proc = run_runner(tmp_path / "manifest.json")
    assert proc.returncode == 0, proc.stderr
    measured = [measurement_from_record(r, "here", settings) for r in lines(proc.stdout) if r["type"] == "result"]
    assert [m.sessions for m in measured] == [3 if fresh else 1] * 2 and all(m.n == 6 for m in measured)
    loaded = [r["loaded"] for r in lines(results.read_text()) if r["type"] == "round"]
    assert loaded == ([True] * 6 if fresh else [True, True] + [False] * 4)


def write_manifest(tmp_path: Path, **changes) -> Path:
    manifest = {"version": 1, "runtime": "onnxruntime", "runs": 3, "results": str(tmp_path / "results.jsonl"),
                "models": [{"index": 0, "path": "a.onnx", "key": "a", "sha256": "0" * 64},
                           {"index": 1, "path": "b.onnx", "key": "b", "sha256": "1" * 64}]}
    for name, value in changes.items():
        if value is None:
            manifest.pop(name)
        else:
            manifest[name] = value
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"rnus": 5}, "the manifest has unknown field(s) rnus (known: block_size, "),
    ({"runs": "50"}, "'runs' must be an integer, got '50'"),
    ({"use_gpu": "yes"}, "'use_gpu' must be true, false or null"),
    ({"threads": True}, "'threads' must be an integer, got True"),
    ({"version": 2}, "'version' must be 1"),
    ({"runtime": None}, "the manifest lacks 'runtime'"),
    ({"models": {"0": "a.onnx"}}, "'models' must be a list of models"),
    ({"models": [{"index": 0, "path": "a.onnx", "shape": [1, 3]}]}, "models[0] has unknown field(s) shape"),
    ({"models": [{"index": 0}]}, "models[0] lacks 'path'"),
    ({"models": [{"index": 0, "path": "a.onnx", "input_shapes": [1, 3]}]}, "'input_shapes' must be a list of shapes"),
    ({"models": [{"index": 0, "path": "a.onnx"}, {"index": 0, "path": "b.onnx"}]}, "index 0 appears twice"),
])
def test_bad_manifest_is_refused_naming_the_field_before_anything_runs(tmp_path, changes, message):
    proc = run_runner(write_manifest(tmp_path, **changes), timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("runner: bad manifest ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert not (tmp_path / "results.jsonl").exists()


def test_every_problem_of_a_manifest_is_named_at_once(tmp_path):
    proc = run_runner(write_manifest(tmp_path, runs=1.5, warmup=-0.5, colour="red"), timeout=60)
    assert proc.returncode == 2
    assert all(part in proc.stderr for part in ("colour", "'runs' must be", "'warmup' must be"))


def test_manifest_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{"runtime": "onnxruntime", ')
    proc = run_runner(path, timeout=60)
    assert proc.returncode == 2 and "is not JSON" in proc.stderr


def test_host_refuses_settings_the_runner_cannot_take_before_writing_anything(tmp_path, onnx_models):
    with LocalDevice(DeviceConfig("here", runtime="onnxruntime")) as dev:
        with pytest.raises(DeviceError, match=r"'runs' must be an integer, got 5\.5"):
            list(dev.benchmark([BenchmarkModel(onnx_models[0], key="a")],
                               BenchmarkSettings(runtime="onnxruntime", runs=5.5)))
        assert not Path(dev.root, "runs").exists()


def test_stop_file_ends_the_batch_before_anything_is_measured(tmp_path, onnx_models):
    path = write_manifest(tmp_path, models=[{"index": 0, "path": str(onnx_models[0])}])
    (tmp_path / "stop").write_text("")
    proc = run_runner(path, timeout=60)
    assert proc.returncode == 0
    assert lines(proc.stdout) == lines((tmp_path / "results.jsonl").read_text()) == [{"type": "end", "stopped": True}]


def test_second_run_while_the_first_is_alive_only_follows_it(tmp_path, onnx_models):
    # two models, three rounds of at least 0.6 s each: the first runner measures for about 4 s
    path = write_manifest(tmp_path, rounds=3, min_seconds=1.8, models=[{"index": i, "path": str(p), "key": f"k{i}"}
                                                                         for i, p in enumerate(onnx_models[:2])])
    results = tmp_path / "results.jsonl"
    first = subprocess.Popen([sys.executable, str(RUNNER_PATH), "run", str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (results.exists() and results.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first runner ended before the second started"
        second = run_runner(path)
        first_out, first_err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0 and second.returncode == 0, first_err + second.stderr
    measured = [r for r in lines(first_out) if r["type"] in ("result", "failed", "end")]
    followed = [r for r in lines(second.stdout) if r["type"] not in ("heartbeat", "progress", "busy")]
    progress = {(r["index"], r["round"]) for r in lines(second.stdout) if r["type"] == "progress"}
    assert progress == {(i, rnd) for i in range(2) for rnd in range(3)}  # the follower reports every round too
    assert followed == measured and [r["type"] for r in measured] == ["result", "result", "end"]
    assert round_counts(results) == {(i, rnd): 1 for i in range(2) for rnd in range(3)}
    assert [r["type"] for r in lines(results.read_text())].count("end") == 1  # the follower wrote nothing
