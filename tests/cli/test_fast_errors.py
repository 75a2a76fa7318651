"""Bad input is refused before anything heavy loads: these commands fail on a cheap check, so torch (about a
second to import) must not have been imported when they exit. One arch predicted from a lookup-table predictor
needs neither torch nor xgboost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from hwnas.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "xgboost", "onnxruntime", "ray") if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "-")
"""


def _probe(*argv: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    last = done.stdout.strip().splitlines()[-1]
    return last, done.stderr


@pytest.mark.parametrize("argv", [
    ("search", "--supernet", "hwnas/assets/demo_mbv3_mnist.pt", "--device", "nosuch"),
    ("search", "--supernet", "nosuch.pt", "--device", "local-cpu-ort"),
    ("search", "--supernet", "hwnas/assets/demo_mbv3_mnist.pt", "--device", "local-cpu-ort",
     "--latency-ms", "local-cpu-ort=abc"),
    ("optimize", "--device", "local-cpu-ort", "--max-latency", "-3"),
    ("deploy", "/nonexistent/run", "--device", "local-cpu-ort"),
    ("profile", "nosuch"),
])
def test_a_bad_argument_is_refused_before_torch_loads(argv):
    last, err = _probe(*argv)
    assert last == "EXIT 1 HEAVY -", (last, err)
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err


def test_one_arch_is_predicted_without_torch_or_xgboost(tmp_path):
    arch = ('{"ks": [3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3], "e": [3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3], '
            '"d": [2,2,2,2,2], "r": 216}')
    last, err = _probe("predict", "local-cpu-ort", arch)
    assert last == "EXIT 0 HEAVY -", (last, err)
