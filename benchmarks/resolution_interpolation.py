"""How well predictors do at resolutions a profile did not measure: operators profiled at 160, 192 and 224 only,
whole subnets measured at 176/208 (unprofiled, interpolated) and at 160/192/224 (profiled).

    python benchmarks/resolution_interpolation.py                       # the shipped real profile: no device time
    python benchmarks/resolution_interpolation.py --measure /tmp/hwnas-res [--device local-cpu-ort] [--per-group 12]

Without `--measure` it reads the repo's real profile of `local-cpu-ort` (onnxruntime, measured at 160-224 in
steps of 16), drops its 176 and 208 operators and compares the interpolated table with the measured one on the
profile's whole subnets. With `--measure` it profiles this machine at {160, 192, 224} (operators, `--calibration`
random subnets over every resolution) plus `--per-group` subnets at 176/208 and as many at 160/192/224.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from hwnas.predictors import create_predictor
from hwnas.predictors.features import ResolutionExtrapolationWarning
from hwnas.predictors.fitting import fit_from_profile
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.space import create

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "profiles" / "local-cpu-ort" / "ofa-mbv3-onnxruntime-fp32.json"
PROFILED = (160, 192, 224)
UNPROFILED = (176, 208)
HOLDOUT_SEED = 515


def _row(label: str, y: np.ndarray, pred: np.ndarray) -> None:
    m = evaluate_predictions(y, pred)
    print(f"  {label:44} n={m['n']:3d}  MAPE {m['mape_pct']:5.2f}%  within 10% {m['within_10pct'] * 100:5.1f}%  "
          f"Spearman {m['spearman']:.3f}")


def report(profile: dict, held: list[dict], full_table: dict[str, float] | None = None) -> None:
    """Per group of held-out subnets (profiled / unprofiled resolution): the table sum and lut-calibrated against
    the measured latency; with `full_table` (operators measured at the unprofiled resolutions too), the same
    predictors from it, and how far the interpolated table sum is from the measured one."""
    space = create("ofa-mbv3", profiled_resolutions=PROFILED)
    table = {k: v["median_ms"] for k, v in profile["operators"].items()}
    lut = create_predictor("lut", space=space, table=table).fit()
    calibrated = fit_from_profile("lut-calibrated", profile)
    print(f"operators profiled at {list(PROFILED)}: {len(table)}; lut-calibrated fitted on "
          f"{len(calibrated.meta_['trained_on'])} calibration subnets")
    if full_table is not None:
        full_profile = {**profile, "operators": {k: {"median_ms": v} for k, v in full_table.items()},
                        "space": create("ofa-mbv3").config()}
        full_lut = create_predictor("lut", space=create("ofa-mbv3"), table=full_table).fit()
        full_cal = fit_from_profile("lut-calibrated", full_profile)
    for name, resolutions in (("profiled", PROFILED), ("unprofiled", UNPROFILED)):
        rows = [r for r in held if r["arch"]["r"] in resolutions]
        if not rows:
            continue
        archs = [r["arch"] for r in rows]
        y = np.array([r["median_ms"] for r in rows])
        print(f"{name} resolutions {list(resolutions)}: {len(rows)} held-out subnets, "
              f"{y.min():.2f}-{y.max():.2f} ms")
        _row("table sum (lut), interpolated", y, lut.predict(archs))
        _row("lut-calibrated, interpolated", y, calibrated.predict(archs))
        if full_table is not None:
            _row("lut-calibrated, operators measured there too", y, full_cal.predict(archs))
            _row("interpolated table sum vs measured table sum", full_lut.predict(archs), lut.predict(archs))


def from_shipped(path: Path) -> None:
    profile = json.loads(path.read_text())
    full_table = {k: v["median_ms"] for k, v in profile["operators"].items()}
    space = create("ofa-mbv3", profiled_resolutions=PROFILED)
    kept = {op.key for op in space.all_operators()}  # what a profile at 160, 192, 224 measures
    sparse = {**profile, "space": space.config(),
              "operators": {k: v for k, v in profile["operators"].items() if k in kept}}
    held = [r for role in ("reference", "extra") for r in profile[role]]
    print(f"profile {path.relative_to(REPO)} ({profile['device']}, {profile['runtime']} "
          f"{profile['runtime_version']}, measured {profile['date']})")
    report(sparse, held, full_table)


def measure(root: Path, device: str, per_group: int, calibration: int) -> None:
    from hwnas.devices import open_device
    from hwnas.profiling import load_profile, profile_device
    from hwnas.workspace import Workspace

    ws = Workspace.init(root)
    toml = ws.devices_dir / f"{device}.toml"
    if not toml.exists():
        shutil.copy(REPO / "devices" / f"{device}.toml", toml)
    space = create("ofa-mbv3", profiled_resolutions=PROFILED)
    base = space.sample(np.random.default_rng(HOLDOUT_SEED), 2 * per_group)
    holdout = [space.at_resolution(a, UNPROFILED[i % 2]) for i, a in enumerate(base[:per_group])]
    holdout += [space.at_resolution(a, PROFILED[i % 3]) for i, a in enumerate(base[per_group:])]

    def show(event) -> None:
        if event.done == event.total or event.done % 50 == 0:
            print(f"  {event.stage}: {event.done}/{event.total}  ({time.strftime('%H:%M:%S')})", flush=True)

    start = time.monotonic()
    with open_device(device, ws) as dev:
        path = profile_device(dev, space, ws, settings=dev.config.settings(), calibration=calibration,
                              reference=False, extra_archs=holdout, jobs=2, progress=show)
    profile = load_profile(path)
    print(f"profile {path}: {len(profile['operators'])} operators, {len(profile['calibration'])} calibration and "
          f"{len(profile['extra'])} held-out subnets in {time.monotonic() - start:.0f} s (wall, with export); "
          f"device time {profile['timing']['device_s_total']:.0f} s")
    report(profile, profile["extra"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, default=SHIPPED, help="a real ofa-mbv3 profile at 160-224 step 16")
    parser.add_argument("--measure", type=Path, default=None, help="workspace to profile this machine in")
    parser.add_argument("--device", default="local-cpu-ort")
    parser.add_argument("--per-group", type=int, default=12)
    parser.add_argument("--calibration", type=int, default=20)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ResolutionExtrapolationWarning)  # calibration subnets at 128-156 extrapolate
    if args.measure is not None:
        measure(args.measure, args.device, args.per_group, args.calibration)
    else:
        from_shipped(args.profile)


if __name__ == "__main__":
    main()
