"""Is the accelerated loop ever the wrong choice? The loop against NSGA-II on NAS-Bench-201's clean devices and
the stress variants (`search_variants`), both objectives expensive, scored as `search_nasbench201.py` scores.

    python benchmarks/search_robustness.py [--seeds 10] [--devices raspi4,...] [--loop-budget 400]
                                           [--nsga2-budget 1500] [--nsga2-pop 20,50] [--jobs 2]
                                           [--algos loop,nsga2] [--plain] [--no-minimal] [--noise measured]
                                           [--loop-opt NAME=VALUE ...] [--surrogate NAME]
                                           [--oracle latency|latency-mean|both]
    python benchmarks/search_robustness.py --long --seeds 2 --devices raspi4,pixel3   # to 1,000 evaluations

Per device: the median (over seeds) evaluations to 98% and 99% of the true hypervolume for the loop and for each
NSGA-II population, their ratio (loop / best NSGA-II; the target is at most 0.5), and how often the loop's
surrogate monitor moved part of a batch to exploration. A run that does not reach a level within its budget
counts as budget + 1 ('>N'). With --long each loop runs to 1,000 evaluations: evaluations to 99.9%, the share of
the true front's archs evaluated by 1,000 (NSGA-II's too), and the loop's own wall time per proposal around 100
and 1,000 evaluations (table lookups cost nothing, so this is the loop's cost).

`--noise measured` reads the noisy variants (`search_variants.MEASURED_NOISE`: raspi4-noisy, gpu-flat) the
other way: their lognormal noise is measurement noise, drawn afresh for each evaluation (seeded per run), and
every search is scored on the noise-free latency of the archs it evaluated (the hypervolume and the true front
are those of the noise-free column). Other devices are unchanged.

`--surrogate NAME` gives the loop one of `search_nasbench201.SURROGATES` (`ensemble`: the loop before its latency
model was chosen out of bag). `--oracle latency|latency-mean|both` (noisy variants with fixed draws: raspi4-noisy,
gpu-flat) is a bound, not a search anyone can run: the loop's latency surrogate is replaced by the exact
noise-free latency with the variant's own lognormal spread as its predictive distribution (it knows every arch's
latency up to that arch's draw; `latency-mean`: the same without the spread), and with `both` its top-1 surrogate
by xgboost fitted on the whole table out of fold (`search_nasbench201.hindsight_predictions`), with the
out-of-fold residual's spread. How many evaluations would a search need with surrogates as good as they can be
on a device whose front is partly luck?
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import search_nasbench201 as nb
from search_variants import MEASURED_NOISE

from hwnas.objective import FunctionObjective
from hwnas.search import Evaluator, accelerated_search, hypervolume, nsga2_search, pareto_mask
from hwnas.search.surrogate import default_surrogate

LEVELS = (0.98, 0.99, 0.999)


def true_front(device: str) -> list:
    t = nb._TABLE
    F = np.stack([-t.data["cifar10_test_acc"], t.data[f"cifar10_{device}_latency_ms"]], axis=1)
    return [a for a, m in zip(t.archs, pareto_mask(F), strict=True) if m]


def front_found(front: list, ev: Evaluator) -> tuple[int, int]:
    """(true front archs evaluated, true front archs whose network was evaluated): NAS-Bench-201 holds several
    archs per network (they differ only in ops whose output is never used, and their table values differ by
    training and measurement noise); the second count takes any of them as the network found."""
    space = nb._TABLE.space
    networks = {space.effective(r.arch).key for r in ev.records}
    return (sum(a.key in ev.seen_keys for a in front),
            sum(space.effective(a).key in networks for a in front))


def measured_latency(table, device: str, sigma: float, seed: int) -> FunctionObjective:
    """The device's latency as one measurement reads it: the table's value times lognormal(sigma), a fresh draw
    for each evaluation."""
    rng = np.random.default_rng([seed, 2026])
    column = f"cifar10_{device}_latency_ms"

    def measure(archs) -> np.ndarray:
        return table.lookup(archs, column) * rng.lognormal(0.0, sigma, len(archs))

    return FunctionObjective(f"latency_ms[{device}]", measure, direction="min", expensive=True)


class TruthScore:
    """The hypervolume of the evaluated archs at their noise-free values, after each evaluation."""

    def __init__(self, table, device: str, norm) -> None:
        self.table, self.column, self.norm = table, f"cifar10_{device}_latency_ms", norm
        self.front = np.zeros((0, 2))
        self.history: list[tuple[int, float]] = []

    def update(self, ev: Evaluator) -> None:
        for rec in ev.records[len(self.history):]:
            f = [-self.table.lookup([rec.arch], "cifar10_test_acc")[0], self.table.lookup([rec.arch], self.column)[0]]
            F = np.vstack([self.front, [f]])
            self.front = F[pareto_mask(F)]
            self.history.append((len(self.history) + 1, hypervolume(self.front, self.norm)))


class OracleSurrogate:
    """A fixed surrogate from hindsight: `mean[key]` with a predictive spread (with `relative`, lognormal of
    sigma `std`, as the noisy variants draw their latency; otherwise absolute, `std[key]`) and members drawn
    from it, so the loop's Thompson picks and front refinement see the distribution an arch's value is really
    drawn from. Archs off the table get the column's worst value."""

    has_std = True

    def __init__(self, mean: dict, std: dict | float, relative: bool, worst: float, seed: int,
                 members: int = 16) -> None:
        self.mean, self.std, self.relative, self.worst = mean, std, relative, worst
        self.rng, self.members = np.random.default_rng([seed, 4242]), members

    def fit(self, archs, y, **_) -> OracleSurrogate:
        return self

    def _moments(self, archs) -> tuple[np.ndarray, np.ndarray]:
        m = np.array([self.mean.get(a.key, self.worst) for a in archs])
        s = np.full(len(archs), self.std) if self.relative else np.array([self.std.get(a.key, 0.0) for a in archs])
        return m, s

    def predict_members(self, archs) -> np.ndarray:
        m, s = self._moments(archs)
        z = self.rng.standard_normal((self.members, len(archs)))
        return m * np.exp(s * z) if self.relative else m + s * z

    def predict(self, archs, return_std: bool = False, noise: bool = True):
        m, s = self._moments(archs)
        if not return_std:
            return m
        return m, (m * np.sqrt(np.expm1(s ** 2)) if self.relative else s)


def oracle_factory(which: str, device: str):
    """The `surrogate` factory for `accelerated_search` under `--oracle which` on a fixed-draw noisy variant."""
    table = nb._TABLE
    clean, sigma = MEASURED_NOISE[device]
    keys = [a.key for a in table.archs]
    latency = dict(zip(keys, table.data[f"cifar10_{clean}_latency_ms"].tolist(), strict=True))
    top1 = None
    if which == "both":
        pred = nb.hindsight_predictions("top1")
        y = table.data["cifar10_test_acc"]
        p = np.array([pred[k] for k in keys])
        bins = np.quantile(p, np.linspace(0, 1, 21))  # the residual's spread by predicted top-1 (20 bins)
        which_bin = np.clip(np.searchsorted(bins, p, side="right") - 1, 0, 19)
        spread = np.array([np.std((y - p)[which_bin == b]) for b in range(20)])
        top1 = (pred, dict(zip(keys, spread[which_bin].tolist(), strict=True)), float(y.min()))
    worst_latency = float(table.data[f"cifar10_{device}_latency_ms"].max())

    def make(space, objective: str, seed: int):
        if objective.startswith("latency"):
            return OracleSurrogate(latency, 0.0 if which == "latency-mean" else sigma, True, worst_latency, seed)
        if top1 is not None:
            return OracleSurrogate(top1[0], top1[1], False, top1[2], seed)
        return default_surrogate(space, objective, seed)

    return make


def run(algo: str, device: str, budget: int, pop: int, stop: bool, loop_opts: dict, noise: str, oracle: str,
        seed: int) -> dict:
    """One seeded run: evaluations to each level (None: not reached), the true front's archs found by the end,
    the loop's wall time per proposal by evaluations, and its batches' picks."""
    table = nb._TABLE
    truth, sigma = MEASURED_NOISE[device] if noise == "measured" and device in MEASURED_NOISE else (device, 0.0)
    objectives, norm, best, _ = nb.problem(table, truth)
    if sigma:
        objectives[1] = measured_latency(table, truth, sigma, seed)
    score = TruthScore(table, truth, norm) if sigma else None
    ev = Evaluator(table.space, objectives, budget=budget, normalization=norm, admissible=table.__contains__)
    timing: list[tuple[int, float]] = []
    last = [time.perf_counter(), 0]

    def progress(e: Evaluator) -> None:
        now = time.perf_counter()
        if last[1]:
            timing.append((e.spent, (now - last[0]) / max(e.spent - last[1], 1)))
        last[0], last[1] = now, e.spent
        if score is not None:
            score.update(e)
        history = score.history if score is not None else e.hv_history
        if stop and history and history[-1][1] >= LEVELS[1] * best - 1e-12:
            e.budget = e.spent

    if algo == "loop":
        if oracle:
            loop_opts = {**loop_opts, "surrogate": oracle_factory(oracle, device)}
        accelerated_search(ev, seed=seed, progress=progress, **loop_opts)
    else:
        nsga2_search(ev, seed=seed, progress=progress, pop_size=pop)
    if score is not None:
        score.update(ev)
    history = score.history if score is not None else ev.hv_history
    hits = [next((n for n, hv in history if hv >= lv * best - 1e-12), None) for lv in LEVELS]
    front = true_front(truth)
    found, networks = front_found(front, ev)
    explored = sum(1 for d in ev.notes if d.get("picks", {}).get("explore"))
    return {"hits": hits, "front_found": found, "front_networks": networks, "front_size": len(front),
            "front_network_count": len({table.space.effective(a).key for a in front}),
            "timing": timing, "batches": len(ev.notes), "explore_batches": explored, "spent": ev.spent}


def median_or_more(values: list[int | None], budget: int) -> float:
    return statistics.median([v if v is not None else budget + 1 for v in values])


def fmt(value: float, budget: int) -> str:
    return f">{budget}" if value > budget else f"{value:.0f}"


def cost_near(timing: list[tuple[int, float]], at: int) -> float | None:
    near = [t for n, t in timing if abs(n - at) <= max(10, at // 10)]
    return statistics.median(near) if near else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=nb.DATA)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--devices", default="raspi4,pixel3,eyeriss,fpga,raspi4-noisy,gpu-flat,dsp-pool")
    parser.add_argument("--loop-budget", type=int, default=400)
    parser.add_argument("--nsga2-budget", type=int, default=1500)
    parser.add_argument("--nsga2-pop", default="20,50")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--long", action="store_true", help="run every search to 1,000 evaluations")
    parser.add_argument("--plain", action="store_true",
                        help="the loop without the monitor's exploration and the front refinement (as before)")
    parser.add_argument("--no-minimal", action="store_true",
                        help="the loop without the space's structurally smallest archs in its first batch")
    parser.add_argument("--loop-opt", action="append", default=[], metavar="NAME=VALUE",
                        help="a keyword of accelerated_search for the loop, e.g. refine_after=50 (repeatable)")
    parser.add_argument("--algos", default="loop,nsga2")
    parser.add_argument("--noise", choices=("fixed", "measured"), default="fixed",
                        help="fixed: the noisy variants' draws are the truth; measured: a fresh draw per "
                             "evaluation, scored on the noise-free latency")
    parser.add_argument("--surrogate", choices=sorted(k for k in nb.SURROGATES if not k.startswith("hindsight")),
                        help="the loop's surrogate factory (search_nasbench201's names; default: the loop's own)")
    parser.add_argument("--oracle", choices=("latency", "latency-mean", "both"),
                        help="a bound: the loop with hindsight surrogates (fixed-draw noisy variants only)")
    args = parser.parse_args()
    if args.oracle and (args.noise != "fixed" or not set(args.devices.split(",")) <= set(MEASURED_NOISE)):
        parser.error(f"--oracle needs --noise fixed and devices among {', '.join(MEASURED_NOISE)}")
    nb._load_table(args.data.resolve())
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    loop_opts = {"explore": False, "refine_after": 1 << 30, "grow_batch": 0} if args.plain else {}
    if args.no_minimal:
        loop_opts["minimal"] = False
    if args.surrogate:
        loop_opts["surrogate"] = nb.SURROGATES[args.surrogate]
    for opt in args.loop_opt:
        name, _, value = opt.partition("=")
        loop_opts[name] = json.loads(value)
    loop_budget = 1000 if args.long else args.loop_budget
    nsga2_budget = 1000 if args.long else args.nsga2_budget
    runs = []
    if "loop" in args.algos:
        runs.append(("loop", 0, loop_budget))
    if "nsga2" in args.algos:
        runs += [(f"nsga2-p{p}", int(p), nsga2_budget) for p in args.nsga2_pop.split(",")]
    print(f"seeds {seeds.start}..{seeds.stop - 1}; loop budget {loop_budget}, NSGA-II budget {nsga2_budget}"
          f"{'; plain loop' if args.plain else ''}{'; no minimal archs' if args.no_minimal else ''}"
          f"; noise {args.noise}{f'; oracle surrogates: {args.oracle}' if args.oracle else ''}")
    for device in args.devices.split(","):
        print(f"\n## {device}")
        medians = {}
        for label, pop, budget in runs:
            start = time.perf_counter()
            job = functools.partial(run, "loop" if label == "loop" else "nsga2", device, budget, pop,
                                    not args.long, loop_opts, args.noise, args.oracle)
            if args.jobs > 1:
                with ProcessPoolExecutor(args.jobs, initializer=nb._load_table,
                                         initargs=(args.data.resolve(),)) as pool:
                    out = list(pool.map(job, seeds))
            else:
                out = [job(s) for s in seeds]
            med = [median_or_more([o["hits"][i] for o in out], budget) for i in range(len(LEVELS))]
            medians[label] = (med, budget)
            per_seed = ",".join(str(o["hits"][1]) if o["hits"][1] is not None else "-" for o in out)
            line = (f"{label:<10} 98%: {fmt(med[0], budget):>6}  99%: {fmt(med[1], budget):>6}  "
                    f"per-seed to 99%: {per_seed}")
            if args.long:
                found = [o["front_found"] for o in out]
                line += (f"  99.9%: {fmt(med[2], budget)} (per seed "
                         f"{','.join(str(o['hits'][2]) if o['hits'][2] else '-' for o in out)})"
                         f"  true front found: {statistics.median(found):.0f}/{out[0]['front_size']}"
                         f" ({','.join(map(str, found))}); its networks evaluated: "
                         f"{statistics.median(o['front_networks'] for o in out):.0f}/{out[0]['front_size']}"
                         f" ({out[0]['front_network_count']} distinct)")
                if label == "loop":
                    c100 = [cost_near(o["timing"], 100) for o in out]
                    c1000 = [cost_near(o["timing"], 1000) for o in out]
                    line += (f"  cost/proposal @100: {statistics.median([c for c in c100 if c]):.2f}s"
                             f" @1000: {statistics.median([c for c in c1000 if c]):.2f}s")
            if label == "loop":
                line += f"  batches with exploration: {sum(o['explore_batches'] for o in out)}/" \
                        f"{sum(o['batches'] for o in out)}"
            print(line + f"  {time.perf_counter() - start:.0f}s", flush=True)
        if "loop" in medians and len(medians) > 1:
            (lm, lb) = medians["loop"]
            ratios = []
            for i in range(2):
                best = min(m[i] for k, (m, _) in medians.items() if k != "loop")
                ratios.append(f"{lm[i] / best:.2f}x" + ("" if lm[i] <= lb else " (loop short)"))
            print(f"loop / best NSGA-II: 98% {ratios[0]}, 99% {ratios[1]}")


if __name__ == "__main__":
    main()
