"""How much of each device's true hypervolume a search that evaluates every network once, in its effective
form, can reach on NAS-Bench-201 (the accelerated loop's policy).

    python benchmarks/front_reach.py [--data ../shared/data/nasbench201]

NAS-Bench-201 lists each network several times: cells that differ only in ops whose output is never used. Their
table values differ by training and measurement noise (and, on the noisy stress variants, by each row's own
noise draw). Per device (the clean devices and the stress variants of `search_variants`), this prints the
hypervolume of the front of the effective-form rows only, as a share of the true front's, scored as
`search_nasbench201.py` scores (top-1 and latency min-max normalised, reference point (1, 1)).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import search_nasbench201 as nb

from hwnas.search import hypervolume, pareto_mask

DEVICES = ("raspi4", "pixel3", "eyeriss", "fpga", "raspi4-noisy", "dsp-pool", "gpu-flat", "gpu-flat-truth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=nb.DATA)
    args = parser.parse_args()
    table = nb.load(args.data.resolve())
    space = table.space
    effective = np.array([space.effective(a).key == a.key for a in table.archs])
    print(f"{effective.sum()} of {len(table.archs)} rows are in their effective form")
    print(f"{'device':16s} {'front rows':>10s} {'reachable':>10s}")
    for device in DEVICES:
        _, norm, best, n_front = nb.problem(table, device)
        F = np.stack([-table.data["cifar10_test_acc"], table.data[f"cifar10_{device}_latency_ms"]], axis=1)[effective]
        print(f"{device:16s} {n_front:10d} {100 * hypervolume(F[pareto_mask(F)], norm) / best:9.2f}%")


if __name__ == "__main__":
    main()
