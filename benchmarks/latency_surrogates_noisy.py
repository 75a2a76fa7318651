"""How well the loop's latency surrogates learn a noisy device: each fitted on the raspi4-noisy latency of n random
NAS-Bench-201 networks (the Pi 4's latency times a fixed lognormal(0.15) draw per arch), scored on the noise-free
Pi 4 latency of the most accurate 10% of networks (where the front is): median |relative error| and Spearman
correlation, mean over 5 draws of the training archs.

    python benchmarks/latency_surrogates_noisy.py [--n 30,60,120] [--draws 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import search_nasbench201 as nb
from scipy.stats import spearmanr

from hwnas.search.surrogate import additive_surrogate, default_surrogate, latency_surrogate, lookup_surrogate

MODELS = {"default (ensemble with trees)": default_surrogate, "additive (lookup table + trees)": additive_surrogate,
          "lookup table alone": lookup_surrogate, "chosen out of bag (the loop's)": latency_surrogate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="30,60,120", help="training archs per fit")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    nb._load_table(nb.DATA.resolve())
    table, space = nb._TABLE, nb._TABLE.space
    noisy, clean = table.data["cifar10_raspi4-noisy_latency_ms"], table.data["cifar10_raspi4_latency_ms"]
    acc = table.data["cifar10_test_acc"]
    networks = np.array([i for i, a in enumerate(table.archs) if space.effective(a).key == a.key])
    top = networks[acc[networks] >= np.quantile(acc[networks], 0.9)]
    test = [table.archs[i] for i in top]
    for n in map(int, args.n.split(",")):
        print(f"\n{n} training archs (median |error| vs noise-free latency, Spearman), mean of {args.draws} draws")
        for name, make in MODELS.items():
            scores = []
            for draw in range(args.draws):
                train = np.random.default_rng(draw).choice(networks, n, replace=False)
                model = make(space, "latency_ms[raspi4-noisy]", draw).fit([table.archs[i] for i in train],
                                                                          noisy[train])
                p = model.predict(test)
                scores.append((np.median(np.abs(p / clean[top] - 1)), spearmanr(p, clean[top])[0]))
            err, rho = np.mean(scores, axis=0)
            print(f"  {name:<34} {100 * err:5.1f}%  {rho:.3f}", flush=True)


if __name__ == "__main__":
    main()
