"""Speed-up of parallel top-1 evaluation on Ray: the same archs evaluated in-process, then on a local Ray with 1
and with 2 workers (one CPU each), in one run. Prints evaluations per minute and the ratios.

    python benchmarks/ray_evaluation.py [--archs 16] [--limit 1000]

Each worker loads the supernet and data once (through Ray's object store); the times below include sending
each arch and getting its top-1 back, not the workers' start (printed separately).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--limit", type=int, default=1000, help="images per top-1 evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the 1- and 2-worker runs")
    args = parser.parse_args()

    from hwnas.data import load_dataset
    from hwnas.distributed import RaySettings, ray_session
    from hwnas.distributed.pool import InProcessPool, RayEvaluationPool
    from hwnas.supernet import demo_checkpoint_path, load_checkpoint
    from hwnas.workflows import SupernetAccuracy

    net = load_checkpoint(demo_checkpoint_path())
    objective = SupernetAccuracy(net, load_dataset("mnist5k", split="val"), limit=args.limit)
    archs = net.space.sample(np.random.default_rng(args.seed), args.archs)
    print(f"{args.archs} archs of the demo supernet, {args.limit} images each, {os.cpu_count()} CPUs")

    def timed(pool, label: str) -> tuple[float, dict]:
        t0 = time.perf_counter()
        pool.start([objective])
        started = time.perf_counter() - t0
        t0 = time.perf_counter()
        values = {i: v["top1"] for i, v, _, _ in pool.map_unordered(archs)}
        took = time.perf_counter() - t0
        pool.close()
        print(f"{label:<22} {took:7.1f} s  {60 * len(archs) / took:6.1f} evaluations/min  (start {started:.1f} s)"
              f"  load {os.getloadavg()[0]:.1f}")
        return took, values

    base, ref = timed(InProcessPool(), "in-process")
    ratios = []
    with ray_session(RaySettings(local=True, num_cpus=2)) as ray:
        for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits both
            one, v1 = timed(RayEvaluationPool(ray, 1), "ray, 1 worker")
            two, v2 = timed(RayEvaluationPool(ray, 2), "ray, 2 workers")
            assert v1 == ref and v2 == ref, "top-1 differs between executors"
            ratios.append(one / two)
    print(f"speed-up 2 vs 1 worker: median {np.median(ratios):.2f}x over {len(ratios)} pairs "
          f"({', '.join(f'{r:.2f}' for r in ratios)}); same top-1 for every arch on every executor")
    store_rate()


def store_rate(n: int = 500) -> None:
    """How many measurements per second the driver's store takes (each appended and fsynced): the ceiling of a
    device farm's total measurement rate, whatever the number of devices."""
    import tempfile
    from pathlib import Path

    from hwnas.devices.base import Measurement
    from hwnas.profiling.store import MeasurementStore, StoredMeasurement

    with tempfile.TemporaryDirectory() as folder:
        store = MeasurementStore(Path(folder) / "measurements.jsonl")
        m = Measurement(model_sha256="0" * 64, key="op", device="d", runtime="onnxruntime", runtime_version="1",
                        threads=1, warmup=1, runs=10, median_ms=1.0, mean_ms=1.0, std_ms=0.1, min_ms=0.9,
                        p90_ms=1.1, n=10, timestamp=time.time())
        t0 = time.perf_counter()
        for i in range(n):
            store.append(StoredMeasurement(kind="op", key=f"op{i}", space="s", precision="fp32", measurement=m))
        took = time.perf_counter() - t0
    print(f"driver store: {n / took:.0f} measurements/s appended and fsynced ({1000 * took / n:.2f} ms each)")


if __name__ == "__main__":
    main()
