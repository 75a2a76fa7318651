"""Issue 24 on the real sshd on loopback: a flaky link loses nothing, no runner is left behind, two batches never
measure one device at once, and what is wrong with a key is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from helpers import own_runner_pids, round_counts

from hwnas.devices import BenchmarkModel, BenchmarkSettings, add_device, open_device
from hwnas.errors import DeviceError, TransportError
from hwnas.workspace import Workspace


def settings(**kw):
    base = dict(runtime="onnxruntime", warmup=1, runs=3, rounds=3, timeout_per_model_s=60)
    base.update(kw)
    return BenchmarkSettings(**base)


def ssh_device(ws: Workspace, name: str, sshd, tmp_path: Path, **options) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line)
    defaults = dict(transport="ssh", host="127.0.0.1", port=sshd.port, user=sshd.user,
                    key=str(sshd.folder / "user_key"), runtime="onnxruntime", python=sys.executable,
                    remote_dir=str(tmp_path / f"cache-{name}"), known_hosts=str(known), reconnect_timeout_s=30.0)
    add_device(ws, name, **{**defaults, **options})


def runner_processes(remote_dir: str) -> list[str]:
    """Command lines of runner processes started from a cache folder (`pgrep -f` on the runner's path)."""
    proc = subprocess.run(["pgrep", "-af", f"{remote_dir}/runner-"], capture_output=True, text=True)
    return [line for line in proc.stdout.splitlines() if "pgrep" not in line]


def wait_until(condition, timeout_s: float = 60.0, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


def rounds_recorded(run_dir: str | None) -> int:
    path = Path(run_dir or "/nonexistent") / "results.jsonl"
    return sum(round_counts(path).values()) if path.exists() else 0


def test_five_link_drops_in_the_first_rounds_lose_and_duplicate_nothing(tmp_path, sshd, onnx_models):
    ws = Workspace.init(tmp_path / "ws")
    ssh_device(ws, "flaky", sshd, tmp_path)
    models = [BenchmarkModel(p, f"{p.stem}-{i}") for i in range(2) for p in onnx_models]  # 10 models
    streams: list[float] = []
    kills: list[int] = []  # results yielded when each kill happened
    got = []

    with open_device("flaky", ws) as device:
        device.keep_runs = True
        remote_dir = device.root
        open_stream = device._open_stream

        def counting_open_stream(argv, cwd=None):
            if "run" in argv:
                streams.append(time.monotonic())
            return open_stream(argv, cwd)

        device._open_stream = counting_open_stream

        def drop_link_five_times():
            for k in range(5):
                if not wait_until(lambda k=k: len(streams) > k):
                    return
                base = rounds_recorded(device.last_run_dir)
                if not wait_until(lambda base=base: rounds_recorded(device.last_run_dir) > base):
                    return
                time.sleep(0.3)  # the device recorded a new round since the reconnect; the host has read it
                kills.append(len(got))
                sshd.kill()
                time.sleep(0.5)
                sshd.start()

        dropper = threading.Thread(target=drop_link_five_times)
        dropper.start()
        try:
            for m in device.benchmark(models, settings(min_seconds=1.5)):  # about 0.5 s per model and round
                got.append(m)
        finally:
            dropper.join()
        run_dir = Path(device.last_run_dir)
    assert kills == [0] * 5  # five drops, all before the first model's last round: in the first rounds
    assert sorted(m.key for m in got) == sorted(m.key for m in models) and all(m.ok for m in got)
    counts = round_counts(run_dir / "results.jsonl")
    assert set(counts) == {(i, r) for i in range(len(models)) for r in range(3)} and set(counts.values()) == {1}
    assert wait_until(lambda: not runner_processes(remote_dir), 15.0), runner_processes(remote_dir)


def test_runner_left_measuring_by_a_given_up_batch_is_stopped_before_the_next_batch(tmp_path, sshd, onnx_models):
    ws = Workspace.init(tmp_path / "ws")
    ssh_device(ws, "orphaned", sshd, tmp_path, reconnect_timeout_s=1.0, connect_timeout_s=2.0)
    models = [BenchmarkModel(p, f"{p.stem}-{i}") for i in range(2) for p in onnx_models]
    device = open_device("orphaned", ws)
    device.connect()
    try:
        batch = device.benchmark(models, settings(rounds=1, min_seconds=2.0))  # about 2 s per model
        with pytest.raises(TransportError):
            thread = threading.Thread(target=lambda: (wait_until(lambda: rounds_recorded(device.last_run_dir) > 0),
                                                      sshd.kill()))
            thread.start()
            list(batch)
        thread.join()
        old_run = device.last_run_dir
        assert own_runner_pids(old_run, "run"), "the abandoned runner should still be measuring (link down)"
    finally:
        device.close()
        sshd.start()
    with open_device("orphaned", ws) as again:
        got = list(again.benchmark(models[:1], settings(rounds=1)))
    assert got[0].ok
    assert not own_runner_pids(old_run, "run") and not own_runner_pids(old_run, "worker")
    records = [json.loads(line) for line in (Path(old_run) / "results.jsonl").read_text().splitlines()]
    assert records[-1] == {"type": "end", "stopped": True}
    assert wait_until(lambda: not runner_processes(str(tmp_path / "cache-orphaned")), 15.0)


def test_two_names_for_one_device_never_measure_at_once(tmp_path, sshd, onnx_models):
    ws = Workspace.init(tmp_path / "ws")
    ssh_device(ws, "board", sshd, tmp_path)
    ssh_device(ws, "same-board", sshd, tmp_path)  # the same machine, another cache folder
    models = [BenchmarkModel(p, p.stem) for p in onnx_models[:3]]
    run_dirs: dict[str, str] = {}
    waited: list[str] = []
    overlap: list[tuple[list[int], list[int]]] = []
    results: dict[str, list] = {}
    done = threading.Event()

    def measure(name):
        with open_device(name, ws) as device:
            device.waiting = waited.append
            device.progress = lambda m, d, t: run_dirs.setdefault(name, device.last_run_dir)
            batch = device.benchmark(models, settings(rounds=2, min_seconds=1.0))
            run_dirs[name] = device.last_run_dir or ""
            results[name] = list(batch)

    def watch():
        while not done.is_set():
            workers = [own_runner_pids(run_dirs[n], "worker") if run_dirs.get(n) else [] for n in ("board",
                                                                                                 "same-board")]
            if all(workers):
                overlap.append((workers[0], workers[1]))
            time.sleep(0.02)

    threads = [threading.Thread(target=measure, args=(n,)) for n in ("board", "same-board")]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert all(len(results[n]) == 3 and all(m.ok for m in results[n]) for n in ("board", "same-board"))
    assert not overlap, "two batches measured on one device at the same time"
    assert waited and "waiting for another batch" in waited[0] and "runner pid" in waited[0]


def test_second_batch_gives_up_after_lock_timeout_with_one_line(tmp_path, sshd, onnx_models):
    ws = Workspace.init(tmp_path / "ws")
    ssh_device(ws, "busy-a", sshd, tmp_path)
    ssh_device(ws, "busy-b", sshd, tmp_path, lock_timeout_s=1.0)
    first_started = threading.Event()
    outcome = {}

    def long_batch():
        with open_device("busy-a", ws) as device:
            device.progress = lambda *a: None
            batch = device.benchmark([BenchmarkModel(onnx_models[0], "a")], settings(rounds=1, min_seconds=4.0))
            first_started.set()
            outcome["a"] = list(batch)

    thread = threading.Thread(target=long_batch)
    thread.start()
    time.sleep(2.0)  # the first batch holds the device lock by now
    with open_device("busy-b", ws) as device:
        with pytest.raises(DeviceError) as info:
            list(device.benchmark([BenchmarkModel(onnx_models[1], "b")], settings(rounds=1)))
        b_run = device.last_run_dir
    thread.join()
    message = str(info.value)
    assert "busy-b is busy" in message and "runner pid" in message and "\n" not in message
    assert not isinstance(info.value, TransportError)
    assert outcome["a"][0].ok and not own_runner_pids(b_run, "run")


def test_wrong_key_passphrase_is_named_as_such(tmp_path, sshd, monkeypatch):
    ws = Workspace.init(tmp_path / "ws")
    ssh_device(ws, "enc", sshd, tmp_path, key=str(sshd.folder / "user_key_enc"))
    monkeypatch.setenv("SSH_AUTH_SOCK", "")
    monkeypatch.setenv("HWNAS_SSH_PASSPHRASE", "wrong horse")
    with pytest.raises(TransportError, match="wrong passphrase") as info:
        open_device("enc", ws).connect()
    assert "wrong horse" not in str(info.value) and "Invalid key" not in str(info.value)
    monkeypatch.delenv("HWNAS_SSH_PASSPHRASE")
    with pytest.raises(TransportError, match="encrypted and no passphrase"):
        open_device("enc", ws).connect()


def test_runner_starts_with_absolute_paths_after_double_dash(tmp_path, sshd, onnx_models):
    ws = Workspace.init(tmp_path / "ws")
    home_dir = f"hwnas-test-{uuid.uuid4().hex[:8]}"
    ssh_device(ws, "home", sshd, tmp_path, remote_dir=f"~/{home_dir}")
    argvs = []
    try:
        with open_device("home", ws) as device:
            open_stream = device._open_stream
            device._open_stream = lambda argv, cwd=None: (argvs.append(list(argv)), open_stream(argv, cwd))[1]
            assert device.root == os.path.join(os.path.expanduser("~"), home_dir)
            got = list(device.benchmark([BenchmarkModel(onnx_models[0], "k")], settings(rounds=1)))
        assert got[0].ok
        run = next(a for a in argvs if "run" in a)
        assert run[1] == "--" and all(a.startswith("/") for a in (run[2], run[4]))
    finally:
        import shutil

        shutil.rmtree(Path.home() / home_dir, ignore_errors=True)
