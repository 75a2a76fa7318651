"""Where a whole-subnet predictor errs: its error on the fast end of the space (where a budgeted front sits) and
on random subnets, with and without the space's corners in its training set.

    python benchmarks/fast_end.py [--out /tmp/hwnas-fast-end] [--seed 0] [--fast 30] [--share 0.15]
        [--calibration 30] [--sizes 30] [--second-session]

One profiling session on `local-cpu-ort` with the demo supernet's space, under `hwnas optimize`'s settings: the
`--calibration` calibration subnets and 20 reference subnets of `optimize`, the space's corners (smallest and
largest at each resolution) and `--fast` subnets drawn from the `--share` lowest-FLOPs of 3,000 random ones.
Then, for each n in `--sizes`, a gbm (as `optimize` fits it) on the first n random calibration subnets, on them
plus the space's two ends, and on them plus all corners, each scored on the fast-end set and on the reference
subnets, none of which it saw. With `--second-session`, the held-out subnets are measured again in a separate
session and scored there too.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np


def fast_end_archs(space, n: int, seed: int, exclude: set[str], share: float) -> list:
    pool = {a.key: a for a in space.sample(np.random.default_rng(10_000 + seed), 3000)}
    ranked = sorted(pool.values(), key=lambda a: (space.flops(a), a.key))
    low = [a for a in ranked[: int(share * len(ranked))] if a.key not in exclude]
    rng = np.random.default_rng(seed)
    return [low[i] for i in sorted(rng.choice(len(low), size=min(n, len(low)), replace=False))]


def score(name: str, model, archs: list, y: np.ndarray) -> str:
    pred = model.predict(archs)
    err = 100 * (pred - y) / y
    lo, hi = model.interval_from(pred, 0.95)
    cover = np.mean((y >= lo) & (y <= hi))
    return (f"{name:>14}: MAPE {np.mean(np.abs(err)):5.2f}%  mean signed {np.mean(err):+6.2f}%  "
            f"within 5% {np.mean(np.abs(err) <= 5):4.0%}  within 10% {np.mean(np.abs(err) <= 10):4.0%}  "
            f"worst {err[np.argmax(np.abs(err))]:+6.1f}%  95% interval covers {cover:4.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/hwnas-fast-end"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", type=int, default=30)
    parser.add_argument("--calibration", type=int, default=30)
    parser.add_argument("--sizes", default="30", help="training set sizes (first n calibration subnets)")
    parser.add_argument("--share", type=float, default=0.15, help="the fast end: this share of lowest FLOPs")
    parser.add_argument("--second-session", action="store_true")
    args = parser.parse_args()

    from hwnas.devices import open_device
    from hwnas.predictors import create_predictor
    from hwnas.profiling import load_profile, profile_device
    from hwnas.profiling.reference import corner_archs
    from hwnas.supernet import demo_checkpoint_path, load_checkpoint
    from hwnas.workflows import init_workspace
    from hwnas.workflows.optimize import MEASURE_SETTINGS

    shutil.rmtree(args.out, ignore_errors=True)
    ws, _ = init_workspace(args.out)
    space = load_checkpoint(demo_checkpoint_path()).space
    corners = corner_archs(space, per_resolution=True)
    ends = {a.key for a in corner_archs(space)}
    fast = fast_end_archs(space, args.fast, args.seed, {a.key for a in corners}, args.share)
    with open_device("local-cpu-ort", ws) as dev:
        path = profile_device(dev, space, ws, settings=dev.config.settings(**MEASURE_SETTINGS), ops=[],
                              calibration=args.calibration, reference=True, extra_archs=corners + fast, jobs=1)
    profile = load_profile(path)
    rows = {r["key"]: r for role in ("reference", "calibration", "extra") for r in profile.get(role) or []}
    calib = [r for r in profile["calibration"] if r["key"] not in {a.key for a in corners}]
    corner_rows = [rows[a.key] for a in corners]
    print(f"corners: {len(corners)}, e.g. smallest {corner_rows[0]['median_ms']:.3f} ms, "
          f"largest {max(r['median_ms'] for r in corner_rows):.3f} ms; calibration {len(calib)} "
          f"({min(r['median_ms'] for r in calib):.3f}-{max(r['median_ms'] for r in calib):.3f} ms); "
          f"fast end {len(fast)} ({min(rows[a.key]['median_ms'] for a in fast):.3f}-"
          f"{max(rows[a.key]['median_ms'] for a in fast):.3f} ms)")

    held = {"fast end": fast, "reference": [r["arch"] for r in profile["reference"]]}
    train_sets = {}
    for n in [int(x) for x in args.sizes.split(",")]:
        part = calib[:n]
        train_sets.update({f"{n} random": part, f"{n} +2 ends": part + [r for r in corner_rows if r["key"] in ends],
                           f"{n} +corners": part + corner_rows})
    models = {}
    for name, train in train_sets.items():
        models[name] = create_predictor("gbm", space=space, seed=args.seed).fit(
            [r["arch"] for r in train], np.array([r["median_ms"] for r in train]))
    for set_name, archs in held.items():
        keys = [a.key if hasattr(a, "key") else space.validate(a).key for a in archs]
        y = np.array([rows[k]["median_ms"] for k in keys])
        print(f"held out: {set_name} ({len(keys)} subnets, this session)")
        for name, model in models.items():
            print(score(name, model, [rows[k]["arch"] for k in keys], y))

    if args.second_session:
        ws2, _ = init_workspace(args.out / "second")
        again = fast + [space.validate(r["arch"]) for r in profile["reference"]]
        with open_device("local-cpu-ort", ws2) as dev:
            path2 = profile_device(dev, space, ws2, settings=dev.config.settings(**MEASURE_SETTINGS), ops=[],
                                   calibration=0, reference=False, extra_archs=again, jobs=1)
        rows2 = {r["key"]: r for r in load_profile(path2).get("extra") or []}
        keys = [a.key for a in again]
        y = np.array([rows2[k]["median_ms"] for k in keys])
        print(f"held out: fast end + reference ({len(keys)} subnets), a second session")
        for name, model in models.items():
            print(score(name, model, again, y))


if __name__ == "__main__":
    main()
