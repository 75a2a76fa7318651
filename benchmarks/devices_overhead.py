"""Transport overhead and repeatability: 200 small operator models on `local` and over `ssh` to loopback.

Prints, per transport and batch: wall time, time inside the runtime, per-model overhead
((batch wall - sum of run time) / models; target < 20 ms) and the fixed cost of a one-model batch; then the
repeatability of two separate batches of the same models (share of models whose medians differ by <= 3%).

    python benchmarks/devices_overhead.py [--models 200] [--runs 50] [--rounds 3] [--no-ssh]
                                          [--fresh-session] [--min-seconds S]

The ssh part starts its own /usr/sbin/sshd on 127.0.0.1 (generated keys, private folder) and stops it after.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwnas.devices import BenchmarkModel, BenchmarkSettings, DeviceConfig, device_from_config


def make_op_models(folder: Path, count: int) -> list[BenchmarkModel]:
    """`count` distinct Conv(+ReLU) operators with small shapes (like a space's operator table)."""
    rng = np.random.default_rng(0)
    models = []
    shapes = [(c, k, hw, s) for c in (8, 16, 24, 32, 48) for k in (1, 3, 5, 7) for hw in (7, 14, 28) for s in (1, 2)]
    for i in range(count):
        cin, k, hw, stride = shapes[i % len(shapes)]
        cout = cin * (1 + i // len(shapes))
        weight = numpy_helper.from_array(rng.standard_normal((cout, cin, k, k)).astype(np.float32), "w")
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[k, k], strides=[stride, stride],
                                  pads=[k // 2] * 4),
                 helper.make_node("Relu", ["c"], ["y"])]
        out_hw = (hw + 2 * (k // 2) - k) // stride + 1
        graph = helper.make_graph(nodes, f"op{i}", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  [1, cin, hw, hw])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out_hw, out_hw])],
                                  [weight])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = folder / f"conv_{i:03d}_c{cin}x{cout}_k{k}_hw{hw}_s{stride}.onnx"
        onnx.save(model, str(path))
        models.append(BenchmarkModel(path, path.stem))
    return models


class LoopbackSshd:
    """A private sshd on 127.0.0.1 with generated keys."""

    def __init__(self, folder: Path):
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        for name in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
        shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
        host = (folder / "host_key.pub").read_text().split()
        (folder / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host[0]} {host[1]}\n")
        (folder / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nPidFile {folder / 'pid'}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\nUsePAM no\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(folder / "sshd_config")],
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def config(self, remote: Path) -> DeviceConfig:
        return DeviceConfig(name="loopback-ssh", transport="ssh", host="127.0.0.1", port=self.port,
                            user=getpass.getuser(), key=str(self.folder / "user_key"),
                            known_hosts=str(self.folder / "known_hosts"), python=sys.executable,
                            remote_dir=str(remote), runtime="onnxruntime")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run_batch(device, models, settings):
    start = time.monotonic()
    got = list(device.benchmark(models, settings))
    wall_s = time.monotonic() - start
    run_ms = sum(m.run_total_ms or 0.0 for m in got)
    failed = sum(not m.ok for m in got)
    return {m.key: m for m in got}, wall_s, run_ms, failed


def report(name, device, models, settings):
    print(f"\n== {name}: {len(models)} models, {settings.runtime}, {settings.threads} thread, warm-up "
          f"{settings.warmup}, {settings.runs} runs over {settings.rounds} interleaved rounds"
          f"{', fresh session per round' if settings.fresh_session else ''}"
          f"{f', at least {settings.min_seconds} s per model' if settings.min_seconds else ''}")
    pushed = []
    original = device._push
    device._push = lambda local, remote: (pushed.append(local), original(local, remote))
    batches = []
    for label in ("batch A", "batch B"):
        pushed.clear()
        by_key, wall_s, run_ms, failed = run_batch(device, models, settings)
        overhead_ms = (wall_s * 1000.0 - run_ms) / len(models)
        print(f"{label}: wall {wall_s:7.2f} s | in runtime {run_ms / 1000:6.2f} s | overhead per model "
              f"{overhead_ms:6.2f} ms | pushed {len(pushed)} files | failed {failed}")
        batches.append(by_key)
    _, wall_one, run_one, _ = run_batch(device, models[:1], settings)
    print(f"one-model batch (fixed cost per batch: start, manifest, runner start-up, cleanup): "
          f"{wall_one * 1000 - run_one:7.1f} ms")
    diffs = [abs(batches[0][k].median_ms - batches[1][k].median_ms) / batches[0][k].median_ms
             for k in batches[0] if batches[0][k].ok and batches[1][k].ok]
    within = sum(d <= 0.03 for d in diffs) / len(diffs)
    ratio = statistics.median(batches[1][k].median_ms / batches[0][k].median_ms for k in batches[0]
                              if batches[0][k].ok and batches[1][k].ok)
    raw = [abs(batches[0][k].raw_median_ms - batches[1][k].raw_median_ms) / batches[0][k].raw_median_ms
           for k in batches[0] if batches[0][k].ok and batches[1][k].ok]
    print(f"repeatability of the median over every sample (raw_median_ms): "
          f"{sum(d <= 0.03 for d in raw) / len(raw) * 100:5.1f}% within 3%")
    print(f"repeatability of median_ms (the fastest round): {within * 100:5.1f}% of models within 3% across the "
          f"two batches "
          f"(median |diff| {statistics.median(diffs) * 100:.2f}%, p90 {np.percentile(diffs, 90) * 100:.2f}%, "
          f"median B/A ratio {ratio:.3f}, median latency "
          f"{statistics.median(m.median_ms for m in batches[0].values() if m.ok):.3f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ssh", action="store_true")
    parser.add_argument("--fresh-session", action="store_true", help="load each model anew for every round")
    parser.add_argument("--min-seconds", type=float, default=0.0, help="run each model at least this long")
    args = parser.parse_args()
    settings = BenchmarkSettings(runtime="onnxruntime", threads=1, warmup=args.warmup, runs=args.runs,
                                 rounds=args.rounds, fresh_session=args.fresh_session, min_seconds=args.min_seconds)
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        folder = Path(tmp)
        (folder / "models").mkdir()
        t0 = time.monotonic()
        models = make_op_models(folder / "models", args.models)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"built {len(models)} ONNX operator models in {time.monotonic() - t0:.1f} s; machine: "
              f"{os.cpu_count()} cores, load average {load}")
        with device_from_config(DeviceConfig(name="local", transport="local", runtime="onnxruntime")) as device:
            report("local", device, models, settings)
        if not args.no_ssh:
            (folder / "sshd").mkdir()
            sshd = LoopbackSshd(folder / "sshd")
            try:
                with device_from_config(sshd.config(folder / "remote cache")) as device:
                    report("ssh to 127.0.0.1", device, models, settings)
            finally:
                sshd.stop()


if __name__ == "__main__":
    main()
