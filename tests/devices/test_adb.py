"""The `adb` transport: Debian's real adb client talking to the ADB-protocol test device (adb_device.py)."""

import ast
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import round_counts

from hwnas.devices import BenchmarkModel, BenchmarkSettings, add_device, open_device
from hwnas.errors import DeviceError, InventoryError, TransportError
from hwnas.workspace import Workspace


def phone_workspace(tmp_path, adb_device, tool=None, **extra):
    ws = Workspace.init(tmp_path / "ws")
    options = dict(transport="adb", serial=adb_device.serial, runtime="tflite",
                   remote_dir=str(adb_device.root / "data/local/tmp/hwnas"), reconnect_timeout_s=30.0)
    if tool:
        options["benchmark_binary"] = str(tool)
    options.update(extra)
    add_device(ws, "phone", **options)
    return ws


def tool_settings(**kw):
    base = dict(runtime="tflite", warmup=2, runs=5, rounds=1, timeout_per_model_s=60)
    base.update(kw)
    return BenchmarkSettings(**base)


def test_check_reads_android_properties(tmp_path, adb_device, benchmark_model_stand_in):
    ws = phone_workspace(tmp_path, adb_device, benchmark_model_stand_in)
    with open_device("phone", ws) as device:
        info = device.info()
    assert info["model"] == "HwnasTestPhone" and info["board_platform"] == "testboard"
    assert info["abi"] == "x86_64" and info["android"] == "14" and info["cores"] >= 1
    assert info["mode"] == "benchmark_model" and info["device_python"] is None


def test_benchmark_model_measures_tflite_and_pushes_once(tmp_path, adb_device, benchmark_model_stand_in,
                                                         tflite_models):
    ws = phone_workspace(tmp_path, adb_device, benchmark_model_stand_in)
    pushes = []
    models = [BenchmarkModel(p, p.stem) for p in tflite_models]
    with open_device("phone", ws) as device:
        original = device._adb

        def adb(args, *a, **kw):
            if args[0] == "push":
                pushes.append([Path(x).name for x in args[1:-1]])
            return original(args, *a, **kw)

        device._adb = adb
        got = list(device.benchmark(models, tool_settings(rounds=2, runs=6, op_profiling=True)))
        first_batch_pushes = list(pushes)
        got_again = list(device.benchmark(models, tool_settings(threads=2, use_gpu=True)))
    assert sorted(m.key for m in got) == sorted(m.key for m in models)
    for m in got + got_again:
        # benchmark_model prints whole microseconds: a tiny model's fastest run can print as 0
        assert m.ok and m.runtime == "tflite" and 0 <= m.min_ms <= m.median_ms <= m.p90_ms and m.mean_ms > 0
        assert m.wall_ms > 0 and m.run_total_ms > 0
    assert all(m.n == 6 for m in got)
    # the tool once, then both models in one `adb push`; nothing the second time
    assert first_batch_pushes == [["benchmark_model"], sorted(f"{m.sha256}.tflite" for m in models)] or \
        first_batch_pushes == [["benchmark_model"], [f"{m.sha256}.tflite" for m in models]]
    assert pushes == first_batch_pushes
    remote = adb_device.root / "data/local/tmp/hwnas/models"
    assert sorted(p.name for p in remote.iterdir()) == sorted(f"{m.sha256}.tflite" for m in models)
    assert all(p.is_file() and not p.is_symlink() for p in remote.iterdir())  # contents, not links
    argv_log = adb_device.root / "data/local/tmp/hwnas/benchmark_model.argv"
    calls = [ast.literal_eval(line) for line in argv_log.read_text().splitlines()]
    assert len(calls) == 2 * 2 + 2  # two rounds of two models, then one round of two
    first = dict(a[2:].split("=", 1) for a in calls[0])
    assert first["num_threads"] == "1" and first["warmup_runs"] == "2" and first["num_runs"] == "3"
    assert first["enable_op_profiling"] == "true" and first["graph"].endswith(".tflite")
    last = dict(a[2:].split("=", 1) for a in calls[-1])
    assert last["use_gpu"] == "true" and last["num_threads"] == "2"


def test_python_on_the_phone_runs_the_runner(tmp_path, adb_device, onnx_models):
    ws = phone_workspace(tmp_path, adb_device, python=sys.executable, runtime="onnxruntime")
    with open_device("phone", ws) as device:
        info = device.info()
        got = list(device.benchmark([BenchmarkModel(p, p.stem) for p in onnx_models[:2]],
                                    BenchmarkSettings(runtime="onnxruntime", warmup=1, runs=4, rounds=2)))
    assert info["mode"] == "runner" and info["runtimes"]["onnxruntime"]
    assert len(got) == 2 and all(m.ok and m.n == 4 and m.runtime_version for m in got)


def _outage(adb_device, seconds=1.5):
    def run():
        adb_device.stop()
        time.sleep(seconds)
        adb_device.start()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_unplugging_the_phone_mid_batch_completes_the_batch_once(tmp_path, adb_device, benchmark_model_stand_in,
                                                                 tflite_models, caplog):
    caplog.set_level(logging.WARNING, logger="hwnas.devices.adb")
    ws = phone_workspace(tmp_path, adb_device, benchmark_model_stand_in)
    models = [BenchmarkModel(p, f"{p.stem}-{i}") for i in range(3) for p in tflite_models]  # 6 models
    outage = []
    with open_device("phone", ws) as device:
        device.progress = lambda m, done, total: outage.append(_outage(adb_device)) if done == 2 else None
        got = list(device.benchmark(models, tool_settings()))
    outage[0].join()
    assert "link lost" in caplog.text  # the batch really went through a reconnect
    assert sorted(m.key for m in got) == sorted(m.key for m in models)
    assert all(m.ok for m in got)


def test_unplugging_the_phone_mid_runner_batch_resumes_without_remeasuring(tmp_path, adb_device, onnx_models,
                                                                           caplog):
    caplog.set_level(logging.WARNING, logger="hwnas.devices.adb")
    ws = phone_workspace(tmp_path, adb_device, python=sys.executable, runtime="onnxruntime")
    models = [BenchmarkModel(p, f"{p.stem}-{i}") for i in range(2) for p in onnx_models]  # 10 models
    outage = []
    with open_device("phone", ws) as device:
        device.keep_runs = True
        device.progress = lambda m, done, total: outage.append(_outage(adb_device)) if done == 2 else None
        # at least 0.3 s per model and round, so the outage (after 2 models) always falls mid-batch
        settings = BenchmarkSettings(runtime="onnxruntime", warmup=1, runs=30, rounds=2, min_seconds=0.6)
        got = list(device.benchmark(models, settings))
        run_dir = Path(device.last_run_dir)
    outage[0].join()
    assert "link lost" in caplog.text
    assert sorted(m.key for m in got) == sorted(m.key for m in models) and all(m.ok for m in got)
    counts = round_counts(run_dir / "results.jsonl")
    assert len(counts) == 20 and set(counts.values()) == {1}


def test_corrupt_model_fails_and_the_batch_goes_on(tmp_path, adb_device, benchmark_model_stand_in, tflite_models,
                                                   corrupt_models):
    ws = phone_workspace(tmp_path, adb_device, benchmark_model_stand_in)
    models = [BenchmarkModel(corrupt_models["tflite"], "bad"), BenchmarkModel(tflite_models[0], "good")]
    with open_device("phone", ws) as device:
        got = {m.key: m for m in device.benchmark(models, tool_settings())}
    assert got["bad"].status == "failed" and "benchmark_model failed" in got["bad"].error
    assert got["good"].ok


def test_slow_model_hits_its_timeout_and_the_device_stays_usable(tmp_path, adb_device, benchmark_model_stand_in,
                                                                 tflite_models):
    ws = phone_workspace(tmp_path, adb_device, benchmark_model_stand_in)
    hang = tmp_path / "hang.tflite"  # the stand-in sleeps on a model ending with this marker
    hang.write_bytes(tflite_models[0].read_bytes() + b"HWNAS_TEST_HANG")
    with open_device("phone", ws) as device:
        got = list(device.benchmark([BenchmarkModel(hang, "slow")], tool_settings(timeout_per_model_s=3.0)))
        assert got[0].status == "failed" and "timed out" in got[0].error
        again = list(device.benchmark([BenchmarkModel(tflite_models[0], "ok")], tool_settings()))
    assert again[0].ok


def test_without_a_tool_or_python_the_error_names_the_fix(tmp_path, adb_device, tflite_models):
    ws = phone_workspace(tmp_path, adb_device)
    with open_device("phone", ws) as device:
        with pytest.raises(DeviceError, match="--benchmark-model PATH"):
            list(device.benchmark([BenchmarkModel(tflite_models[0], "k")], tool_settings()))


def test_hostile_serials_paths_and_names_never_execute(tmp_path, adb_device, benchmark_model_stand_in, tflite_models):
    evil = "a b;touch PWNED1 $(touch PWNED2) `touch PWNED3` 'q\" \\"
    folder = tmp_path / evil
    folder.mkdir()
    model = folder / f"{evil}.tflite"
    model.write_bytes(tflite_models[0].read_bytes())
    ws = phone_workspace(tmp_path, adb_device, benchmark_model_stand_in,
                         remote_dir=str(adb_device.root / f"data/{evil}/hwnas"))
    with open_device("phone", ws) as device:
        got = list(device.benchmark([BenchmarkModel(model, evil)], tool_settings()))
    assert got[0].ok and got[0].key == evil
    with pytest.raises(InventoryError, match="serial must be"):  # a serial never holds a space
        add_device(ws, "spaced-serial", transport="adb", serial="127.0.0.1:1;touch PWNED4 $(touch PWNED5)")
    add_device(ws, "evil-serial", transport="adb", serial="127.0.0.1:1;touch${IFS}PWNED4;$(touch${IFS}PWNED5)")
    with pytest.raises(TransportError):
        open_device("evil-serial", ws).connect()
    for where in (tmp_path, adb_device.root, Path.cwd()):
        assert not any(where.rglob("PWNED*")), where


@pytest.mark.parametrize("shell_v2", [True, False], ids=["shell_v2", "old-phone"])
def test_exit_codes_and_output_survive_with_and_without_shell_v2(tmp_path, adb_server_port, shell_v2,
                                                               benchmark_model_stand_in, tflite_models):
    from adb_device import AdbTestDevice

    phone = AdbTestDevice(tmp_path / "old", shell_v2=shell_v2)
    phone.start()
    try:
        ws = phone_workspace(tmp_path, phone, benchmark_model_stand_in)
        with open_device("phone", ws) as device:
            code, out, _ = device.shell("echo out; echo err >&2; exit 3")
            # without shell_v2 a phone merges stderr into stdout; the exit code survives either way
            assert code == 3 and out == ("out\n" if shell_v2 else "out\nerr\n")
            assert device.shell("printf 'no newline'")[:2] == (0, "no newline")
            got = list(device.benchmark([BenchmarkModel(tflite_models[0], "k")], tool_settings()))
        assert got[0].ok
    finally:
        phone.stop()
        subprocess.run(["adb", "disconnect", phone.serial], capture_output=True, timeout=30)
