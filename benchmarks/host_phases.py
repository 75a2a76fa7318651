"""Slow phases of this host: one small onnxruntime convolution timed back to back for a while, its speed in 100 ms
windows relative to the fastest tenth of its runs.

Prints the window levels' quantiles, the share of windows slower than 1.1x and how long those slow phases last:
what a latency measured here has to live with (docs/devices.md, "How a latency is measured").

    python benchmarks/host_phases.py [--seconds 60] [--window 0.1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def conv_session() -> tuple[ort.InferenceSession, dict[str, np.ndarray]]:
    """A 32-channel 3x3 convolution on 28x28 (about 0.1 ms on one core)."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((32, 32, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1] * 4)],
                              "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 28, 28])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, {"x": np.ones((1, 32, 28, 28), np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=0.1, help="window length in seconds")
    args = parser.parse_args()
    session, feeds = conv_session()
    for _ in range(100):
        session.run(None, feeds)
    starts, times = [], []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        start = time.perf_counter()
        session.run(None, feeds)
        end = time.perf_counter()
        starts.append(start - t0)
        times.append(end - start)
    starts_a, times_a = np.array(starts), np.array(times)
    base = float(np.percentile(times_a, 10))
    window = (starts_a // args.window).astype(int)
    levels = np.array([np.median(times_a[window == w]) for w in np.unique(window)]) / base
    slow = levels > 1.1
    lengths, run = [], 0
    for is_slow in slow:
        if is_slow:
            run += 1
        elif run:
            lengths.append(run)
            run = 0
    if run:
        lengths.append(run)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(times)} runs of a {base * 1e3:.3f} ms convolution in {args.seconds:.0f} s (load average {load})")
    quantiles = (5, 25, 50, 75, 90, 95, 99)
    print(f"{args.window * 1000:.0f} ms window levels (median / fastest tenth of the runs), quantiles "
          + ", ".join(f"p{q} {v:.3f}" for q, v in zip(quantiles, np.percentile(levels, quantiles))))
    if lengths:
        seconds = np.array(lengths) * args.window
        print(f"windows slower than 1.1x: {slow.mean() * 100:.1f}%, in {len(lengths)} phases lasting "
              f"{seconds.min():.1f}-{seconds.max():.1f} s (median {np.median(seconds):.1f} s)")
    else:
        print("windows slower than 1.1x: none")


if __name__ == "__main__":
    main()
