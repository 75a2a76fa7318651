"""Fixtures for the device tests: tiny real models, a real sshd on loopback, an ADB test device + real adb."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from adb_device import AdbTestDevice  # noqa: E402
from servers import SSHD, Sshd, free_port  # noqa: E402

# ------------------------------------------------------------------------------------------------------------
# models


def _conv_module(channels: int, kernel: int):
    import torch

    class Op(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(channels, channels, kernel, padding=kernel // 2)

        def forward(self, x):
            return torch.relu(self.conv(x))

    torch.manual_seed(channels * 10 + kernel)
    return Op().eval(), torch.randn(1, channels, 8, 8)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def onnx_models(model_dir) -> list[Path]:
    """Five tiny conv operators exported with torch.onnx.export."""
    import warnings

    import torch

    paths = []
    for i, (channels, kernel) in enumerate([(4, 1), (4, 3), (8, 3), (8, 5), (16, 3)]):
        module, x = _conv_module(channels, kernel)
        path = model_dir / f"op{i}_c{channels}_k{kernel}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), str(path), dynamo=False)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def tflite_models(model_dir) -> list[Path]:
    """Two tiny conv operators converted with litert_torch."""
    import litert_torch

    paths = []
    for channels, kernel in [(4, 3), (8, 1)]:
        module, x = _conv_module(channels, kernel)
        path = model_dir / f"op_c{channels}_k{kernel}.tflite"
        litert_torch.convert(module, (x,)).export(str(path))
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def corrupt_models(model_dir) -> dict[str, Path]:
    onnx_bad = model_dir / "corrupt.onnx"
    onnx_bad.write_bytes(b"\x08\x07this is not a protobuf model" * 7)
    tfl_bad = model_dir / "corrupt.tflite"
    tfl_bad.write_bytes(b"TFL3" + os.urandom(64))
    return {"onnx": onnx_bad, "tflite": tfl_bad}


@pytest.fixture(scope="session")
def hung_onnx_model(model_dir) -> Path:
    """An ONNX Loop with 2**62 iterations: a model that never finishes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body)],
        "hang",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("trip", TensorProto.INT64, [], [2**62]),
         helper.make_tensor("cond", TensorProto.BOOL, [], [True])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = model_dir / "hang.onnx"
    onnx.save(model, str(path))
    assert np is not None
    return path


# ------------------------------------------------------------------------------------------------------------
# a real OpenSSH server on loopback


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if not Path(SSHD).exists():
        pytest.fail("sshd is missing: apt-get install -y openssh-server")
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ssh_workspace(tmp_path, sshd):
    """A workspace with an `ssh-loop` device (known_hosts already trusting the test sshd)."""
    from hwnas.devices import add_device
    from hwnas.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line)
    add_device(ws, "ssh-loop", transport="ssh", host="127.0.0.1", port=sshd.port, user=sshd.user,
               key=str(sshd.folder / "user_key"), runtime="onnxruntime", python=sys.executable,
               remote_dir=str(tmp_path / "remote cache"), known_hosts=str(known), reconnect_timeout_s=30.0)
    return ws


# ------------------------------------------------------------------------------------------------------------
# the ADB test device and a private adb server


@pytest.fixture(scope="session")
def adb_server_port():
    if shutil.which("adb") is None:
        pytest.fail("adb is missing: apt-get install -y adb")
    port = free_port()
    old = os.environ.get("ANDROID_ADB_SERVER_PORT")
    os.environ["ANDROID_ADB_SERVER_PORT"] = str(port)
    yield port
    subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30)
    if old is None:
        os.environ.pop("ANDROID_ADB_SERVER_PORT", None)
    else:
        os.environ["ANDROID_ADB_SERVER_PORT"] = old


STAND_IN = '''#!{python}
"""benchmark_model stand-in: runs the model with LiteRT and prints what TFLite's tool prints."""
import sys, time, os, statistics
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_model.argv"), "a") as log:
    log.write(repr(sys.argv[1:]) + "\\n")
graph, threads = args["graph"], int(args.get("num_threads", "1"))
with open(graph, "rb") as handle:
    if handle.read().endswith(b"HWNAS_TEST_HANG"):  # a test's stand-in for a model that never finishes
        time.sleep(60)
warm, runs = int(args.get("warmup_runs", "1")), int(args.get("num_runs", "50"))
print("INFO: STARTING!")
print("INFO: Log parameter values verbosely: [0]")
print("INFO: Min num runs: [%d]" % runs)
print("INFO: Num threads: [%d]" % threads)
print("INFO: Graph: [%s]" % graph)
t0 = time.perf_counter()
try:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=graph, num_threads=threads)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.random.default_rng(0).standard_normal(d["shape"]).astype(d["dtype"]))
except Exception as exc:
    print("ERROR: Failed to load model %s: %s" % (graph, exc))
    print("ERROR: Benchmarking failed.")
    sys.exit(1)
print("INFO: Loaded model %s" % graph)
print("INFO: The input model file size (MB): %g" % (os.path.getsize(graph) / 1e6))
init_us = (time.perf_counter() - t0) * 1e6
print("INFO: Initialized session in %.3fms." % (init_us / 1000))
def timed(n):
    out = []
    for _ in range(n):
        s = time.perf_counter(); it.invoke(); out.append((time.perf_counter() - s) * 1e6)
    return out
def stat(v):
    if len(v) == 1:
        return "count=1 curr=%d p5=%d median=%d p95=%d" % (v[0], v[0], v[0], v[0])
    q = sorted(v)
    return ("count=%d first=%d curr=%d min=%d max=%d avg=%g std=%d p5=%d median=%d p95=%d" % (
        len(v), v[0], v[-1], q[0], q[-1], sum(v) / len(v), statistics.pstdev(v), q[int(0.05 * (len(q) - 1))],
        statistics.median(v), q[int(0.95 * (len(q) - 1))]))
print("INFO: Running benchmark for at least %d iterations and at least 0.5 seconds but terminate if "
      "exceeding 150 seconds." % warm)
w = timed(max(1, warm))
print("INFO: " + stat(w))
print("")
print("INFO: Running benchmark for at least %d iterations and at least 1 seconds but terminate if "
      "exceeding 150 seconds." % runs)
r = timed(runs)
print("INFO: " + stat(r))
print("")
print("INFO: Inference timings in us: Init: %d, First inference: %d, Warmup (avg): %g, Inference (avg): %g" % (
    init_us, w[0], sum(w) / len(w), sum(r) / len(r)))
'''


@pytest.fixture(scope="session")
def benchmark_model_stand_in(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tool") / "benchmark_model"
    path.write_text(STAND_IN.format(python=sys.executable))
    path.chmod(0o755)
    return path


@pytest.fixture
def adb_device(tmp_path, adb_server_port):
    device = AdbTestDevice(tmp_path / "phone")
    device.start()
    yield device
    device.stop()
    subprocess.run(["adb", "disconnect", device.serial], capture_output=True, timeout=30)
