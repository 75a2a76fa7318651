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
    assert json.loads(listed.stdout)["box"]["runtime"] == "onnxruntime"
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
