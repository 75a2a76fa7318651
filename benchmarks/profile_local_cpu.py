"""Profile this machine's CPU for ofa-mbv3, then score every latency predictor on held-out random subnets
measured end to end.

    python benchmarks/profile_local_cpu.py --workspace /tmp/hwnas-bench [--device local-cpu-ort]
        [--resolutions 160,176,192,208,224] [--calibration 50] [--holdout 100] [--export-only]

`--export-only` runs the slow, device-independent half (exporting every operator and subnet into the
workspace cache) so that the measuring half can run later on a quiet machine. Targets (issue 6): the best
predictor within +-10% for >= 99% of the held-out subnets, Spearman >= 0.99, profile <= 15 min of device time.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from hwnas.devices import open_device
from hwnas.predictors.fitting import evaluate_on_rows, fit_from_profile
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.profiling import (
    calibration_archs,
    export_profile_models,
    load_profile,
    profile_device,
    reference_archs,
)
from hwnas.space import create
from hwnas.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
HOLDOUT_SEED = 424242


def holdout_archs(space, n: int, calibration: int) -> list:
    taken = {a.key for a in reference_archs(space)} | {a.key for a in calibration_archs(space, calibration)}
    return calibration_archs(space, n, seed=HOLDOUT_SEED, exclude=taken)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/hwnas-bench"))
    parser.add_argument("--device", default="local-cpu-ort")
    parser.add_argument("--resolutions", default="160,176,192,208,224")
    parser.add_argument("--calibration", type=int, default=50)
    parser.add_argument("--holdout", type=int, default=100)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--statistic", default="median_ms", help="median_ms or min_ms (steadier on a shared CPU)")
    parser.add_argument("--retest", type=Path, default=None,
                        help="Another workspace profiled with the same arguments: compare the two measurements of "
                             "each subnet (test-retest agreement, the ceiling for any predictor on this machine)")
    args = parser.parse_args()

    ws = Workspace.init(args.workspace)
    toml = ws.devices_dir / f"{args.device}.toml"
    if not toml.exists():
        shutil.copy(REPO / "devices" / f"{args.device}.toml", toml)
    resolutions = [int(r) for r in args.resolutions.split(",")]
    space = create("ofa-mbv3", resolutions=resolutions)
    holdout = holdout_archs(space, args.holdout, args.calibration)

    def show(event) -> None:
        if event.done == event.total or event.done % 25 == 0:
            print(f"  {event.stage}: {event.done}/{event.total}  ({time.strftime('%H:%M:%S')})", flush=True)

    if args.export_only:
        start = time.monotonic()
        with open_device(args.device, ws) as dev:
            runtime = dev.config.runtime
        counts = export_profile_models(space, ws, runtime, calibration=args.calibration, extra_archs=holdout,
                                       jobs=args.jobs, progress=show)
        print(f"exported {counts['operators']} operators and {counts['archs']} subnets in "
              f"{time.monotonic() - start:.0f} s")
        return

    start = time.monotonic()
    with open_device(args.device, ws) as dev:
        settings = dev.config.settings(runs=args.runs, warmup=args.warmup, rounds=args.rounds)
        path = profile_device(dev, space, ws, settings=settings, calibration=args.calibration, extra_archs=holdout,
                              jobs=args.jobs, progress=show)
    wall = time.monotonic() - start
    profile = load_profile(path)
    timing = profile["timing"]
    n_archs = sum(len(profile[r]) for r in ("reference", "calibration", "extra"))
    print(f"\nprofile {path}: {len(profile['operators'])} operators, {n_archs} subnets, complete={profile['complete']}")
    print(f"  device time (transport wall, all measurements kept): {timing['device_s_total']:.0f} s; "
          f"inside the runtime: {timing['runtime_s_total']:.0f} s; this run's export: {timing['export_s']:.0f} s; "
          f"this run's wall: {wall:.0f} s")
    ops_only = sum(1 for _ in profile["operators"])
    print(f"  ({ops_only} operators at {len(resolutions)} resolutions; settings: runs={profile['settings']['runs']} "
          f"warmup={profile['settings']['warmup']} rounds={profile['settings']['rounds']})")
    held = [{**r, "role": "extra"} for r in profile["extra"]]
    y = np.array([r[args.statistic] for r in held])
    cv = np.median([r["std_ms"] / r["mean_ms"] for r in held])
    print(f"\n{len(held)} held-out subnets, measured {y.min():.2f}..{y.max():.2f} ms (median {np.median(y):.2f}); "
          f"run-to-run spread (median std/mean over each subnet's runs): {cv * 100:.1f}%")
    print(f"latency statistic: {args.statistic}")
    print(f"{'predictor':16} {'train':>5} {'MAPE%':>7} {'RMSPE%':>7} {'<=5%':>7} {'<=10%':>7} {'spearman':>9} "
          f"{'kendall':>8}")
    for name in ("lut", "lut-calibrated", "gbm"):
        predictor = fit_from_profile(name, profile, path, statistic=args.statistic)
        m, _, _ = evaluate_on_rows(predictor, held)
        _row(name, len(predictor.meta_["trained_on"]), m)
    if args.retest is not None:
        other = load_profile(args.retest / path.relative_to(ws.root))
        again = {r["key"]: r[args.statistic] for r in other["extra"]}
        pairs = [(r[args.statistic], again[r["key"]]) for r in held if r["key"] in again]
        first, second = np.array(pairs).T
        scale = np.median(first / second)  # the other run's overall load level may differ: rescale it
        _row("retest", 0, evaluate_predictions(first, second * scale))
        print("(retest: the same subnets measured again in --retest's workspace, rescaled by their median ratio)")


def _row(name: str, n_train: int, m: dict) -> None:
    print(f"{name:16} {n_train:5d} {m['mape_pct']:7.2f} {m['rmspe_pct']:7.2f} {m['within_5pct'] * 100:6.1f}% "
          f"{m['within_10pct'] * 100:6.1f}% {m['spearman']:9.4f} {m['kendall']:8.4f}")


if __name__ == "__main__":
    main()
