"""The device farm on a real two-node Ray cluster on loopback: three devices (this machine, and this machine over
two real sshd servers) profiled at once equal sequential in-process runs; a killed SSH link loses and duplicates
nothing; a device that cannot be reached fails alone, named on one line; a dead --ray-address is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import farm_fixtures
import pytest
from farm_fixtures import DEVICES, TINY, add_ssh_device, dead_port, farm_workspace, record_counts, wait_until

from hwnas.distributed import RaySettings
from hwnas.profiling import load_profile
from hwnas.workflows.profile import profile, profile_many

PROFILE = "nasbench201-onnxruntime-fp32.json"
farm_sshds = farm_fixtures.farm_sshds  # the fixture, used by name


def _cli(args: list[str], ws_root: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "HWNAS_WORKSPACE": str(ws_root), "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "hwnas.cli.app", *args], cwd=ws_root, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _tiny_args() -> list[str]:
    return [a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def _profile_keys(ws, device: str) -> dict[str, list[str]]:
    data = load_profile(ws.profile_dir(device) / PROFILE)
    return {"operators": sorted(data["operators"]), "missing": data["missing_operators"],
            **{role: sorted(r["key"] for r in data[role]) for role in ("reference", "calibration", "extra")}}


def _measured_once(ws, device: str) -> None:
    counts = record_counts(ws, device)
    assert counts and set(counts.values()) == {1}, f"{device}: measured twice: {counts.most_common(3)}"
    assert all(ok for (_, _, _, ok) in counts), f"{device}: failed measurements"
    assert sum(1 for (kind, *_) in counts if kind == "op") == 16


def test_three_devices_on_ray_equal_sequential_in_process_runs(ray_cluster, farm_sshds, tmp_path):
    farm = farm_workspace(tmp_path / "farm", farm_sshds)
    events = []
    results = profile_many(DEVICES, workspace=farm, ray=RaySettings(address=ray_cluster.address),
                           progress=events.append, **TINY)
    assert [r.device for r in results] == DEVICES
    assert all(r.operators == 16 and r.archs == 4 and not r.missing_operators for r in results)
    stages = {e.stage for e in events}
    assert {f"{d}: operators" for d in DEVICES} <= stages and {f"{d}: archs" for d in DEVICES} <= stages

    sequential = farm_workspace(tmp_path / "sequential", farm_sshds)
    for device in DEVICES:
        options = {k: v for k, v in TINY.items() if k != "space"}
        profile(device, TINY["space"], workspace=sequential, **options)
    for device in DEVICES:
        assert _profile_keys(farm, device) == _profile_keys(sequential, device)
        assert +record_counts(farm, device) == +record_counts(sequential, device)
        _measured_once(farm, device)


def _runner_in_mid_batch(remote_dir: Path) -> bool:
    """A batch on the device has recorded a round and not ended (the runner's results.jsonl)."""
    for results in remote_dir.glob("runs/*/results.jsonl"):
        try:
            types = [json.loads(line).get("type") for line in results.read_text().splitlines() if line.strip()]
        except (OSError, ValueError):
            continue
        if "round" in types and "end" not in types:
            return True
    return False


def test_a_killed_ssh_link_mid_batch_loses_and_duplicates_nothing(ray_cluster, farm_sshds, tmp_path):
    ws = farm_workspace(tmp_path / "farm", farm_sshds)
    server = farm_sshds["ssh-a"]
    kills: list[float] = []

    def kill_link_mid_batch() -> None:
        if wait_until(lambda: _runner_in_mid_batch(ws.root / "remote-ssh-a"), timeout_s=120.0, step_s=0.01):
            kills.append(time.monotonic())
            server.drop_links()

    killer = threading.Thread(target=kill_link_mid_batch)
    killer.start()
    try:
        # more runs: a batch lasts long enough to be cut in the middle
        results = profile_many(DEVICES, workspace=ws, ray=RaySettings(address=ray_cluster.address),
                               **{**TINY, "runs": 150, "rounds": 2})
    finally:
        killer.join()
        if server.proc is None:
            server.start()
    assert kills, "the link was never killed mid-batch"
    assert all(r.operators == 16 and not r.missing_operators for r in results)
    for device in DEVICES:
        _measured_once(ws, device)


def test_an_unreachable_device_fails_alone_named_on_one_line(ray_cluster, farm_sshds, tmp_path):
    ws = farm_workspace(tmp_path / "farm", farm_sshds)
    add_ssh_device(ws, "ssh-dead", farm_sshds["ssh-a"], port=dead_port(), connect_timeout_s=2.0)
    result = _cli(["profile", "local-cpu-ort", "ssh-dead", "ssh-b", "--ray-address", ray_cluster.address,
                   *_tiny_args()], ws.root)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "ssh-dead: " in lines[0] and "cannot connect" in lines[0] and "1 of 3 devices" in lines[0]
    for device in ("local-cpu-ort", "ssh-b"):
        assert _profile_keys(ws, device)["operators"] and f"{device}: wrote" in result.stdout.replace("\n", " ")
        _measured_once(ws, device)
    assert not (ws.profile_dir("ssh-dead") / PROFILE).exists()


def test_a_dead_ray_address_is_one_line(netns, farm_sshds, tmp_path):
    ws = farm_workspace(tmp_path / "farm", farm_sshds)
    started = time.monotonic()
    result = _cli(["profile", "local-cpu-ort", "ssh-a", "--ray-address", f"127.0.0.1:{dead_port()}",
                   *_tiny_args()], ws.root, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and "127.0.0.1:" in lines[-1], result.stderr[-2000:]
    assert time.monotonic() - started < 60
    assert not list(ws.root.glob("profiles/*/measurements.jsonl"))  # nothing measured, nothing exported ahead


@pytest.mark.parametrize("option", [["--export-csv", "out.csv"]])
def test_export_csv_of_several_devices_is_one_line(netns, farm_sshds, tmp_path, option):
    ws = farm_workspace(tmp_path / "farm", farm_sshds)
    result = _cli(["profile", "local-cpu-ort", "ssh-a", *option], ws.root, timeout=60)
    assert result.returncode == 1 and result.stderr.strip().startswith("error:") and "one device" in result.stderr


def test_several_devices_without_ray_run_in_process(farm_sshds, tmp_path):
    ws = farm_workspace(tmp_path / "farm", farm_sshds)
    results = profile_many(["local-cpu-ort", "ssh-b"], workspace=ws, **TINY)
    assert [r.device for r in results] == ["local-cpu-ort", "ssh-b"]
    for device in ("local-cpu-ort", "ssh-b"):
        _measured_once(ws, device)


def test_device_errors_come_back_as_the_same_hwnas_error():
    from hwnas.distributed.farm import _rebuild
    from hwnas.errors import DeviceError, DeviceTimeoutError, HostKeyError

    error = _rebuild("board", {"type": "HostKeyError", "message": "device board: the host key CHANGED"})
    assert type(error) is HostKeyError and str(error) == "device board: the host key CHANGED"
    assert type(_rebuild("board", {"type": "DeviceTimeoutError", "message": "m"})) is DeviceTimeoutError
    other = _rebuild("board", {"type": "ZeroDivisionError", "message": "division by zero"})
    assert type(other) is DeviceError and str(other) == "device board: ZeroDivisionError: division by zero"


def test_deploy_on_two_devices_through_ray_records_both(ray_cluster, farm_sshds, tmp_path):
    import csv

    import numpy as np

    from hwnas.predictors import create_predictor
    from hwnas.supernet import demo_checkpoint_path, load_checkpoint
    from hwnas.workflows import search
    from hwnas.workflows.deploy import deploy_many

    ws = farm_workspace(tmp_path / "farm", farm_sshds)
    ckpt = demo_checkpoint_path()
    space = load_checkpoint(ckpt).space
    archs = space.sample(np.random.default_rng(0), 30)
    create_predictor("gbm", space=space, min_samples_trees=10, n_estimators=20).fit(
        archs, np.array([0.05 + 0.01 * space.flops(a) for a in archs])).save(
        ws.predictors_dir / "local-cpu-ort-ofa-mbv3-onnxruntime.json")
    run = tmp_path / "run"
    search(ckpt, ["local-cpu-ort"], workspace=ws, space="ofa-mbv3", evals=4, out=run, algorithm="random",
           limit=100)
    events = []
    result = deploy_many(run, ["local-cpu-ort", "ssh-b"], ray=RaySettings(address=ray_cluster.address),
                         formats=["onnx"], workspace=ws, max_models=2, progress=events.append)
    assert result.devices == ["local-cpu-ort", "ssh-b"]
    assert {"local-cpu-ort: measure", "ssh-b: measure"} <= {e.stage for e in events}
    with open(run / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    measured = [r for r in rows if r.get("measured_latency_ms[local-cpu-ort]")]
    assert len(measured) == min(2, len(rows))
    assert all(float(r["measured_latency_ms[local-cpu-ort]"]) > 0 and float(r["measured_latency_ms[ssh-b]"]) > 0
               for r in measured)
    assert set(json.loads((run / "front.json").read_text())["deployed"]) == {"local-cpu-ort", "ssh-b"}


def _tiny_onnx_models(folder: Path, n: int) -> list[Path]:
    """`n` distinct one-node ONNX models (Relu over different input sizes)."""
    import onnx
    from onnx import TensorProto, helper

    paths = []
    for i in range(n):
        shape = [1, 4, 8 + i, 8]
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], f"relu{i}",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        paths.append(folder / f"relu{i}.onnx")
        onnx.save(model, str(paths[-1]))
    return paths


def test_an_abandoned_batch_ends_on_the_actor_and_the_next_one_runs(ray_cluster, farm_sshds, tmp_path):
    from hwnas.devices import BenchmarkModel, BenchmarkSettings
    from hwnas.distributed import ray_session
    from hwnas.distributed.farm import DeviceFarm

    ws = farm_workspace(tmp_path / "farm", farm_sshds)
    models = [BenchmarkModel(p, p.stem) for p in _tiny_onnx_models(tmp_path, 4)]
    settings = BenchmarkSettings(runtime="onnxruntime", warmup=1, runs=20, rounds=1)
    with ray_session(RaySettings(address=ray_cluster.address)) as ray:
        with DeviceFarm(ws, ray).device("ssh-a") as device:
            batch = device.benchmark(models, settings)
            first = next(batch)
            batch.close()  # the driver walks away after one model
            again = list(device.benchmark(models, settings))
            started = time.monotonic()
        assert time.monotonic() - started < 30  # close did not wait for a forgotten batch
    assert first.ok and sorted(m.key for m in again) == sorted(m.key for m in models) and all(m.ok for m in again)
