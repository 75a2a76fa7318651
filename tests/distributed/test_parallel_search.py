"""Parallel top-1 evaluation on a real two-node Ray cluster on loopback: the same front as one process for a
fixed seed, a worker killed mid-search costs nothing, and the run folder stays the single record."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from hwnas.devices.inventory import add_device
from hwnas.distributed import RaySettings
from hwnas.predictors import create_predictor
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
from hwnas.workspace import Workspace

EVALS = 26  # 20 spread archs, then batches of 5 proposed by the accelerated loop


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A workspace with this CPU as `cpu` (a predictor following FLOPs) and the shipped demo supernet."""
    ws = Workspace.init(tmp_path_factory.mktemp("ws"))
    ckpt = demo_checkpoint_path()
    space = load_checkpoint(ckpt).space
    archs = space.sample(np.random.default_rng(0), 30)
    add_device(ws, "cpu", transport="local", runtime="onnxruntime", threads=1)
    create_predictor("gbm", space=space, min_samples_trees=10, n_estimators=50).fit(
        archs, np.array([0.05 + 0.01 * space.flops(a) for a in archs])).save(
        ws.predictors_dir / "cpu-ofa-mbv3-onnxruntime.json")
    return ws, ckpt


def _search(setup, out: Path, **kw):
    from hwnas.workflows import search

    ws, ckpt = setup
    return search(ckpt, ["cpu"], workspace=ws, evals=EVALS, limit=100, out=out, seed=3, **kw)


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "evaluated.jsonl").read_text().splitlines() if line.strip()]


def _front(run: Path) -> list[tuple[str, float]]:
    rows = json.loads((run / "front.json").read_text())["front"]
    return sorted((r["key"], round(r["values"]["top1"], 6)) for r in rows)


@pytest.fixture(scope="module")
def in_process(setup, tmp_path_factory):
    run = tmp_path_factory.mktemp("single") / "run"
    _search(setup, run)
    return run


def test_two_workers_on_two_nodes_find_the_single_process_front(setup, ray_cluster, in_process, tmp_path):
    run = tmp_path / "run"
    outcome = _search(setup, run, ray=RaySettings(address=ray_cluster.address), workers=2)
    lines = _lines(run)
    assert len(lines) == EVALS and len({r["key"] for r in lines}) == EVALS
    workers = {r["extra"]["worker"] for r in lines}
    assert len(workers) == 2  # both workers evaluated archs
    assert json.loads((run / "settings.json").read_text())["executor"] == {"executor": "ray", "workers": 2,
                                                                          "cpus_per_worker": 1.0}
    assert _front(run) == _front(in_process)
    assert outcome.evaluator.spent == EVALS
    # every evaluation has the value the single process found for the same arch
    single = {r["key"]: r["values"]["top1"] for r in _lines(in_process)}
    assert {r["key"]: r["values"]["top1"] for r in lines} == single


def test_a_worker_killed_mid_search_loses_and_repeats_nothing(setup, ray_cluster, in_process, tmp_path):
    run = tmp_path / "run"
    killed: list[int] = []

    def progress(event) -> None:
        # on the 8th result, kill the *other* worker: it is in the middle of evaluating its arch
        if killed or event.stage != "search" or event.done < 8 or not (run / "evaluated.jsonl").is_file():
            return
        last = _lines(run)[-1]["extra"]["worker"]
        others = [pid for pid in _worker_pids() if f"pid {pid}" != last]
        assert others, "no second worker to kill"
        os.kill(others[0], signal.SIGKILL)
        killed.append(others[0])

    _search(setup, run, ray=RaySettings(address=ray_cluster.address), workers=2, progress=progress)
    assert killed
    lines = _lines(run)
    assert len(lines) == EVALS and len({r["key"] for r in lines}) == EVALS  # nothing lost, nothing repeated
    workers = {r["extra"]["worker"] for r in lines}
    assert f"pid {killed[0]}" in workers and len(workers) == 3  # the replacement worker took over
    assert _front(run) == _front(in_process)


def _worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ray::_Worker"):
                pids.append(int(entry.name))
    return pids


def _cli(setup, out: Path, *extra: str) -> list[str]:
    ws, ckpt = setup
    return [str(Path(os.sys.executable).with_name("hwnas")), "search", "--supernet", str(ckpt), "--device", "cpu",
            "--limit", "100", "--evals", str(EVALS), "--seed", "3", "--out", str(out), "-w", str(ws.root), *extra]


def test_cluster_errors_are_one_line(setup, netns, tmp_path):
    import subprocess

    for extra, expected in ((["--ray-address", "127.0.0.1:9"], "no Ray cluster answers at 127.0.0.1:9"),
                            (["--workers", "2"], "--workers spreads evaluations over Ray workers")):
        done = subprocess.run(_cli(setup, tmp_path / "run", *extra), capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (tmp_path / "run").exists()  # nothing written


def test_a_killed_driver_resumes_from_the_run_folder(setup, ray_cluster, in_process, tmp_path):
    """The driver (`hwnas search --ray-address`) is killed mid-search; the same command resumes it: the run
    folder ends with each arch evaluated once and the single-process front."""
    import subprocess
    import time

    run = tmp_path / "run"
    argv = _cli(setup, run, "--ray-address", ray_cluster.address, "--workers", "2")
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        if (run / "evaluated.jsonl").is_file() and len(_lines(run)) >= 6:
            break
        time.sleep(0.2)
    assert driver.poll() is None, driver.stderr.read()
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    before = len(_lines(run))
    assert 6 <= before < EVALS
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resumed: {before} evaluations" in done.stderr
    lines = _lines(run)
    assert len(lines) == EVALS and len({r["key"] for r in lines}) == EVALS
    assert _front(run) == _front(in_process)
