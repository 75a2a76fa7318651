"""Hostile input never gets a traceback: generated malformed archs, predictor files, profiles and search fronts
given to the CLI (in process) end with exit 0 (valid after all) or exit 1 and one line starting `error:`, and
nothing is written next to the input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
PREDICTOR = ROOT / "predictors" / "local-cpu-ort-ofa-mbv3-onnxruntime.json"
PROFILE = ROOT / "profiles" / "local-cpu-ort" / "ofa-mbv3-onnxruntime-fp32.json"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(st.text(max_size=6), inner, max_size=5)),
                           max_leaves=20)


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


def _mutate(doc, data):
    """The document with one field (at depth 1 or 2) replaced by a random value or removed."""
    doc = json.loads(json.dumps(doc))
    target = doc
    keys = list(target)
    key = data.draw(st.sampled_from(keys))
    if isinstance(target[key], dict) and target[key] and data.draw(st.booleans()):
        target, key = target[key], data.draw(st.sampled_from(list(target[key])))
    elif isinstance(target[key], list) and target[key] and data.draw(st.booleans()):
        target, key = target[key], data.draw(st.integers(0, len(target[key]) - 1))
    if isinstance(target, dict) and data.draw(st.booleans()):
        del target[key]
    else:
        target[key] = data.draw(json_values)
    return doc


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _clean(code, out, err):
    assert "Traceback" not in err
    if code != 0:
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), err
    if code == 0 and out.lstrip().startswith("["):
        json.loads(out, parse_constant=lambda c: pytest.fail(f"--json printed {c}"))  # valid JSON: no NaN


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    for name in ("devices", "profiles", "predictors"):
        shutil.copytree(ROOT / name, root / name)
    return root


@FUZZ
@given(arch=json_values)
def test_any_json_as_an_arch_is_refused_in_one_line(arch, capsys, shipped):
    for argv in (["space", "show", _dumps(arch)], ["predict", "local-cpu-ort", _dumps(arch), "--json", "-w",
                                                   str(shipped)]):
        _clean(*_run(argv, capsys))


@FUZZ
@given(text=st.one_of(st.text(max_size=40), st.just("[" * 50000), st.just('{"ks": ' * 20000)))
def test_any_text_as_an_arch_is_refused_in_one_line(text, capsys, tmp_path_factory):
    path = tmp_path_factory.mktemp("arch") / "arch.json"
    path.write_text(text)
    _clean(*_run(["space", "show", str(path)], capsys))


@FUZZ
@given(data=st.data())
def test_a_damaged_predictor_file_is_refused_in_one_line(data, capsys, tmp_path_factory):
    path = tmp_path_factory.mktemp("pred") / "p.json"
    doc = _mutate(json.loads(PREDICTOR.read_text()), data)
    path.write_text(_dumps(doc))
    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}
    code, out, err = _run(["predict", "x", json.dumps(arch), "--file", str(path), "--json"], capsys)
    _clean(code, out, err)
    if code == 0:  # what a damaged file still predicts must be a latency
        value = json.loads(out)[0]["latency_ms"]
        assert math.isfinite(value) and value > 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["p.json"]


@FUZZ
@given(data=st.data())
def test_a_damaged_profile_is_refused_in_one_line(data, capsys, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    shutil.copytree(ROOT / "devices", root / "devices")
    (root / "profiles" / "local-cpu-ort").mkdir(parents=True)
    target = root / "profiles" / "local-cpu-ort" / PROFILE.name
    target.write_text(_dumps(_mutate(json.loads(PROFILE.read_text()), data)))
    before = target.read_bytes()
    _clean(*_run(["fit", "local-cpu-ort", "--predictor", "lut", "-w", str(root), "--out", str(root / "p.json")],
                 capsys))
    assert target.read_bytes() == before


@FUZZ
@given(front=json_values)
def test_any_front_document_given_to_export_is_refused_in_one_line(front, capsys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    (folder / "front.json").write_text(_dumps({"front": front}))
    code, out, err = _run(["export", str(folder / "front.json"), "--space", "ofa-mbv3", "--out",
                           str(folder / "models"), "--format", "onnx", "--no-validate", "-j", "1"], capsys)
    _clean(code, out, err)
