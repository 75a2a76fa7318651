"""How often few-shot's first choice of source, from n target samples, is the source that ranks the target best.

    python benchmarks/fewshot_source_choice.py [--targets raspi4,pixel3] [--n 10] [--draws 500] [--fit 200]

NAS-Bench-201 (`../shared/data/nasbench201/`): each target device with the other three devices as sources (a gbm
on 1,000 random archs of each). For each of `--draws` random sets of n target samples, every source's offset
model (the source's log prediction plus the median log ratio, as `few-shot`'s simplest candidates) is scored
leave-one-out, and three rules for ordering these equally simple candidates are compared: by mean |log error|
(what `few-shot` uses), by the selection loss (1 - Spearman + mean |log error|) and by Spearman alone. Printed
per rule: the mean whole-table Spearman of the source it picks, and how often it picks the best and the worst.
With --fit K, the first K draws also fit `few-shot` itself on the three sources (every candidate, the residual
trees) and score it on every other arch: mean, 5th percentile and worst Spearman, and the share of draws at or
above 0.95.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from predictors_nasbench201 import SOURCES, load
from scipy.stats import spearmanr

from hwnas.predictors import create_predictor
from hwnas.predictors.capacity import oof_loss

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nasbench201"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--targets", default="raspi4,pixel3")
    parser.add_argument("--n", type=int, default=10, help="target samples per draw")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--fit", type=int, default=0, metavar="K", help="also fit few-shot on the first K draws")
    args = parser.parse_args()
    archs, latency = load(args.data)
    for target in args.targets.split(","):
        others = [d for d in SOURCES if d != target]
        fit_on = np.random.default_rng(7).choice(len(archs), 1000, replace=False)
        sources = {d: create_predictor("gbm", space="nasbench201").fit([archs[i] for i in fit_on], latency[d][fit_on])
                   for d in others}
        log_pred = {d: np.log(p.predict(archs)) for d, p in sources.items()}
        t_all = np.log(latency[target])
        whole = {d: float(spearmanr(p, t_all).statistic) for d, p in log_pred.items()}
        print(f"{target} from {args.n} samples; each source's Spearman on the whole table: "
              + ", ".join(f"{d} {v:.3f}" for d, v in whole.items()))
        picks: dict[str, list[float]] = {"mean |log error| (few-shot)": [], "selection loss": [], "Spearman": []}
        for draw in range(args.draws):
            train = np.random.default_rng(draw).choice(len(archs), args.n, replace=False)
            t = t_all[train]
            scores = []
            for d in others:
                x = log_pred[d][train]
                oof = np.array([x[i] + np.median(np.delete(t - x, i)) for i in range(args.n)])
                scores.append((d, np.abs(oof - t).mean(), oof_loss(oof, t), 1 - spearmanr(x, t).statistic))
            for col, rule in enumerate(picks, start=1):
                picks[rule].append(whole[min(scores, key=lambda s: s[col])[0]])
        fitted = []
        for draw in range(min(args.fit, args.draws)):
            train = np.random.default_rng(draw).choice(len(archs), args.n, replace=False)
            rest = np.setdiff1d(np.arange(len(archs)), train)
            few = create_predictor("few-shot", space="nasbench201", base=list(sources.values()), seed=draw).fit(
                [archs[i] for i in train], latency[target][train])
            fitted.append(float(spearmanr(few.predict([archs[i] for i in rest]), t_all[rest]).statistic))
        for rule, got in picks.items():
            got_a = np.array(got)
            print(f"  by {rule:28} mean Spearman {got_a.mean():.4f}, picks the best source "
                  f"{100 * np.mean(got_a == max(whole.values())):5.1f}%, the worst "
                  f"{100 * np.mean(got_a == min(whole.values())):4.1f}%")
        if fitted:
            f = np.array(fitted)
            print(f"  few-shot fitted on {len(f)} draws: Spearman mean {f.mean():.4f}, 5th percentile "
                  f"{np.quantile(f, 0.05):.3f}, worst {f.min():.3f}; >= 0.95 in {100 * np.mean(f >= 0.95):.1f}%")


if __name__ == "__main__":
    main()
