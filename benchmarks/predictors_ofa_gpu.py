"""OFA MobileNetV3 subnets with published GPU latency (HELP's data): every predictor that fits on whole subnets,
at k = 10..1000 training subnets, batch 1 and 64, with and without the other GPU as a source.

Per seed: 2,000 subnets are the test set, 2,000 others train the source predictor (gbm on the other GPU's
latency), and the target predictors learn from the first k of the remaining 1,000. Printed per (batch, target,
predictor, k): Spearman, share within +-10%, MAPE, and the share of test subnets inside the 95% conformal
interval, with its half-width (inf: too few cross-validation residuals to back a 95% claim, under about 28).
`lut`/`lut-calibrated` need an operator table, which this data does not have.

    python benchmarks/predictors_ofa_gpu.py [--data ../shared/data/ofa_gpu] [--seeds 3] [--batches 1 64]
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from hwnas.predictors import create_predictor
from hwnas.predictors.report import held_out_report
from hwnas.space import create

GPUS = ("titan_xp", "2080ti")


def load(data_dir: Path) -> tuple[object, list, dict[str, np.ndarray]]:
    space = create("ofa-mbv3", resolutions=list(range(128, 225, 4)))
    archs, columns = [], {}
    with open(data_dir / "ofa_mbv3_gpu_latency.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            archs.append(space.validate({"ks": [int(v) for v in row["ks"].split()],
                                         "e": [int(v) for v in row["e"].split()],
                                         "d": [int(v) for v in row["d"].split()], "r": int(row["r"])}))
            for name, value in row.items():
                if name.endswith("_ms"):
                    columns.setdefault(name, []).append(float(value))
    return space, archs, {k: np.array(v) for k, v in columns.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ofa_gpu"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--targets", nargs="+", default=list(GPUS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 100, 1000])
    args = parser.parse_args()
    space, archs, latency = load(args.data)
    print(f"ofa_gpu: {len(archs)} subnets; {args.seeds} seeds; test 2000, source 2000, target pool 1000 per seed; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'batch':>5} {'target':9} {'predictor':22} {'k':>5} {'spearman':>9} {'within10%':>9} {'MAPE%':>6} "
          f"{'cov95':>6} {'+-95%':>7} {'fit s':>6}")
    for batch in args.batches:
        for target in args.targets:
            source = next(g for g in GPUS if g != target)
            y, y_src = latency[f"{target}_{batch}_ms"], latency[f"{source}_{batch}_ms"]
            results: dict[tuple[str, int], list] = {}
            for seed in range(args.seeds):
                idx = np.random.default_rng(seed).permutation(len(archs))
                test, src, pool = idx[:2000], idx[2000:4000], idx[4000:]
                test_archs = [archs[i] for i in test]
                base = create_predictor("gbm", space=space, seed=seed).fit([archs[i] for i in src], y_src[src])
                rep = held_out_report(base, test_archs, y[test])
                results.setdefault((f"source {source} alone", 0), []).append((rep, 0.0))
                for k in args.sizes:
                    train = pool[:k]
                    for label, name, options in (("gbm", "gbm", {}),
                                                 (f"few-shot <- {source}", "few-shot", {"base": base})):
                        start = time.perf_counter()
                        predictor = create_predictor(name, space=space, seed=seed, **options)
                        predictor.fit([archs[i] for i in train], y[train])
                        fit_s = time.perf_counter() - start
                        results.setdefault((label, k), []).append((held_out_report(predictor, test_archs, y[test]),
                                                                   fit_s))
            for (label, k), reps in results.items():
                rho = np.mean([r.metrics["spearman"] for r, _ in reps])
                w10 = np.mean([r.metrics["within_10pct"] for r, _ in reps])
                mape = np.mean([r.metrics["mape_pct"] for r, _ in reps])
                cov = np.mean([r.covered for r, _ in reps])
                half = np.median([r.halfwidth_pct for r, _ in reps])
                fit_s = np.mean([s for _, s in reps])
                print(f"{batch:5d} {target:9} {label:22} {k:5d} {rho:9.3f} {w10 * 100:8.1f}% {mape:6.1f} "
                      f"{cov * 100:5.1f}% {half:6.1f}% {fit_s:6.1f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[2]:.1f} (15 min)")


if __name__ == "__main__":
    main()
