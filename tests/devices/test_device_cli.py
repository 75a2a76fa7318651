"""`hwnas device add|list|check` against this machine, the test sshd and the test ADB device."""

import json
import sys

from typer.testing import CliRunner

from hwnas.cli.app import app
from hwnas.devices import load_inventory
from hwnas.workspace import Workspace

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_add_list_and_check_local(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    result = invoke("device", "add", "box", "--local", "--runtime", "onnxruntime", "--threads", "2", "-w", str(ws.root))
    assert result.exit_code == 0, result.output
    assert load_inventory(ws)["box"].threads == 2
    listed = invoke("device", "list", "--json", "-w", str(ws.root))
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == {"devices": {"box": {"transport": "local", "runtime": "onnxruntime",
                                                             "threads": 2}}, "errors": []}
    checked = invoke("device", "check", "box", "--json", "-w", str(ws.root))
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.stdout)
    assert report["info"]["runtimes"]["onnxruntime"] and not [p for p in report["problems"] if p["blocking"]]


def test_add_needs_exactly_one_transport(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    result = invoke("device", "add", "x", "--local", "--adb", "serial", "-w", str(ws.root))
    assert result.exit_code != 0
    assert list(ws.devices_dir.iterdir()) == []


def test_check_over_ssh_trusts_new_host_only_when_asked_and_names_the_fix(tmp_path, sshd):
    ws = Workspace.init(tmp_path / "ws")
    known = tmp_path / "kh"
    result = invoke("device", "add", "pi", "--ssh", f"{sshd.user}@127.0.0.1:{sshd.port}", "--key",
                    str(sshd.folder / "user_key"), "--known-hosts", str(known), "--python", "/usr/bin/python3",
                    "--remote-dir", str(tmp_path / "cache"), "-w", str(ws.root))
    assert result.exit_code == 0, result.output
    config = load_inventory(ws)["pi"]
    assert (config.user, config.host, config.port) == (sshd.user, "127.0.0.1", sshd.port)
    refused = invoke("device", "check", "pi", "-w", str(ws.root))
    assert refused.exit_code == 1 and not known.exists()
    checked = invoke("device", "check", "pi", "--trust-new-host", "--json", "-w", str(ws.root))
    assert known.exists()
    report = json.loads(checked.stdout)
    assert report["info"]["cores"] >= 1
    # the system python has no numpy / runtime: the fix is an exact ssh command
    fixes = [p["fix"] for p in report["problems"] if p["blocking"]]
    assert checked.exit_code == 1 and fixes
    assert all(f.startswith(f"ssh -p {sshd.port} {sshd.user}@127.0.0.1 ") and "pip install --user" in f
               for f in fixes)
    venv = invoke("device", "add", "pi", "--ssh", f"{sshd.user}@127.0.0.1:{sshd.port}", "--key",
                  str(sshd.folder / "user_key"), "--known-hosts", str(known), "--python", sys.executable,
                  "--remote-dir", str(tmp_path / "cache"), "--runtime", "onnxruntime", "--force", "-w", str(ws.root))
    assert venv.exit_code == 0
    ok = invoke("device", "check", "pi", "-w", str(ws.root))
    assert ok.exit_code == 0, ok.output
    assert "ready" in ok.stdout


def test_check_over_adb(tmp_path, adb_device, benchmark_model_stand_in):
    ws = Workspace.init(tmp_path / "ws")
    add = invoke("device", "add", "phone", "--adb", adb_device.serial, "--benchmark-model",
                 str(benchmark_model_stand_in), "--remote-dir", str(adb_device.root / "data/local/tmp/hwnas"),
                 "-w", str(ws.root))
    assert add.exit_code == 0, add.output
    checked = invoke("device", "check", "phone", "--json", "-w", str(ws.root))
    assert checked.exit_code == 0, checked.output
    info = json.loads(checked.stdout)["info"]
    assert info["model"] == "HwnasTestPhone" and info["mode"] == "benchmark_model"
    invoke("device", "add", "bare", "--adb", adb_device.serial, "-w", str(ws.root))
    bare = invoke("device", "check", "bare", "-w", str(ws.root))
    assert bare.exit_code == 1 and "--benchmark-model" in bare.stdout


def test_unknown_host_is_one_line_error_naming_the_fix(tmp_path, sshd):
    import subprocess

    ws = Workspace.init(tmp_path / "ws")
    known = tmp_path / "kh"
    invoke("device", "add", "pi", "--ssh", f"{sshd.user}@127.0.0.1:{sshd.port}", "--key",
           str(sshd.folder / "user_key"), "--known-hosts", str(known), "-w", str(ws.root))
    hwnas = [sys.executable, "-c", "from hwnas.cli.app import main; main()"]
    proc = subprocess.run(hwnas + ["device", "check", "pi", "-w", str(ws.root)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "hwnas device check pi --trust-new-host" in lines[0]
    assert not known.exists()


def test_list_shows_the_good_devices_and_one_line_per_bad_file(tmp_path):
    import subprocess

    ws = Workspace.init(tmp_path / "ws")
    assert invoke("device", "add", "box", "--local", "-w", str(ws.root)).exit_code == 0
    (ws.devices_dir / "bad-port.toml").write_text('transport = "ssh"\nhost = "pi"\nport = "abc"\n')
    (ws.devices_dir / "broken.toml").write_bytes(b"runtime = [\n\xff")
    hwnas = [sys.executable, "-c", "from hwnas.cli.app import main; main()"]
    proc = subprocess.run(hwnas + ["device", "list", "-w", str(ws.root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1  # after listing the rest
    assert "box" in proc.stdout and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("error: devices/bad-port.toml: port must be an integer")
    assert lines[1].startswith("error: devices/broken.toml is not UTF-8")
    assert str(ws.root) not in proc.stderr  # the workspace's own path is left out
    listed = subprocess.run(hwnas + ["device", "list", "--json", "-w", str(ws.root)], capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 1
    doc = json.loads(listed.stdout)
    assert list(doc["devices"]) == ["box"]
    assert [e["file"] for e in doc["errors"]] == ["devices/bad-port.toml", "devices/broken.toml"]
    assert all(e["error"].startswith(e["file"]) and "\n" not in e["error"] for e in doc["errors"])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_add_ssh_trusting_a_host_that_cannot_be_reached_writes_no_file(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    port = _free_port()  # nothing listens there: the connection is refused
    argv = ["device", "add", "pi", "--ssh", f"me@127.0.0.1:{port}", "--trust-new-host", "--known-hosts",
            str(tmp_path / "kh"), "-w", str(ws.root)]
    result = invoke(*argv)
    assert result.exit_code == 1
    assert "cannot connect" in str(result.exception) and "was not written" in str(result.exception)
    assert not (ws.devices_dir / "pi.toml").exists() and not (tmp_path / "kh").exists()
    # with --force over a device file that works, a failed first connection leaves that file as it was
    assert invoke("device", "add", "pi", "--local", "-w", str(ws.root)).exit_code == 0
    before = (ws.devices_dir / "pi.toml").read_text()
    assert invoke(*argv, "--force").exit_code == 1
    assert (ws.devices_dir / "pi.toml").read_text() == before


def test_add_ssh_trusting_a_reachable_host_records_it_and_writes_the_file(tmp_path, sshd):
    ws = Workspace.init(tmp_path / "ws")
    known = tmp_path / "kh"
    result = invoke("device", "add", "pi", "--ssh", f"{sshd.user}@127.0.0.1:{sshd.port}", "--key",
                    str(sshd.folder / "user_key"), "--known-hosts", str(known), "--trust-new-host",
                    "--remote-dir", str(tmp_path / "cache"), "-w", str(ws.root))
    assert result.exit_code == 0, result.output
    assert known.exists() and load_inventory(ws)["pi"].port == sshd.port


def test_benchmark_model_must_be_a_file_on_this_machine(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    missing = tmp_path / "benchmark_model_arm64"
    result = invoke("device", "add", "phone", "--adb", "1A2B", "--benchmark-model", str(missing), "-w", str(ws.root))
    assert result.exit_code == 1 and "does not exist on this machine" in str(result.exception)
    folder = invoke("device", "add", "phone", "--adb", "1A2B", "--benchmark-model", str(tmp_path), "-w",
                    str(ws.root))
    assert folder.exit_code == 1 and "is a folder" in str(folder.exception)
    not_adb = invoke("device", "add", "box", "--local", "--benchmark-model", str(tmp_path), "-w", str(ws.root))
    assert not_adb.exit_code == 1 and "for --adb devices" in str(not_adb.exception)
    assert list(ws.devices_dir.iterdir()) == []
    missing.write_bytes(b"\x7fELF")
    ok = invoke("device", "add", "phone", "--adb", "1A2B", "--benchmark-model", str(missing), "-w", str(ws.root))
    assert ok.exit_code == 0, ok.output
    assert load_inventory(ws)["phone"].benchmark_binary == str(missing.resolve())


def test_waiting_for_the_device_lock_is_printed_while_it_waits(tmp_path, onnx_models):
    """Another batch holds the device (its lock, here held by this test): `hwnas bench` says so on stderr while
    it waits, then gives up after lock_timeout_s with one line."""
    import fcntl
    import os
    import subprocess

    from hwnas.devices.inventory import add_device
    from hwnas.devices.runner import machine_key

    ws = Workspace.init(tmp_path / "ws")
    add_device(ws, "box", transport="local", runtime="onnxruntime", lock_timeout_s=6.0)
    tmp = tmp_path / "tmp"  # the runner's temporary folder, so the lock is this test's own
    tmp.mkdir()
    fd = os.open(tmp / f"hwnas-device-{machine_key()}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": 4242, "since": 0}).encode())
        proc = subprocess.Popen([sys.executable, "-c", "from hwnas.cli.app import main; main()", "bench",
                                 str(onnx_models[0]), "--device", "box", "-w", str(ws.root)],
                                stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "TMPDIR": str(tmp)})
        first = proc.stderr.readline()  # printed while it waits, before it gives up
        assert proc.poll() is None, first
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 1
    finally:
        os.close(fd)
    assert first.startswith("device box: waiting for another batch to finish measuring there (runner pid 4242")
    assert "waiting up to 6 s, lock_timeout_s" in first
    assert rest.strip().splitlines()[-1].startswith("error: device box is busy")
