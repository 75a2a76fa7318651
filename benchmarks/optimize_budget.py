"""`hwnas optimize` on this machine, as a user runs it, with a latency budget: wall time of the one command, the
share of deployed models whose measured latency keeps the budget, and the coverage of the predictor's 95% interval
on the held-out reference subnets and on the deployed models; and the deploy session's reference check (how fast
the device ran against its profile) with the front's error scaled to the session.

    python benchmarks/optimize_budget.py [--out /tmp/hwnas-opt] [--quantile 0.5] [--seed 0] [--profile-subnets 60]

Two calls: the first `optimize` without a budget profiles this CPU (60 random + 20 held-out reference subnets of
the demo supernet), fits the predictor, searches and deploys (its wall time is the "from nothing" figure); the
budget is then the `--quantile` of the predicted latency over 500 random subnets, and the second `optimize`
reuses the predictor, searches under the budget (held on the 95% interval's upper end) and deploys the front.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/hwnas-opt"))
    parser.add_argument("--quantile", type=float, default=0.5)
    parser.add_argument("--evals", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-subnets", type=int, default=60, help="subnets the first optimize measures")
    args = parser.parse_args()

    from hwnas.predictors import load_predictor
    from hwnas.supernet import demo_checkpoint_path, load_checkpoint
    from hwnas.workflows import init_workspace, optimize

    shutil.rmtree(args.out, ignore_errors=True)
    ws, _ = init_workspace(args.out)
    device = "local-cpu-ort"
    t0 = time.monotonic()
    first = optimize(device, workspace=ws, evals=args.evals, formats=["onnx"], seed=args.seed,
                     profile_subnets=args.profile_subnets, out=ws.runs_dir / "unbudgeted")
    from_nothing = time.monotonic() - t0
    print(f"optimize from nothing (profile, fit, search {args.evals}, deploy): {from_nothing:.0f} s; "
          f"predictor: {first.fit_note}")

    space = load_checkpoint(demo_checkpoint_path()).space
    predictor = load_predictor(first.predictor, space=space)
    sample = space.sample(np.random.default_rng(args.seed), 500)
    budget = float(np.quantile(predictor.predict(sample), args.quantile))
    print(f"budget: {budget:.3f} ms (the {args.quantile:.0%} quantile of predicted latency over 500 random subnets)")

    t0 = time.monotonic()
    second = optimize(device, workspace=ws, evals=args.evals, formats=["onnx"], seed=args.seed,
                      max_latency_ms=budget, out=ws.runs_dir / "budgeted")
    budgeted = time.monotonic() - t0
    rows = second.deployed_rows()
    within = sum(bool(r["within_budget"]) for r in rows)
    lo_hi = [predictor.interval_from(np.array([r["predicted_ms"]]), 0.95) for r in rows]
    covered = sum(lo[0] <= r["measured_ms"] <= hi[0] for (lo, hi), r in zip(lo_hi, rows))
    errors = [100 * (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    if not rows:
        raise SystemExit("the budgeted front deployed no model")
    print(f"optimize with the predictor reused and a budget: {budgeted:.0f} s")
    print(f"deployed within budget on measurement: {within}/{len(rows)}")
    print(f"95% interval covers the measured latency of {covered}/{len(rows)} deployed models; "
          f"prediction error {min(errors):+.1f}% to {max(errors):+.1f}% (mean {np.mean(errors):+.1f}%, mean |error| "
          f"{np.mean(np.abs(errors)):.1f}%, within 5%: {sum(abs(e) <= 5 for e in errors)}/{len(errors)})")
    check = second.session_check
    if check and check.get("ratio"):
        ratio = check["ratio"]
        scaled = [100 * (r["predicted_ms"] * ratio - r["measured_ms"]) / r["measured_ms"] for r in rows]
        covered_scaled = sum(lo[0] * ratio <= r["measured_ms"] <= hi[0] * ratio for (lo, hi), r in zip(lo_hi, rows))
        print(f"reference check: the device ran {ratio:.3f}x its profiled latency; scaled to the session, error "
              f"{min(scaled):+.1f}% to {max(scaled):+.1f}% (mean {np.mean(scaled):+.1f}%), the 95% interval covers "
              f"{covered_scaled}/{len(rows)}")


if __name__ == "__main__":
    main()
