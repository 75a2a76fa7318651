"""Shared by the CLI fuzz tests: hypothesis strategies for JSON values, one-field mutations of a JSON document,
running `hwnas` in process, and the property every run must keep (exit 0, or exit 1 with one `error:` line)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import strategies as st

from hwnas.cli.app import main

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(st.text(max_size=6), inner, max_size=5)),
                           max_leaves=20)


def examples(n: int) -> int:
    """`n` times `HWNAS_FUZZ_SCALE` (default 1): a long fuzzing campaign (`HWNAS_FUZZ_SCALE=20 pytest tests/cli
    -k fuzz`) runs the same properties on 20 times as many generated inputs."""
    return n * max(1, int(os.environ.get("HWNAS_FUZZ_SCALE", "1")))


def dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


def mutate(doc, data):
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


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """`hwnas ARGV` in this process: (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean(code, out, err):
    """No traceback; a failure is exit 1 and one line starting `error: `, the last on stderr (progress lines may
    come before it); --json output is valid JSON (no NaN)."""
    assert "Traceback" not in err
    if code != 0:
        lines = err.strip().splitlines()
        errors = [line for line in lines if line.startswith("error: ")]
        assert code == 1 and len(errors) == 1 and lines[-1] == errors[0], err
    if code == 0 and out.lstrip().startswith("["):
        json.loads(out, parse_constant=lambda c: pytest.fail(f"--json printed {c}"))  # valid JSON: no NaN
