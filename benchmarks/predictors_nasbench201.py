"""NAS-Bench-201 latency prediction from few measured archs (HW-NAS-Bench's Pixel 3 and Raspberry Pi 4 data).

For each device, training size and seed: fit a predictor on n random archs, evaluate Spearman rho, Kendall tau,
MAPE and the share within +-10% on all the other archs. The 341 archs whose cell output is cut off from its
input (near-zero latency, see the data README) are left out of both sides.

    python benchmarks/predictors_nasbench201.py [--data ../shared/data/nasbench201] [--seeds 5]

With `--few-shot`: the Raspberry Pi 4 and the Pixel 3 each from n target samples, with the other three devices
of the data (the other phone or board, and the eyeriss and fpga estimates) as sources, each a gbm fitted on
1,000 random archs of its device. Printed: each source alone, gbm on the target alone, few-shot from all
sources, and the share of test archs inside the 95% conformal interval.

    python benchmarks/predictors_nasbench201.py --few-shot [--seeds 5] [--sizes 10 20 50 100]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from hwnas.predictors import create_predictor
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.predictors.report import held_out_report
from hwnas.space import create

DEVICES = {"pixel3": "cifar10_pixel3_latency_ms", "raspi4": "cifar10_raspi4_latency_ms"}
SOURCES = {"eyeriss": "cifar10_eyeriss_latency_ms", "fpga": "cifar10_fpga_latency_ms", **DEVICES}
REFERENCE = {"raspi4": "HELP: rho 0.890 from 10 samples (meta-learned); BRP-NAS: 0.847 from 900"}


def load(data_dir: Path) -> tuple[list, dict[str, np.ndarray]]:
    space = create("nasbench201")
    archs, values = [], {d: [] for d in SOURCES}
    with open(data_dir / "nb201_cifar10_latency_via_help.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            arch = space.validate(row["arch_str"])
            if space.is_degenerate(arch):
                continue
            archs.append(arch)
            for device, column in SOURCES.items():
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
    parser.add_argument("--few-shot", action="store_true", help="targets from few samples with the others as sources")
    args = parser.parse_args()
    archs, latency = load(args.data)
    if args.few_shot:
        few_shot(archs, latency, args.seeds, args.sizes)
        return
    print(f"NAS-Bench-201: {len(archs)} non-degenerate archs; {args.seeds} seeds; test = all archs not trained on")
    print(f"{'device':8} {'predictor':10} {'n':>5} {'spearman':>14} {'kendall':>7} {'within10%':>14} "
          f"{'MAPE%':>7} {'fit s':>6}")
    for device, y in ((d, latency[d]) for d in DEVICES):
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


def few_shot(archs: list, latency: dict[str, np.ndarray], seeds: int, sizes: list[int]) -> None:
    print(f"NAS-Bench-201 few-shot: {len(archs)} archs; {seeds} seeds; sources: gbm on 1000 archs of each other "
          "device; test = all archs not in the target's training set")
    print(f"{'target':7} {'predictor':26} {'n':>4} {'spearman':>14} {'within10%':>9} {'MAPE%':>6} {'cov95':>6} "
          f"{'+-95%':>7}")
    for target in DEVICES:
        others = [d for d in SOURCES if d != target]
        results: dict[tuple[str, int], list] = {}
        for seed in range(seeds):
            idx = np.random.default_rng(seed).permutation(len(archs))
            sources = {}
            for j, device in enumerate(others):
                pick = np.random.default_rng(1000 + 10 * seed + j).choice(len(archs), 1000, replace=False)
                sources[device] = create_predictor("gbm", space="nasbench201", seed=seed).fit(
                    [archs[i] for i in pick], latency[device][pick])
            y = latency[target]
            for n in sizes:
                train, test = idx[:n], idx[n:]
                test_archs, train_archs = [archs[i] for i in test], [archs[i] for i in train]
                candidates = {"gbm (target only)": create_predictor("gbm", space="nasbench201", seed=seed),
                              "few-shot <- " + "+".join(others): create_predictor(
                                  "few-shot", space="nasbench201", base=list(sources.values()), seed=seed)}
                for device, source in sources.items():
                    candidates[f"few-shot <- {device}"] = create_predictor("few-shot", space="nasbench201",
                                                                           base=source, seed=seed)
                for label, predictor in candidates.items():
                    predictor.fit(train_archs, y[train])
                    results.setdefault((label, n), []).append(held_out_report(predictor, test_archs, y[test]))
                for device, source in sources.items():
                    rho = evaluate_predictions(y[test], source.predict(test_archs))["spearman"]
                    results.setdefault((f"source {device} alone (rank)", n), []).append(rho)
        for (label, n), reps in results.items():
            if label.startswith("source"):
                print(f"{target:7} {label:26} {n:4d} {np.mean(reps):7.3f}+-{np.std(reps):.3f}")
                continue
            rho = np.array([r.metrics["spearman"] for r in reps])
            print(f"{target:7} {label:26} {n:4d} {rho.mean():7.3f}+-{rho.std():.3f} "
                  f"{np.mean([r.metrics['within_10pct'] for r in reps]) * 100:8.1f}% "
                  f"{np.mean([r.metrics['mape_pct'] for r in reps]):6.1f} "
                  f"{np.mean([r.covered for r in reps]) * 100:5.1f}% "
                  f"{np.median([r.halfwidth_pct for r in reps]):6.1f}%", flush=True)


if __name__ == "__main__":
    main()
