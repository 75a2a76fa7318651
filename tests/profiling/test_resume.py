"""`hwnas profile` killed at random points resumes where it stopped: the same operators end up measured, none twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from hwnas.profiling import MeasurementStore


@pytest.fixture(scope="module")
def args(quick_args):
    return ["profile", "cpu", *quick_args, "--calibration", "0", "--reference", "0", "--chunk-size", "2"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, args, hwnas_cli, new_workspace):
    ws = new_workspace(tmp_path_factory.mktemp("uninterrupted"))
    result = hwnas_cli(args, ws.root)
    assert result.returncode == 0, result.stderr[-2000:]
    return ws


def _ok_ops(store: MeasurementStore) -> Counter:
    return Counter(r.key for r in store.records() if r.kind == "op" and r.ok)


def _lines(path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_profile_killed_five_times_resumes_without_measuring_twice(tmp_path, args, hwnas_cli, new_workspace,
                                                                  uninterrupted):
    expected = _ok_ops(MeasurementStore.for_device(uninterrupted, "cpu"))
    assert len(expected) == 16

    ws = new_workspace(tmp_path / "killed")
    store = MeasurementStore.for_device(ws, "cpu")
    rng = np.random.default_rng(int(time.time()))
    env = {**os.environ, "HWNAS_WORKSPACE": str(ws.root)}
    kills = 0
    for _ in range(5):
        start_lines = _lines(store.path)
        target = start_lines + int(rng.integers(0, 4))
        proc = subprocess.Popen([sys.executable, "-m", "hwnas.cli.app", *args], cwd=ws.root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                # SIGINT as a terminal sends it, even if the suite runs in the background
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 120
        while proc.poll() is None and _lines(store.path) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0, 0.8)))  # somewhere in an export, a measurement or a store write
        sig = None
        if proc.poll() is None:
            sig = signal.SIGKILL if kills % 2 == 0 else signal.SIGINT  # a crash, or Ctrl-C
            os.killpg(proc.pid, sig)
            kills += 1
        proc.wait(timeout=60)
        if sig == signal.SIGINT:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (export workers, runner)
            except ProcessLookupError:
                pass
    # on a fast machine the last runs may finish before their kill: the earlier kills still left gaps to resume
    assert kills >= 3, "the profile finished before it could be interrupted"
    result = hwnas_cli(args, ws.root)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = _ok_ops(store)
    assert set(measured) == set(expected)
    assert max(measured.values()) == 1, [k for k, n in measured.items() if n > 1]
    profile = json.loads((ws.profile_dir("cpu") / "nasbench201-onnxruntime-fp32.json").read_text())
    assert profile["complete"] and set(profile["operators"]) == set(expected)


def test_rerun_of_a_complete_profile_measures_nothing(args, hwnas_cli, uninterrupted):
    ws = uninterrupted
    store = MeasurementStore.for_device(ws, "cpu")
    before = store.path.read_bytes()
    result = hwnas_cli(args, ws.root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert store.path.read_bytes() == before


def test_lost_device_keeps_what_was_measured_and_a_rerun_finishes(tmp_path, args, hwnas_cli, new_workspace,
                                                                   uninterrupted):
    ws = new_workspace(tmp_path / "ws")
    counter = tmp_path / "runs"
    flaky = tmp_path / "flaky-python"
    # the device's runner works for the first batch, then every later batch dies (a device that went away)
    flaky.write_text(f"""#!/bin/sh
if [ "$3" = "run" ]; then  # argv: -- RUNNER run MANIFEST
  n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}
  if [ $n -ge 2 ]; then exit 3; fi
fi
exec {sys.executable} "$@"
""")
    flaky.chmod(0o755)
    good = (ws.devices_dir / "cpu.toml").read_text()
    (ws.devices_dir / "cpu.toml").write_text(good + f'python = "{flaky}"\n')
    chunked = [a if a != "2" else "4" for a in args]  # --chunk-size 4
    result = hwnas_cli(chunked, ws.root)
    assert result.returncode == 1 and "lost device cpu" in result.stderr and "re-run" in result.stderr
    store = MeasurementStore.for_device(ws, "cpu")
    assert len(_ok_ops(store)) == 4
    (ws.devices_dir / "cpu.toml").write_text(good)
    result = hwnas_cli(chunked, ws.root)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = _ok_ops(store)
    assert set(measured) == set(_ok_ops(MeasurementStore.for_device(uninterrupted, "cpu")))
    assert max(measured.values()) == 1
