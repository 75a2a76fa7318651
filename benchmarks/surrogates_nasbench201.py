"""Why 99% of the NAS-Bench-201 hypervolume is hard to reach with few evaluations.

Prints, for CIFAR-10 test error vs Raspberry Pi 4 and Pixel 3 latency:
- how many archs, chosen with hindsight (greedy by hypervolume gain), reach 99% of the best hypervolume;
- the best hypervolume left without the archs within a few points of top-1 of the front at their latency;
- how good an accuracy surrogate must be: a local search around the front with top-1 guessed within 0, 0.5 or 1
  point needs how many evaluations to 99% (Pi 4);
- how noisy the measured latency is: the median error left by a linear fit on all archs, and how much slower an
  arch with ops whose output is never used is than its effective form (the same network without them);
and, for accuracy surrogates fitted on n random archs, Kendall tau over all archs and within the most accurate
5%, on the features the accelerated loop uses (`ArchFeatures`: the live-cell one-hot, log FLOPs and params, and
the cell's structure descriptors).

With --shortfall N, also where the accelerated loop (default settings, both objectives expensive) stands after N
evaluations: the hypervolume it still lacks, split by latency band, mean over 20 seeds; and the best hypervolume
with each effective form counted once (the loop never validates two archs that compute the same network).

    python benchmarks/surrogates_nasbench201.py [--seeds 5] [--n 50,100] [--shortfall 45]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import kendalltau
from search_nasbench201 import DATA, load, problem

from hwnas.search import Normalization, hypervolume, pareto_mask
from hwnas.search.pareto import hypervolume_gains
from hwnas.search.surrogate import ArchFeatures


def surrogates(seed: int) -> dict:
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.linear_model import RidgeCV
    from xgboost import XGBRegressor

    return {
        "ridge": RidgeCV(alphas=np.logspace(-3, 3, 13)),
        "extra trees": ExtraTreesRegressor(200, random_state=seed),
        "xgboost": XGBRegressor(n_estimators=200, max_depth=4, learning_rate=0.1, random_state=seed),
        "gaussian process": GaussianProcessRegressor(ConstantKernel() * RBF(2.0) + WhiteKernel(1e-2),
                                                     normalize_y=True, random_state=seed),
    }


def latency_noise(table, device: str) -> None:
    from sklearn.linear_model import LinearRegression

    space = table.space
    lat = np.asarray(table.data[f"cifar10_{device}_latency_ms"])
    effective = [space.effective(a) for a in table.archs]
    X = space.encode(effective, "onehot")
    fit = LinearRegression().fit(X, lat).predict(X)
    print(f"  latency: a linear fit on the effective one-hot of all archs leaves "
          f"{100 * np.median(np.abs(fit / lat - 1)):.1f}% median error")
    row = {a.key: i for i, a in enumerate(table.archs)}
    ratios = [lat[i] / lat[row[e.key]] for i, (a, e) in enumerate(zip(table.archs, effective, strict=True))
              if e.key != a.key and e.key in row]
    print(f"  {len(ratios)} archs have ops whose output is never used; each is slower than its effective form "
          f"in {100 * np.mean(np.array(ratios) > 1):.0f}% of cases, by {100 * (np.median(ratios) - 1):.0f}% "
          f"at the median")


def local_search_with_noisy_guesses(table, device: str, sigmas=(0.0, 0.5, 1.0), seeds=range(40, 60)) -> None:
    """How good an accuracy surrogate must be: from 20 archs spread over the FLOPs range (as the accelerated loop
    starts), evaluate one at a time the one-edge neighbour of the validated front whose guessed top-1 (the true
    one plus Gaussian error of `sigma` points, latency exact) adds the most hypervolume. Median evaluations to 99%."""
    from hwnas.search.sampling import sample_spread
    from hwnas.space.nasbench201 import EDGES, OPS, NB201Arch

    space, acc = table.space, np.asarray(table.data["cifar10_test_acc"])
    lat = np.asarray(table.data[f"cifar10_{device}_latency_ms"])
    row = {a.key: i for i, a in enumerate(table.archs)}
    _, norm, best, _ = problem(table, device)

    def neighbours(i: int) -> list[int]:
        ops = space.effective(table.archs[i]).ops
        out = [tuple(o if j != e else v for j, o in enumerate(ops)) for e in range(len(EDGES)) for v in range(len(OPS))]
        return [row[k] for k in (NB201Arch(o).key for o in out if o != ops) if k in row]

    for sigma in sigmas:
        needed = []
        for seed in seeds:
            guess = acc + np.random.default_rng(seed + 999).normal(0, sigma, len(acc))
            done = [row[a.key] for a in sample_spread(space, np.random.default_rng(seed), 20, set(),
                                                      admissible=table.__contains__)]
            while len(done) < 400:
                F = np.stack([-acc[done], lat[done]], axis=1)
                front = F[pareto_mask(F)]
                if hypervolume(front, norm) >= 0.99 * best:
                    break
                cands = sorted({j for i in np.array(done)[pareto_mask(F)] for j in neighbours(i)} - set(done))
                gains = hypervolume_gains(norm.apply(front), norm.apply(np.stack([-guess[cands], lat[cands]], 1)),
                                          norm.ref_point)
                done.append(cands[int(np.argmax(gains))])
            needed.append(len(done))
        print(f"  local search, top-1 guessed within {sigma} points (Gaussian): median {np.median(needed):.0f} "
              f"evaluations to 99% (seeds {seeds.start}-{seeds.stop - 1})")


BANDS_MS = {"raspi4": (0, 3, 6, 12, 20, 30, 45, np.inf), "pixel3": (0, 1.2, 2.5, 5, 8, 12, 18, np.inf)}


def _attainment(F: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Normalised error of the best point at or under each normalised latency of `grid` (1 where none is)."""
    out = np.ones(len(grid))
    for err, lat in F:
        out = np.where(grid >= lat, np.minimum(out, err), out)
    return out


def shortfall_by_latency(table, device: str, evals: int, seeds=range(20)) -> None:
    """Where the accelerated loop's hypervolume falls short after `evals` evaluations: the area between the
    true front's attainment curve and the loop's, per latency band, in % of the best hypervolume."""
    from hwnas.search import Evaluator, accelerated_search

    objectives, norm, best, _ = problem(table, device)
    lat = np.asarray(table.data[f"cifar10_{device}_latency_ms"])
    F = norm.apply(np.stack([-np.asarray(table.data["cifar10_test_acc"]), lat], axis=1))
    grid = np.linspace(0.0, 1.0, 20001)
    true = _attainment(F[pareto_mask(F)], grid)
    lo, hi = table.bounds(f"cifar10_{device}_latency_ms")
    ms = lo + grid * (hi - lo)
    edges = BANDS_MS[device]
    masks = [(ms >= a) & (ms < b) & (ms >= lat.min()) for a, b in zip(edges, edges[1:], strict=False)]
    a_lo, a_hi = table.bounds("cifar10_test_acc")
    rows, points = [], []
    for seed in seeds:
        ev = Evaluator(table.space, objectives, budget=evals, normalization=norm, admissible=table.__contains__)
        accelerated_search(ev, seed=seed)
        found = norm.apply(ev.F(ev.records))
        gap = _attainment(found[pareto_mask(found)], grid) - true
        rows.append([gap[m].sum() * (grid[1] - grid[0]) / best * 100 for m in masks])
        points.append([gap[m].mean() * (a_hi - a_lo) if m.any() else 0.0 for m in masks])
    rows, points = np.array(rows), np.array(points)
    bands = "  ".join(f"{a:g}-{b:g} ms {m:.2f}% ({p:.1f} pt)" for a, b, m, p in
                      zip(edges, edges[1:], rows.mean(axis=0), points.mean(axis=0), strict=False))
    print(f"  after {evals} evaluations the loop lacks {rows.sum(axis=1).mean():.2f}% of the best hypervolume "
          f"(mean of {len(seeds)} seeds; 99% allows 1%), by latency band (and how many points of top-1 below the "
          f"true front it is there, on average over the band): {bands}")
    first = rows[:, 0]
    print(f"  in the fastest band, {int((first > 0.1).sum())} of {len(seeds)} seeds lack more than 0.1% "
          f"(mean {first.mean():.2f}%)")
    space = table.space
    own = np.array([space.effective(a).key == a.key for a in table.archs])
    kept = F[own]
    unit = Normalization((0.0, 0.0), (1.0, 1.0), (1.0, 1.0))  # the points are normalised already
    print(f"  with each effective form counted once (its own arch string), the best is "
          f"{100 * hypervolume(kept[pareto_mask(kept)], unit) / best:.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", default="50,100")
    parser.add_argument("--shortfall", type=int, default=0, metavar="N",
                        help="also run the accelerated loop for N evaluations on 20 seeds and print where its "
                             "hypervolume falls short (about 2 minutes per device)")
    args = parser.parse_args()
    table = load(DATA.resolve())
    acc = table.data["cifar10_test_acc"]
    unit = Normalization((0.0, 0.0), (1.0, 1.0), (1.0, 1.0))
    for device in ("raspi4", "pixel3"):
        _, norm, best, _ = problem(table, device)
        F = np.stack([-acc, table.data[f"cifar10_{device}_latency_ms"]], axis=1)
        points, chosen = norm.apply(F), np.zeros((0, 2))
        while hypervolume(chosen, unit) < 0.99 * best if len(chosen) else True:
            i = int(np.argmax(hypervolume_gains(chosen, points, norm.ref_point)))
            chosen = np.vstack([chosen, points[i:i + 1]])
            chosen = chosen[pareto_mask(chosen)]
        print(f"{device}: {len(chosen)} archs chosen with hindsight reach 99% of the best hypervolume")
        # each arch's shortfall: how far its top-1 is below the best top-1 at or under its latency
        order = np.argsort(F[:, 1], kind="stable")
        gap = np.empty(len(acc))
        gap[order] = np.maximum.accumulate(acc[order]) - acc[order]
        for t in (0.25, 0.5, 1.0):
            keep = gap > t
            hv = hypervolume(F[keep][pareto_mask(F[keep])], norm) / best
            print(f"  without the {int((~keep).sum())} archs within {t} points of the best top-1 at their "
                  f"latency: at best {100 * hv:.2f}%")
        latency_noise(table, device)
        if device == "raspi4":
            local_search_with_noisy_guesses(table, device)
        if args.shortfall:
            shortfall_by_latency(table, device, args.shortfall)
    features = ArchFeatures(table.space)
    X = features.fit(table.archs)(table.archs)
    top = acc >= np.quantile(acc, 0.95)
    print(f"\naccuracy surrogates, mean of {args.seeds} seeds: Kendall tau over all archs / within the top 5%")
    for n in (int(v) for v in args.n.split(",")):
        scores: dict[str, list[tuple[float, float]]] = {}
        for seed in range(args.seeds):
            train = np.random.default_rng(seed).choice(len(acc), n, replace=False)
            for name, model in surrogates(seed).items():
                pred = model.fit(X[train], acc[train]).predict(X)
                scores.setdefault(name, []).append((kendalltau(pred, acc)[0], kendalltau(pred[top], acc[top])[0]))
        for name, vals in scores.items():
            tau_all, tau_top = np.mean(vals, axis=0)
            print(f"  n={n:<4} {name:<17} {tau_all:6.3f} / {tau_top:6.3f}")


if __name__ == "__main__":
    main()
