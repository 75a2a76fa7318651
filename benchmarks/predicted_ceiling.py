"""What a latency predictor lets a search deploy on NAS-Bench-201, whatever the search.

    python benchmarks/predicted_ceiling.py [--devices dsp-pool,gpu-flat,pixel3,raspi4] [--fitted 200,500,1000,3000]

For each device and each number of measured archs the linear predictor of `search_nasbench201.py` is fitted on
(`fitted_latency`): its median error over the table and its ceiling, the share of the true hypervolume that the
best front at predicted latency (every arch's top-1 known) gives at measured latency. Then, for the predictor on
the first number of archs, a band: every arch whose predicted latency, widened by +-d, is not dominated by
another's (at least as accurate, and slower than it even at its fastest); measuring all of them and keeping the
measured front gives the printed share, for the printed number of measurements (at d = 0 the band also keeps
archs predicted exactly as fast as a more accurate one: the twins of one network, which the ceiling drops).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from search_nasbench201 import DATA, fitted_latency, load, predicted_best, problem

from hwnas.search import hypervolume, pareto_mask


def band(acc: np.ndarray, predicted: np.ndarray, d: float) -> np.ndarray:
    """Mask of the archs some latency within +-d of their prediction could put on the front."""
    fastest, slowest = predicted * (1 - d), predicted * (1 + d)
    keep = np.zeros(len(acc), dtype=bool)
    bound = np.inf  # the least slowest-case latency among more accurate archs
    order = np.argsort(-acc, kind="stable")
    values, starts = np.unique(-acc[order], return_index=True)
    for i, start in enumerate(starts):
        group = order[start:starts[i + 1] if i + 1 < len(starts) else len(order)]  # equally accurate archs
        keep[group] = fastest[group] <= bound
        bound = min(bound, slowest[group].min())
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--devices", default="dsp-pool,gpu-flat,pixel3,raspi4")
    parser.add_argument("--fitted", default="200,500,1000,3000", help="numbers of measured archs to fit on")
    parser.add_argument("--bands", default="0,0.05,0.1,0.15,0.2")
    args = parser.parse_args()
    table = load(args.data.resolve())
    acc = table.data["cifar10_test_acc"]
    for device in args.devices.split(","):
        _, norm, best, _ = problem(table, device)
        true = table.data[f"cifar10_{device}_latency_ms"]
        print(f"\n## {device}")
        for n in (int(v) for v in args.fitted.split(",")):
            fitted = fitted_latency(table, device, n)
            err = np.median(np.abs(fitted.evaluate(table.archs) / true - 1))
            _, ceiling = predicted_best(table, device, fitted)
            print(f"fitted on {n:5d} archs: median error {100 * err:5.1f}%, ceiling {100 * ceiling / best:6.2f}%")
        n = int(args.fitted.split(",")[0])
        predicted = fitted_latency(table, device, n).evaluate(table.archs)
        for d in (float(v) for v in args.bands.split(",")):
            keep = band(acc, predicted, d)
            F = np.stack([-acc[keep], true[keep]], axis=1)
            print(f"band +-{100 * d:4.1f}% (predictor on {n}): {keep.sum():6d} archs measured, "
                  f"{100 * hypervolume(F[pareto_mask(F)], norm) / best:6.2f}% of the true hypervolume")


if __name__ == "__main__":
    main()
