"""The `ssh` transport against a real OpenSSH server on 127.0.0.1 started by the tests."""

import logging
import os
import threading
import time
from pathlib import Path

import pytest
from helpers import round_counts

from hwnas.devices import BenchmarkModel, BenchmarkSettings, add_device, open_device
from hwnas.devices.inventory import load_inventory
from hwnas.devices.ssh import SshDevice
from hwnas.errors import HostKeyError, TransportError


def settings(**kw):
    base = dict(runtime="onnxruntime", warmup=1, runs=4, rounds=2, timeout_per_model_s=30)
    base.update(kw)
    return BenchmarkSettings(**base)


def test_check_fingerprints_the_device(ssh_workspace):
    with open_device("ssh-loop", ssh_workspace) as device:
        info = device.info()
    assert info["transport"] == "ssh" and info["cores"] >= 1
    assert info["runtimes"]["onnxruntime"] and info["python"]


def test_benchmarks_onnx_and_tflite_and_pushes_only_what_is_missing(ssh_workspace, onnx_models, tflite_models):
    pushed = []
    with open_device("ssh-loop", ssh_workspace) as device:
        original = device._push
        device._push = lambda local, remote: (pushed.append(Path(local).name), original(local, remote))
        models = [BenchmarkModel(p, p.stem) for p in onnx_models[:3]]
        got = list(device.benchmark(models, settings()))
        assert sorted(m.key for m in got) == sorted(m.key for m in models) and all(m.ok for m in got)
        assert all(m.n == 4 and m.wall_ms > 0 and m.runtime == "onnxruntime" for m in got)
        first_push = list(pushed)
        got = list(device.benchmark(models[:2] + [BenchmarkModel(onnx_models[3], "new")], settings(rounds=1)))
        assert all(m.ok for m in got)
        tfl = [BenchmarkModel(p, p.stem) for p in tflite_models]
        got_tfl = list(device.benchmark(tfl, settings(runtime="tflite")))
        assert all(m.ok and m.runtime_version.startswith("ai_edge_litert") for m in got_tfl)
        remote_models = Path(device.root) / "models"
    assert "runner.py" in first_push and sum(n.endswith(".onnx") for n in first_push) == 3
    assert pushed[len(first_push):] == [onnx_models[3].name] + [p.name for p in tflite_models]
    assert sorted(p.name for p in remote_models.iterdir()) == sorted(
        f"{m.sha256}{m.path.suffix}" for m in models + [BenchmarkModel(onnx_models[3], "x")] + tfl)
    assert not list((remote_models.parent / "runs").iterdir())  # run folders are cleaned up


def test_unknown_host_key_is_refused_until_trusted(tmp_path, sshd):
    known = tmp_path / "kh"
    config_opts = dict(transport="ssh", host="127.0.0.1", port=sshd.port, user=sshd.user,
                       key=str(sshd.folder / "user_key"), known_hosts=str(known), python="python3")
    from hwnas.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    config = add_device(ws, "newhost", **config_opts)
    with pytest.raises(HostKeyError, match="--trust-new-host"):
        SshDevice(config).connect()
    assert not known.exists()
    device = SshDevice(config, trust_new_host=True)
    device.connect()
    device.close()
    assert known.read_text().split()[:2] == sshd.known_hosts_line.split()[:2]
    SshDevice(config).connect()  # now known: accepted without the flag


def test_changed_host_key_is_refused_even_with_trust_new_host(tmp_path, sshd):
    import paramiko

    other = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else None
    if other is None:
        import subprocess

        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
        pub = (tmp_path / "other.pub").read_text().split()
    else:  # pragma: no cover
        pub = [other.get_name(), other.get_base64()]
    known = tmp_path / "kh"
    known.write_text(f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}\n")
    from hwnas.devices.inventory import DeviceConfig

    config = DeviceConfig(name="moved", transport="ssh", host="127.0.0.1", port=sshd.port, user=sshd.user,
                          key=str(sshd.folder / "user_key"), known_hosts=str(known))
    for trust in (False, True):
        with pytest.raises(HostKeyError, match="CHANGED"):
            SshDevice(config, trust_new_host=trust).connect()
    assert known.read_text().count("\n") == 1  # nothing was recorded


def test_passphrase_comes_from_the_environment_and_is_never_written(tmp_path, sshd, caplog, monkeypatch, onnx_models):
    from hwnas.workspace import Workspace

    secret = "correct horse"
    ws = Workspace.init(tmp_path / "ws")
    known = tmp_path / "kh"
    known.write_text(sshd.known_hosts_line)
    remote = tmp_path / "remote"
    add_device(ws, "enc", transport="ssh", host="127.0.0.1", port=sshd.port, user=sshd.user,
               key=str(sshd.folder / "user_key_enc"), known_hosts=str(known), python=os.sys.executable,
               remote_dir=str(remote))
    monkeypatch.delenv("HWNAS_SSH_PASSPHRASE", raising=False)
    monkeypatch.setenv("SSH_AUTH_SOCK", "")
    with pytest.raises(TransportError, match="HWNAS_SSH_PASSPHRASE"):
        open_device("enc", ws).connect()
    monkeypatch.setenv("HWNAS_SSH_PASSPHRASE", secret)
    caplog.set_level(logging.DEBUG)
    with open_device("enc", ws) as device:
        got = list(device.benchmark([BenchmarkModel(onnx_models[0], "k")], settings(rounds=1)))
    assert got[0].ok
    written = [p for p in [*ws.root.rglob("*"), *remote.rglob("*")] if p.is_file()]
    assert written and all(secret.encode() not in p.read_bytes() for p in written)
    assert secret not in caplog.text
    assert load_inventory(ws)["enc"].key.endswith("user_key_enc")


def test_killing_sshd_mid_batch_resumes_and_measures_each_model_once(ssh_workspace, sshd, onnx_models, caplog):
    caplog.set_level(logging.WARNING, logger="hwnas.devices.ssh")
    models = [BenchmarkModel(p, p.stem) for p in onnx_models] * 2  # 10 models, the same files twice
    models = [BenchmarkModel(m.path, f"{m.key}-{i}") for i, m in enumerate(models)]
    outage = {}

    def restart():
        time.sleep(1.5)
        sshd.start()

    with open_device("ssh-loop", ssh_workspace) as device:
        device.keep_runs = True

        def progress(m, done, total):
            if done == 2 and "thread" not in outage:
                # killed here, while the host waits on this batch: the link is cut with 8 models still to come
                # (from a thread, a loaded machine could let the batch finish first)
                sshd.kill()
                outage["killed"] = time.monotonic()
                outage["thread"] = threading.Thread(target=restart)
                outage["thread"].start()

        device.progress = progress
        got = list(device.benchmark(models, settings(runs=150, rounds=2)))
        outage["thread"].join()
        run_dir = Path(device.last_run_dir)
    assert "killed" in outage and "link lost" in caplog.text  # the batch really went through a reconnect
    assert sorted(m.key for m in got) == sorted(m.key for m in models)
    assert all(m.ok for m in got)
    counts = round_counts(run_dir / "results.jsonl")
    assert len(counts) == len(models) * 2 and set(counts.values()) == {1}


def test_sshd_down_for_longer_than_the_reconnect_timeout_is_an_error(tmp_path, sshd, onnx_models):
    from hwnas.devices.inventory import DeviceConfig

    known = tmp_path / "kh"
    known.write_text(sshd.known_hosts_line)
    config = DeviceConfig(name="flaky", transport="ssh", host="127.0.0.1", port=sshd.port, user=sshd.user,
                          key=str(sshd.folder / "user_key"), known_hosts=str(known), python=os.sys.executable,
                          remote_dir=str(tmp_path / "r"), reconnect_timeout_s=1.0, connect_timeout_s=2.0)
    device = SshDevice(config)
    device.connect()
    try:
        sshd.kill()
        with pytest.raises(TransportError):
            list(device.benchmark([BenchmarkModel(onnx_models[0], "k")], settings(rounds=1)))
    finally:
        device.close()
        sshd.start()


def test_hostile_names_and_paths_never_execute(tmp_path, sshd, onnx_models):
    from hwnas.workspace import Workspace

    evil = "a b;touch PWNED1 $(touch PWNED2) `touch PWNED3` 'q\" \\"
    folder = tmp_path / evil
    folder.mkdir()
    model = folder / f"{evil}.onnx"
    model.write_bytes(onnx_models[0].read_bytes())
    ws = Workspace.init(tmp_path / "ws")
    known = tmp_path / "kh"
    known.write_text(sshd.known_hosts_line)
    add_device(ws, "evil", transport="ssh", host="127.0.0.1", port=sshd.port, user=sshd.user,
               key=str(sshd.folder / "user_key"), known_hosts=str(known), python=os.sys.executable,
               remote_dir=str(tmp_path / f"remote {evil}"))
    with open_device("evil", ws) as device:
        got = list(device.benchmark([BenchmarkModel(model, evil)], settings(rounds=1)))
    assert got[0].ok and got[0].key == evil
    home = Path(os.path.expanduser("~"))
    for where in (tmp_path, home, Path.cwd(), tmp_path / f"remote {evil}"):
        assert not any(where.glob("PWNED*")), where


def test_silent_server_hits_the_connect_timeout(tmp_path):
    import socket as sk

    from hwnas.devices.inventory import DeviceConfig

    listener = sk.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts (kernel backlog) but never says a word
    try:
        config = DeviceConfig(name="mute", transport="ssh", host="127.0.0.1", port=listener.getsockname()[1],
                              known_hosts=str(tmp_path / "kh"), connect_timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(TransportError, match="cannot connect"):
            SshDevice(config).connect()
        assert time.monotonic() - started < 30
    finally:
        listener.close()


def test_abandoned_batch_stops_the_remote_runner(ssh_workspace, onnx_models):
    from helpers import own_runner_pids

    models = [BenchmarkModel(p, f"{p.stem}-{i}") for i in range(4) for p in onnx_models]  # 20 models
    with open_device("ssh-loop", ssh_workspace) as device:
        batch = device.benchmark(models, settings(rounds=1, runs=200))
        next(batch)
        run_dir = device.last_run_dir
        batch.close()  # the caller stops iterating: the run folder goes, and the runner must notice
        deadline = time.monotonic() + 20
        while own_runner_pids(run_dir, "run") and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not own_runner_pids(run_dir, "run") and not own_runner_pids(run_dir, "worker")
    assert not Path(run_dir).exists()


def test_connection_dropped_during_the_push_is_retried(ssh_workspace, sshd, onnx_models):
    calls = []
    with open_device("ssh-loop", ssh_workspace) as device:
        original = device._push

        def push_with_outage(local, remote):
            if not calls:
                sshd.kill()  # the link dies just before the first file goes out
                threading.Timer(1.0, sshd.start).start()
            calls.append(Path(local).name)
            return original(local, remote)

        device._push = push_with_outage
        got = list(device.benchmark([BenchmarkModel(p, p.stem) for p in onnx_models[:2]], settings(rounds=1)))
    assert len(got) == 2 and all(m.ok for m in got)
    assert calls[0] == calls[1]  # the interrupted push was done again after reconnecting


def test_many_missing_models_travel_as_one_archive(ssh_workspace, onnx_models):
    pushed = []
    models = [BenchmarkModel(p, p.stem) for p in onnx_models]  # 5 missing: bundled
    with open_device("ssh-loop", ssh_workspace) as device:
        original = device._push
        device._push = lambda local, remote: (pushed.append(Path(local).name), original(local, remote))
        got = list(device.benchmark(models, settings(rounds=1)))
        remote = Path(device.root)
    assert all(m.ok for m in got)
    assert pushed == ["runner.py", "models.tar"]
    assert sorted(p.name for p in (remote / "models").iterdir()) == sorted(f"{m.sha256}.onnx" for m in models)
    assert not list(remote.glob("incoming-*"))
