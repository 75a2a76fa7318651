"""Hostile input never gets a traceback: generated malformed archs, predictor files, profiles and search fronts
given to the CLI (in process) end with exit 0 (valid after all) or exit 1 and one line starting `error:`, and
nothing is written next to the input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from fuzz_helpers import assert_clean, dumps, examples, json_values, mutate, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PREDICTOR = ROOT / "predictors" / "local-cpu-ort-ofa-mbv3-onnxruntime.json"
PROFILE = ROOT / "profiles" / "local-cpu-ort" / "ofa-mbv3-onnxruntime-fp32.json"
FUZZ = settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    for name in ("devices", "profiles", "predictors"):
        shutil.copytree(ROOT / name, root / name)
    return root


@FUZZ
@given(arch=json_values)
def test_any_json_as_an_arch_is_refused_in_one_line(arch, capsys, shipped):
    for argv in (["space", "show", dumps(arch)], ["predict", "local-cpu-ort", dumps(arch), "--json", "-w",
                                                   str(shipped)]):
        assert_clean(*run_cli(argv, capsys))


@FUZZ
@given(text=st.one_of(st.text(max_size=40), st.just("[" * 50000), st.just('{"ks": ' * 20000)))
def test_any_text_as_an_arch_is_refused_in_one_line(text, capsys, tmp_path_factory):
    path = tmp_path_factory.mktemp("arch") / "arch.json"
    path.write_text(text)
    assert_clean(*run_cli(["space", "show", str(path)], capsys))


@FUZZ
@given(data=st.data())
def test_a_damaged_predictor_file_is_refused_in_one_line(data, capsys, tmp_path_factory):
    path = tmp_path_factory.mktemp("pred") / "p.json"
    doc = mutate(json.loads(PREDICTOR.read_text()), data)
    path.write_text(dumps(doc))
    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}
    code, out, err = run_cli(["predict", "x", json.dumps(arch), "--file", str(path), "--json"], capsys)
    assert_clean(code, out, err)
    if code == 0:  # what a damaged file still predicts must be a latency
        value = json.loads(out)[0]["latency_ms"]
        assert math.isfinite(value) and value > 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["p.json"]


@pytest.mark.parametrize("field, value, says", [
    ("n_stages", 2, "fitted on 7 features and now gets 3"),  # found by the fuzzer above: a broadcast error
    ("n_stages", -1, "n_stages is -1, not a whole number from 1 to 64"),  # found too: np.bincount's ValueError
    ("n_stages", 10**9, "not a whole number from 1 to 64"),
    ("correction", {"mean": [0.0], "scale": [1.0, 1.0], "coef": [0.0], "intercept": 0.0, "alpha": 1.0},
     "lists of one length"),
])
def test_a_predictor_file_whose_parts_disagree_is_refused_in_one_line(field, value, says, capsys, tmp_path):
    doc = json.loads(PREDICTOR.read_text())
    doc["state"][field] = value
    path = tmp_path / "p.json"
    path.write_text(dumps(doc))
    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}
    code, out, err = run_cli(["predict", "x", json.dumps(arch), "--file", str(path), "--json"], capsys)
    assert_clean(code, out, err)
    assert code == 1 and says in err, err


@FUZZ
@given(data=st.data())
def test_a_damaged_profile_is_refused_in_one_line(data, capsys, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    shutil.copytree(ROOT / "devices", root / "devices")
    (root / "profiles" / "local-cpu-ort").mkdir(parents=True)
    target = root / "profiles" / "local-cpu-ort" / PROFILE.name
    target.write_text(dumps(mutate(json.loads(PROFILE.read_text()), data)))
    before = target.read_bytes()
    assert_clean(*run_cli(["fit", "local-cpu-ort", "--predictor", "lut", "-w", str(root), "--out",
                           str(root / "p.json")], capsys))
    assert target.read_bytes() == before


@pytest.mark.parametrize("field, value, says", [
    ("sessions", [{"id": "s1", "drifted": "yes"}], "sessions.0.drifted"),
    ("sessions", [{"id": "s1", "drifted": True, "again": {"n": 20, "level": "fast", "spread_pct": 1.0}}],
     "sessions.0.again.level"),
    ("sessions", [{"id": "s1", "checks": [1, 2]}], "sessions.0.checks"),
    ("sessions", [{"drifted": False}], "sessions.0.id"),
    ("reference_levels", {"spread_pct": 1.0, "floor_pct": 5.0, "sessions": {"s1": {"n": 3, "level": -1,
                                                                                    "band_pct": 2.0}}},
     "reference_levels.sessions.s1.level"),
])
def test_a_profile_whose_session_summaries_are_damaged_is_refused_in_one_line(field, value, says, capsys,
                                                                               tmp_path):
    """What `fit` reads of the profiling sessions (drift, levels) is checked when the profile is loaded: before,
    a drifted session whose level was text crashed the warning it was worded into."""
    root = tmp_path / "ws"
    shutil.copytree(ROOT / "devices", root / "devices")
    (root / "profiles" / "local-cpu-ort").mkdir(parents=True)
    target = root / "profiles" / "local-cpu-ort" / PROFILE.name
    target.write_text(dumps({**json.loads(PROFILE.read_text()), field: value}))
    code, out, err = run_cli(["fit", "local-cpu-ort", "--predictor", "gbm", "-w", str(root), "--out",
                              str(root / "p.json")], capsys)
    assert_clean(code, out, err)
    assert code == 1 and says in err and "re-run `hwnas profile`" in err, err
    assert not (root / "p.json").exists()


@FUZZ
@given(front=json_values)
def test_any_front_document_given_to_export_is_refused_in_one_line(front, capsys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    (folder / "front.json").write_text(dumps({"front": front}))
    code, out, err = run_cli(["export", str(folder / "front.json"), "--space", "ofa-mbv3", "--out",
                           str(folder / "models"), "--format", "onnx", "--no-validate", "-j", "1"], capsys)
    assert_clean(code, out, err)
