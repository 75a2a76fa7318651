"""NAS-Bench-201 search benchmark: CIFAR-10 test error vs measured device latency (Raspberry Pi 4, Pixel 3).

--devices also takes eyeriss, fpga and the stress variants of `search_variants` (raspi4-noisy, gpu-flat,
dsp-pool).

The 341 degenerate archs are excluded, each objective is normalised to [0, 1] over the table, the reference
point is (1, 1), and the exhaustive front gives the best hypervolume. For each algorithm and seed, prints the
number of expensive evaluations (table lookups) needed to reach 95%, 98% and 99% of it, and the medians.

    python benchmarks/search_nasbench201.py [--seeds 20] [--budget 2000] [--devices raspi4,pixel3] [--latency-known]
                                            [--latency-fitted 200] [--jobs 2]

With --latency-known only top-1 costs an evaluation and latency is exact; with --latency-fitted N latency comes
from a linear predictor fitted on N measured archs (hwnas's own setting: a fitted device predictor), and two rows
per algorithm are printed: "deployed", the hypervolume of the search's front at its archs' measured latency, and
"own problem", the search's front at predicted latency against the best front at predicted latency (how well the
search solved the problem it was given). The predictor's ceiling is printed as well: the deployed hypervolume of
the best front at predicted latency, what a search that evaluated every arch would deploy. "deployed" can pass
the ceiling part-way (a partial front can be luckier than the full one): it is not monotone in the budget.
With --surrogate
hindsight-top1, hindsight-latency or hindsight-both the loop's surrogate for that objective is replaced by
out-of-fold predictions of a model fitted on the whole table: how far better surrogates could take the loop.
With --latency-known --reuse-from DEVICE each search first runs on DEVICE and the search on the other device
takes its top-1 evaluations for free (`hwnas search --reuse`). With --prior cifar100 (or imagenet16) a model is
fitted, before the search, on --prior-archs random archs' top-1 on that other dataset (a related task's results,
never counted as evaluations); the loop starts from its predicted front and its top-1 surrogate also gets its
prediction (`hwnas search --prior`).
NSGA-II gets the same prior as it can use one: its first population is the prior's predicted front among 2,000
random archs (`prior_front`: by non-dominated rank of predicted top-1 against latency where latency is known,
else against FLOPs), as the loop's first archs are.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np
from search_variants import add_stress_variants

from hwnas.objective import FunctionObjective
from hwnas.search import (
    Evaluator,
    Normalization,
    accelerated_search,
    hypervolume,
    nsga2_search,
    pareto_mask,
    random_search,
)
from hwnas.search.prior import PriorModel
from hwnas.search.surrogate import (
    additive_surrogate,
    default_surrogate,
    lookup_surrogate,
    loop_surrogate,
    ridge_surrogate,
)
from hwnas.search.tabular import Table

DEVICES = ("raspi4", "pixel3", "eyeriss", "fpga")  # measured (Pi 4, Pixel 3) and simulated (Eyeriss, FPGA)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nasbench201"
TARGETS = (0.95, 0.98, 0.99)
VERSIONED = ("numpy", "scipy", "scikit-learn", "xgboost", "pymoo", "torch")
PRIORS = {"cifar100": "cifar100_test_acc", "imagenet16": "ImageNet16-120_test_acc"}  # related tasks' top-1


def load(data: Path) -> Table:
    """The non-degenerate archs with CIFAR-10 top-1, the four devices' latency, the related tasks' top-1 and the
    stress variants' latency (`search_variants`): each device's latency is `cifar10_<device>_latency_ms`."""
    table = Table.from_csv([data / "nb201_accuracy.csv", data / "nb201_cifar10_latency_via_help.csv"],
                           key="arch_str", columns=["cifar10_test_acc", *(f"cifar10_{d}_latency_ms" for d in DEVICES),
                                                    *PRIORS.values()])
    table = table.filter(lambda a: not table.space.is_degenerate(a))
    add_stress_variants(table)
    return table


def problem(table: Table, device: str, latency_known: bool = False, latency_fitted: int = 0):
    acc = table.objective("cifar10_test_acc", direction="max", name="top1")
    # latency_known: latency is a cheap objective (as after `hwnas profile` + `hwnas fit`, here exact); only
    # top-1 costs an evaluation. Archs off the table (degenerate) get the worst latency when a search asks.
    # latency_fitted: latency is cheap, from a predictor fitted on that many measured archs.
    lat = (fitted_latency(table, device, latency_fitted) if latency_fitted else
           table.objective(f"cifar10_{device}_latency_ms", name=f"latency_ms[{device}]",
                           expensive=not latency_known, missing="worst" if latency_known else "error"))
    a_lo, a_hi = table.bounds("cifar10_test_acc")
    l_lo, l_hi = table.bounds(f"cifar10_{device}_latency_ms")
    norm = Normalization((-a_hi, l_lo), (-a_lo, l_hi), (1.0, 1.0))
    F = np.stack([-table.data["cifar10_test_acc"], table.data[f"cifar10_{device}_latency_ms"]], axis=1)
    best = hypervolume(F[pareto_mask(F)], norm)
    return [acc, lat], norm, best, int(pareto_mask(F).sum())


def fitted_latency(table: Table, device: str, n: int) -> FunctionObjective:
    """A cheap latency objective as a device predictor gives it: a linear model on the effective one-hot,
    fitted on the measured latency of `n` archs drawn at random (the same draw for every seed and algorithm)."""
    from sklearn.linear_model import LinearRegression

    space = table.space
    fit_on = [table.archs[i] for i in np.random.default_rng(2026).choice(len(table), n, replace=False)]
    model = LinearRegression().fit(space.encode([space.effective(a) for a in fit_on], "onehot"),
                                   table.lookup(fit_on, f"cifar10_{device}_latency_ms"))

    def predict(archs) -> np.ndarray:
        return model.predict(space.encode([space.effective(a) for a in archs], "onehot"))

    return FunctionObjective(f"latency_ms[{device}]", predict, direction="min")


def deployed_hypervolume(table: Table, device: str, ev: Evaluator, records: list, norm: Normalization) -> float:
    """Hypervolume of the front of `records` (by the latency the search saw) at the archs' measured latency:
    what deploying and measuring that front gives."""
    front = [r.arch for r, keep in zip(records, pareto_mask(ev.F(records)), strict=True) if keep]
    F = np.stack([-table.lookup(front, "cifar10_test_acc"), table.lookup(front, f"cifar10_{device}_latency_ms")],
                 axis=1)
    return hypervolume(F[pareto_mask(F)], norm)


def predicted_best(table: Table, device: str, latency) -> tuple[float, float]:
    """With latency predicted by `latency`: the best hypervolume at predicted latency over the whole table, and
    the ceiling, the hypervolume that front gives at measured latency (both unnormalised by the true best)."""
    _, norm, _, _ = problem(table, device)
    acc = table.data["cifar10_test_acc"]
    F = np.stack([-acc, latency.evaluate(table.archs)], axis=1)
    front = pareto_mask(F)
    deployed = np.stack([-acc[front], table.data[f"cifar10_{device}_latency_ms"][front]], axis=1)
    return hypervolume(F[front], norm), hypervolume(deployed[pareto_mask(deployed)], norm)


def evals_to_reach(history: list[tuple[int, float]], best: float) -> list[int | None]:
    out: list[int | None] = []
    for t in TARGETS:
        hit = next((n for n, hv in history if hv >= t * best - 1e-12), None)
        out.append(hit)
    return out


def run_one(algo: str, table: Table, objectives, norm, best: float, seed: int, budget: int, opts: dict,
            measured_hv=None, reuse=(), evaluator: list | None = None, own_best: float | None = None):
    """Evaluations one seeded run of `algo` needed to reach each target (None where it did not; 0 where the
    `reuse` records, taken for free as `hwnas search --reuse` does, reach it alone). With
    `measured_hv(evaluator, records)`, the hypervolume after each evaluation is that of the records so far, not
    the one of the values the search saw, and with `own_best` too, the evaluations to reach the targets of that
    (the search's own hypervolume against `own_best`) follow: (deployed hits, own hits). The evaluator is appended
    to `evaluator` when given."""
    # the problem is the table's archs: no algorithm proposes a degenerate one (it would cost nothing)
    ev = Evaluator(table.space, objectives, budget=budget, normalization=norm, admissible=table.__contains__)
    ev.reuse(reuse)
    if evaluator is not None:
        evaluator.append(ev)
    history: list[tuple[int, float]] = []

    def stop_at_target(e: Evaluator) -> None:  # stop once the last target is reached (saves time only)
        if measured_hv is not None:  # after each evaluation of the batch, as the evaluator's own history is
            records = e.records
            history.extend((n, measured_hv(e, records[:n])) for n in range(len(history) + 1, len(records) + 1))
        hv = history if measured_hv is not None else e.hv_history
        done = bool(hv) and hv[-1][1] >= TARGETS[-1] * best - 1e-12
        if own_best is not None:  # both must be reached
            done = done and bool(e.hv_history) and e.hv_history[-1][1] >= TARGETS[-1] * own_best - 1e-12
        if done:
            e.budget = e.spent

    if algo == "accelerated":
        accelerated_search(ev, seed=seed, progress=stop_at_target, **opts.get(algo, {}))
    elif algo == "nsga2":
        nsga2_search(ev, seed=seed, progress=stop_at_target, **opts.get(algo, {}))
    else:
        random_search(ev, seed=seed, progress=stop_at_target, **opts.get(algo, {}))
    hits = evals_to_reach(history if measured_hv is not None else ev.hv_history, best)
    return (hits, evals_to_reach(ev.hv_history, own_best)) if own_best is not None else hits


def for_latency(model, space, objective: str, seed: int):
    """`model` for latency, the default surrogate for top-1 (bound with functools.partial: picklable)."""
    return (model if objective.startswith("latency") else default_surrogate)(space, objective, seed)


_TABLE: Table | None = None
_HINDSIGHT: dict[tuple[str, int], dict[str, float]] = {}


def _column(objective: str) -> str:
    return "cifar10_test_acc" if objective == "top1" else f"cifar10_{objective[len('latency_ms['):-1]}_latency_ms"


def hindsight_predictions(objective: str, n_archs: int = 0) -> dict[str, float]:
    """Predictions for every arch of the table, by key, from a model that never saw that arch: latency from a
    linear model on the effective one-hot, top-1 from xgboost on the loop's features (`ArchFeatures`). With
    `n_archs` 0 they are out-of-fold over the whole table (5 folds: each model knows the trends of 12,000 archs,
    not the arch's own noise); otherwise the model is fitted on `n_archs` random archs (the same draw for every
    seed), which get out-of-fold predictions among themselves."""
    if (objective, n_archs) not in _HINDSIGHT:
        import xgboost as xgb
        from sklearn.base import clone
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import KFold, cross_val_predict

        from hwnas.search.surrogate import ArchFeatures

        table, space = _TABLE, _TABLE.space
        if objective == "top1":
            X = ArchFeatures(space).fit(table.archs)(table.archs)
            model = xgb.XGBRegressor(n_estimators=600, max_depth=6, learning_rate=0.05, n_jobs=1)
        else:
            X, model = space.encode([space.effective(a) for a in table.archs], "onehot"), LinearRegression()
        y = table.data[_column(objective)]
        folds = KFold(5, shuffle=True, random_state=0)
        if n_archs:
            train = np.random.default_rng(2026).choice(len(table), n_archs, replace=False)
            pred = clone(model).fit(X[train], y[train]).predict(X)
            pred[train] = cross_val_predict(model, X[train], y[train], cv=folds)
        else:
            pred = cross_val_predict(model, X, y, cv=folds)
        _HINDSIGHT[objective, n_archs] = dict(zip((a.key for a in table.archs), pred.tolist(), strict=True))
    return _HINDSIGHT[objective, n_archs]


class HindsightSurrogate:
    """A fixed surrogate that ignores what the loop validated and returns `hindsight_predictions`: a bound on
    what a better surrogate could buy, not a search anyone can run. Archs off the table (degenerate) get the
    table's worst value."""

    def __init__(self, objective: str, n_archs: int = 0):
        self.values = hindsight_predictions(objective, n_archs)
        column = _TABLE.data[_column(objective)]
        self.worst = float(column.min() if objective == "top1" else column.max())

    def fit(self, archs, y) -> HindsightSurrogate:
        return self

    def predict(self, archs) -> np.ndarray:
        return np.array([self.values.get(a.key, self.worst) for a in archs])


def hindsight(which: str, space, objective: str, seed: int, n_archs: int = 0):
    """`HindsightSurrogate` for top-1 (`which` "top1"), latency ("latency") or both; the default for the rest."""
    if which == "both" or objective.startswith(which):
        return HindsightSurrogate(objective, n_archs)
    return default_surrogate(space, objective, seed)


SURROGATES = {"default": loop_surrogate, "ensemble": default_surrogate, "ridge": ridge_surrogate,
              "additive-latency": functools.partial(for_latency, additive_surrogate),
              "lookup-latency": functools.partial(for_latency, lookup_surrogate),
              **{f"hindsight-{w}": functools.partial(hindsight, w) for w in ("top1", "latency", "both")}}


def _load_table(data: Path) -> None:
    global _TABLE
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one BLAS thread per worker: --jobs N processes on N cores, not N x cores threads
    _TABLE = load(data)


def fit_prior(table: Table, prior: str, n_archs: int, seed: int) -> PriorModel:
    """A `PriorModel` fitted on the `prior` dataset's top-1 of `n_archs` random archs (a draw per seed)."""
    fit_on = [table.archs[i] for i in np.random.default_rng(10_000 + seed).choice(len(table), n_archs, replace=False)]
    return PriorModel(table.space, seed=seed).fit(fit_on, table.lookup(fit_on, PRIORS[prior]))


def _seed_job(algo: str, device: str, latency_known: bool, budget: int, opts: dict, latency_fitted: int,
              seed: int, reuse_from: str | None = None, prior: tuple[str, int] | None = None):
    objectives, norm, best, _ = problem(_TABLE, device, latency_known, latency_fitted)
    if prior and algo in ("accelerated", "nsga2"):
        opts = {**opts, algo: {**opts[algo], "prior": fit_prior(_TABLE, *prior, seed)}}
    measured = functools.partial(deployed_hypervolume, _TABLE, device, norm=norm) if latency_fitted else None
    own_best = predicted_best(_TABLE, device, objectives[1])[0] if latency_fitted else None
    reuse = []
    if reuse_from:  # first the same search on the other device, to 99%; then this one takes its top-1
        source, s_norm, s_best, _ = problem(_TABLE, reuse_from, latency_known=True)
        first: list[Evaluator] = []
        run_one(algo, _TABLE, source, s_norm, s_best, seed, budget, opts, evaluator=first)
        reuse = first[0].records  # this device's (cheap) latency is computed by Evaluator.reuse
    return run_one(algo, _TABLE, objectives, norm, best, seed, budget, opts, measured, reuse, own_best=own_best)


def median_or_more(values: list[int | None], budget: int) -> str:
    vals = [v if v is not None else budget + 1 for v in values]
    med = statistics.median(vals)
    return f">{budget}" if med > budget else f"{med:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed .. first-seed+seeds-1")
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in this many processes at once")
    parser.add_argument("--devices", default="raspi4,pixel3")
    parser.add_argument("--algos", default="accelerated,nsga2,random")
    parser.add_argument("--nsga2-pop", default="20,50,100", help="NSGA-II population sizes (one row each)")
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--n-init", type=int, default=20)
    parser.add_argument("--inner-pop", type=int, default=20)
    parser.add_argument("--inner-gens", type=int, default=5)
    parser.add_argument("--select", default="thompson", choices=["thompson", "hv", "front"])
    parser.add_argument("--surrogate", default="default", choices=sorted(SURROGATES),
                        help="default: the loop's own (loop_surrogate); ensemble: default_surrogate for every "
                             "objective (the loop before 2026-12-08); lookup-latency: lookup tables alone "
                             "(lookup_surrogate) for an expensive latency; "
                             "additive-latency: the default for top-1, the fitted lookup table plus trees "
                             "(additive_surrogate) for an expensive latency; hindsight-*: out-of-fold predictions "
                             "of models fitted on the whole table, for top-1, latency or both (a bound, not a "
                             "search)")
    parser.add_argument("--hindsight-archs", type=int, default=0, metavar="N",
                        help="with --surrogate hindsight-*: fit the hindsight model on N random archs instead of "
                             "the whole table")
    parser.add_argument("--latency-fitted", type=int, default=0, metavar="N",
                        help="latency is cheap and predicted by a linear model fitted on N measured archs; the "
                             "hypervolume is the search front's at measured latency")
    parser.add_argument("--reuse-from", metavar="DEVICE",
                        help="with --latency-known: each seed first searches DEVICE (to 99%%), then the other "
                             "devices' searches take its top-1 evaluations for free, as `hwnas search --reuse` does")
    parser.add_argument("--prior", choices=sorted(PRIORS),
                        help="a model of this dataset's top-1, fitted before the search on --prior-archs random "
                             "archs (a related task's results, free), as `hwnas search --prior` uses one: NSGA-II and "
                             "the loop start from its predicted front, the loop's top-1 surrogate takes its prediction")
    parser.add_argument("--prior-archs", type=int, default=300, metavar="N")
    parser.add_argument("--latency-known", action="store_true",
                        help="latency is cheap and exact (an upper bound on a device predictor); only top-1 is "
                             "an expensive evaluation")
    args = parser.parse_args()
    if args.reuse_from and not args.latency_known:
        parser.error("--reuse-from needs --latency-known: a reused arch's latency on the other device must be cheap")
    if args.prior and args.surrogate != "default":
        parser.error("--prior replaces the default top-1 surrogate; leave out --surrogate")
    global _TABLE
    surrogate = SURROGATES[args.surrogate]
    if args.hindsight_archs:
        if not args.surrogate.startswith("hindsight"):
            parser.error("--hindsight-archs needs --surrogate hindsight-top1, hindsight-latency or hindsight-both")
        surrogate = functools.partial(surrogate, n_archs=args.hindsight_archs)
    table = _TABLE = load(args.data.resolve())
    opts = {"accelerated": {"batch": args.batch, "n_init": args.n_init, "select": args.select,
                            "inner_pop": args.inner_pop, "inner_gens": args.inner_gens,
                            "surrogate": surrogate},
            "random": {"batch": 10}}
    algos = []
    for algo in args.algos.split(","):
        if algo == "nsga2":
            for pop in args.nsga2_pop.split(","):
                algos.append((f"nsga2-p{pop}", "nsga2", {"nsga2": {"pop_size": int(pop)}}))
        else:
            algos.append((algo, algo, opts))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"NAS-Bench-201, {len(table)} non-degenerate archs, budget {args.budget}, "
          f"seeds {seeds.start}..{seeds.stop - 1}")
    # per-seed counts are deterministic for one set of these; other versions draw other numbers
    print("versions: " + ", ".join(f"{d} {metadata.version(d)}" for d in VERSIONED))
    for device in args.devices.split(","):
        if device == args.reuse_from:
            continue
        _, _, best, n_front = problem(table, device, args.latency_known)
        if args.prior:
            print(f"a prior fitted on {args.prior_archs} archs' {args.prior} top-1: NSGA-II and the loop start from "
                  "its predicted front, and the loop's top-1 surrogate takes its prediction")
        if args.reuse_from:
            print(f"each seed's search first runs on {args.reuse_from} to 99%; this one takes its top-1 for free")
        if args.latency_fitted:
            fitted = fitted_latency(table, device, args.latency_fitted)
            true = table.data[f"cifar10_{device}_latency_ms"]
            err = np.median(np.abs(fitted.evaluate(table.archs) / true - 1))
            print(f"latency predictor fitted on {args.latency_fitted} archs: {100 * err:.1f}% median error")
            _, ceiling = predicted_best(table, device, fitted)
            print(f"its ceiling: the best front at predicted latency, deployed, gives {100 * ceiling / best:.2f}% "
                  f"of the true hypervolume")
        print(f"\n## CIFAR-10 test error vs {device} latency: true front {n_front} archs, best HV {best:.4f}")
        width = 24 if args.latency_fitted else 12
        print(f"{'algorithm':<{width}} {'95%':>6} {'98%':>6} {'99%':>6}   per-seed evals to 99%   time")
        for label, algo, algo_opts in algos:
            start = time.perf_counter()
            job = functools.partial(_seed_job, algo, device, args.latency_known, args.budget, algo_opts,
                                    args.latency_fitted, reuse_from=args.reuse_from,
                                    prior=(args.prior, args.prior_archs) if args.prior else None)
            if args.jobs > 1:  # each process loads the table once and builds its own objectives
                with ProcessPoolExecutor(args.jobs, initializer=_load_table, initargs=(args.data.resolve(),)) as pool:
                    hits = list(pool.map(job, seeds))
            else:
                hits = [job(s) for s in seeds]
            rows = ([(f"{label} deployed", [h[0] for h in hits]), (f"{label} own problem", [h[1] for h in hits])]
                    if args.latency_fitted else [(label, hits)])
            for name, row in rows:
                med = [median_or_more([h[i] for h in row], args.budget) for i in range(len(TARGETS))]
                per_seed = ",".join(str(h[-1]) if h[-1] is not None else "-" for h in row)
                print(f"{name:<{width}} {med[0]:>6} {med[1]:>6} {med[2]:>6}   {per_seed}   "
                      f"{time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
