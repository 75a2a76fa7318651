"""NAS-Bench-201 latency prediction from few measured archs (HW-NAS-Bench's Pixel 3 and Raspberry Pi 4 data).

For each device, training size and seed: fit a predictor on n random archs, evaluate Spearman rho, Kendall tau,
MAPE and the share within +-10% on all the other archs. The 341 archs whose cell output is cut off from its
input (near-zero latency, see the data README) are left out of both sides.

    python benchmarks/predictors_nasbench201.py [--data ../shared/data/nasbench201] [--seeds 5]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from hwnas.predictors import create_predictor
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.space import create

DEVICES = {"pixel3": "cifar10_pixel3_latency_ms", "raspi4": "cifar10_raspi4_latency_ms"}
REFERENCE = {"raspi4": "HELP: rho 0.890 from 10 samples (meta-learned); BRP-NAS: 0.847 from 900"}


def load(data_dir: Path) -> tuple[list, dict[str, np.ndarray]]:
    space = create("nasbench201")
    archs, values = [], {d: [] for d in DEVICES}
    with open(data_dir / "nb201_cifar10_latency_via_help.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            arch = space.validate(row["arch_str"])
            if space.is_degenerate(arch):
                continue
            archs.append(arch)
            for device, column in DEVICES.items():
                values[device].append(float(row[column]))
    return archs, {d: np.array(v) for d, v in values.items()}


def noise_ceiling(archs: list, y: np.ndarray) -> tuple[float, float]:
    """Share within +-10% and Spearman of an in-sample oracle that knows the median latency of every group of
    archs with the same multiset of edge operations: how much of the spread no op-count model can explain."""
    groups: dict[tuple, list[int]] = {}
    for i, arch in enumerate(archs):
        groups.setdefault(tuple(sorted(arch.ops)), []).append(i)
    pred = np.empty_like(y)
    for members in groups.values():
        pred[members] = np.median(y[members])
    m = evaluate_predictions(y, pred)
    return m["within_10pct"], m["spearman"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/nasbench201"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 100, 900])
    parser.add_argument("--predictors", nargs="+", default=["gbm"])
    args = parser.parse_args()
    archs, latency = load(args.data)
    print(f"NAS-Bench-201: {len(archs)} non-degenerate archs; {args.seeds} seeds; test = all archs not trained on")
    print(f"{'device':8} {'predictor':10} {'n':>5} {'spearman':>14} {'kendall':>7} {'within10%':>14} "
          f"{'MAPE%':>7} {'fit s':>6}")
    for device, y in latency.items():
        for name in args.predictors:
            for n in args.sizes:
                rows = []
                for seed in range(args.seeds):
                    rng = np.random.default_rng(seed)
                    idx = rng.permutation(len(archs))
                    train, test = idx[:n], idx[n:]
                    start = time.perf_counter()
                    predictor = create_predictor(name, space="nasbench201", seed=seed)
                    predictor.fit([archs[i] for i in train], y[train])
                    fit_s = time.perf_counter() - start
                    pred = predictor.predict([archs[i] for i in test])
                    m = evaluate_predictions(y[test], pred)
                    rows.append((m["spearman"], m["kendall"], m["within_10pct"], m["mape_pct"], fit_s))
                r = np.array(rows)
                mean, std = r.mean(axis=0), r.std(axis=0)
                print(f"{device:8} {name:10} {n:5d} {mean[0]:7.3f}+-{std[0]:.3f} {mean[1]:7.3f} "
                      f"{mean[2] * 100:7.1f}+-{std[2] * 100:4.1f}% {mean[3]:7.2f} {mean[4]:6.2f}")
        share, rho = noise_ceiling(archs, y)
        print(f"  ({device} context: an in-sample oracle knowing each op-multiset group's median latency reaches "
              f"{share * 100:.1f}% within 10%, Spearman {rho:.3f})")
        if device in REFERENCE:
            print(f"  ({device} reference: {REFERENCE[device]})")


if __name__ == "__main__":
    main()
