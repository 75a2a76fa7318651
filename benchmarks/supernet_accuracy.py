"""Accuracy spread of a supernet's subnets: top-1 of the largest, the smallest and min/median/max of N random
subnets on the fixed validation split (BN recalibrated on training images before each evaluation).

    python benchmarks/supernet_accuracy.py                       # the shipped demo supernet on mnist5k
    python benchmarks/supernet_accuracy.py --checkpoint X.pt --data DIR --n 100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hwnas.data import load_dataset
from hwnas.supernet import demo_checkpoint_path, evaluate, load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(demo_checkpoint_path()))
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--n", type=int, default=100, help="random subnets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write every subnet's result here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    supernet = load_checkpoint(args.checkpoint)
    train, val = load_dataset(args.data, split="train"), load_dataset(args.data, split="val")
    space = supernet.space
    started = time.time()
    rows = []
    named = [("largest", supernet.largest()), ("smallest", supernet.smallest())]
    randoms = [(f"random{i}", a) for i, a in enumerate(space.sample(np.random.default_rng(args.seed), args.n))]
    for name, arch in named + randoms:
        top1 = evaluate(supernet, arch, val, calib_data=train)
        rows.append({"name": name, "arch": arch.key, "top1": top1, "flops_m": space.flops(arch),
                     "params_m": space.params(arch)})
    random_top1 = np.array([r["top1"] for r in rows[2:]])
    print(f"checkpoint {args.checkpoint}; data {args.data} ({len(val)} validation images)")
    for row in rows[:2]:
        print(f"{row['name']:>9}: top-1 {row['top1']:.1f}%  ({row['flops_m']:.2f} M MACs, "
              f"{row['params_m']:.3f} M params, {row['arch']})")
    if len(random_top1):
        print(f"{len(random_top1)} random subnets (seed {args.seed}): top-1 min {random_top1.min():.1f}%, "
              f"median {np.median(random_top1):.1f}%, max {random_top1.max():.1f}%")
        flops = np.array([r["flops_m"] for r in rows[2:]])
        print(f"  M MACs min {flops.min():.2f}, median {np.median(flops):.2f}, max {flops.max():.2f}; "
              f"Spearman(top-1, MACs) {_spearman(random_top1, flops):.2f}")
    print(f"{len(rows)} subnets evaluated in {time.time() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


if __name__ == "__main__":
    main()
