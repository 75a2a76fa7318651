"""Session checks on this machine: is a profile's speed steady, and is a later session in the profiled state?

Profiles the demo supernet's whole subnets several times in one workspace, as `hwnas optimize` does (30
calibration + 20 reference subnets, 60 runs in 6 interleaved rounds, a fresh session per round), each followed by
its 20 reference subnets measured again in a batch of their own. With `--busy N`, every second profile runs while
N busy-looping processes share the cores: a device really in another state.

    python benchmarks/session_checks.py [--profiles 8] [--busy 2] [--workspace /tmp/hwnas-sessions]

Per profile: the session's drift as judged on its three check subnets at start, middle and end (batches of
three, threshold from their spread: the rule before 2026-12-07) and as judged on its reference subnets measured
again (level, spread, threshold). Then each profile is taken as a later session of the one before it, as
deploy checks one: the level of the 3 check subnets in the later big batch against the earlier profile (their
second batch divided by that batch's level), with the threshold each rule gives; the level deploy reads since
2026-12-07 (night), the median over the check subnets and every other reference subnet of the second batch
(the riders, 21 on the demo supernet), with its threshold; next to the level of all 20 reference subnets in the
later batch against the earlier profile's own batch (the better-measured truth; the riders' reading takes its
profiled level from the second batch instead, so the two share the later values but not the baseline).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import time
from pathlib import Path

import numpy as np


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _profile(ws, space, busy: int):
    from hwnas.devices import open_device
    from hwnas.profiling import load_profile, profile_device
    from hwnas.workflows.optimize import MEASURE_SETTINGS

    stop = mp.Event()
    hogs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
    for hog in hogs:
        hog.start()
    try:
        with open_device("local-cpu-ort", ws) as dev:
            path = profile_device(dev, space, ws, settings=dev.config.settings(**MEASURE_SETTINGS), ops=[],
                                  calibration=30, reference=20, jobs=1)
    finally:
        stop.set()
        for hog in hogs:
            hog.join()
    return load_profile(path)


def _old_rule_and_again(ws, space_name: str) -> tuple[dict, dict[str, float], int]:
    """The session as judged before, on its check batches only (the again batch left out); every subnet of the
    newest again batch (the 20 references and the 3 check subnets) with its latency; how many again batches
    were measured (2 when the first strayed from the profile's level)."""
    from hwnas.profiling.drift import AGAIN_PHASE, session_summaries
    from hwnas.profiling.store import MeasurementStore

    records = MeasurementStore.for_device(ws, "local-cpu-ort").records()
    again_records = [r for r in records if r.kind == "check" and r.role == AGAIN_PHASE]
    again = {r.key: r.measurement.median_ms for r in again_records}
    old = [r for r in records if not (r.kind == "check" and r.role == AGAIN_PHASE)]
    return session_summaries(old, space_name)[-1], again, len(again_records) // max(len(again), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=8)
    parser.add_argument("--busy", type=int, default=2, help="busy processes during every second profile (0: none)")
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/hwnas-sessions"))
    args = parser.parse_args()

    from hwnas.profiling.drift import batch_level, level_threshold, move_pct
    from hwnas.supernet import demo_checkpoint_path, load_checkpoint
    from hwnas.workflows import init_workspace

    ws, _ = init_workspace(args.workspace)
    space = load_checkpoint(demo_checkpoint_path()).space
    print("profile busy seconds | check batches: drift threshold verdict | references again: batches level spread "
          "threshold verdict")
    profiles = []
    for i in range(args.profiles):
        shutil.rmtree(ws.root / "profiles", ignore_errors=True)  # measure again; the exported files are kept
        busy = args.busy if i % 2 else 0
        t0 = time.monotonic()
        profile = _profile(ws, space, busy)
        seconds = time.monotonic() - t0
        new, (old, again_ms, batches) = profile["sessions"][-1], _old_rule_and_again(ws, space.name)
        again = new.get("again") or {}
        print(f"{i:7d} {busy:4d} {seconds:7.0f} | {old['drift_pct']:6.1f}% {old['threshold_pct']:6.1f}% "
              f"{'drifted' if old['drifted'] else 'steady':8s} | {batches:7d} {again.get('level', float('nan')):.3f} "
              f"{again.get('spread_pct', float('nan')):5.2f}% {new['threshold_pct']:5.1f}% "
              f"{'drifted' if new['drifted'] else 'steady'}", flush=True)
        profiles.append((profile, old, again_ms))

    print("\nlater session against the profile before it (3 check subnets in a big batch, as deploy reads them)")
    print("pair   level of 20 refs | level of 3 checks | old threshold verdict | new threshold verdict | "
          "level of all (deploy now) threshold verdict")
    agree = {"old": 0, "new": 0, "riders": 0}
    for i in range(1, len(profiles)):
        (before, old_before, first), (_, _, later) = profiles[i - 1], profiles[i]
        profiled = {r["key"]: r["median_ms"] for r in before["reference"]}
        truth = batch_level(profiled, {k: later[k] for k in profiled})["level"]
        checks = sorted(before["sessions"][-1]["checks"]["start"])
        twice = batch_level(profiled, {k: first[k] for k in profiled})
        # as deploy reads it: the check subnets' second batch, at the speed of the profile's own batch
        level = float(np.median([later[k] / (first[k] / twice["level"]) for k in checks]))
        # deploy now: the check subnets and the riders (every other subnet of the second batch) in one median
        every = sorted(k for k in first if k in later)
        levels = {"old": level, "new": level,
                  "riders": float(np.median([later[k] / (first[k] / twice["level"]) for k in every]))}
        thresholds = {"old": old_before["threshold_pct"], "new": level_threshold(twice["spread_pct"], len(checks)),
                      "riders": level_threshold(twice["spread_pct"], len(every))}
        truly = move_pct(truth) > 5.0
        verdicts = {}
        for rule, threshold in thresholds.items():
            verdicts[rule] = move_pct(levels[rule]) > threshold
            agree[rule] += verdicts[rule] == truly
        print(f"{i - 1}->{i}   {truth:.3f}{' (moved)' if truly else '        '}   | {level:.3f}             | "
              f"±{thresholds['old']:5.1f}% {'shifted' if verdicts['old'] else 'same':7s}     | "
              f"±{thresholds['new']:4.1f}% {'shifted' if verdicts['new'] else 'same':7s}     | "
              f"{levels['riders']:.3f} ({len(every)}) ±{thresholds['riders']:4.1f}% "
              f"{'shifted' if verdicts['riders'] else 'same'}")
    pairs = len(profiles) - 1
    print(f"\nverdict agrees with the 20 references' level (moved beyond 5% or not): old rule {agree['old']} of "
          f"{pairs}, 3 checks {agree['new']} of {pairs}, all {agree['riders']} of {pairs} (deploy now)")


if __name__ == "__main__":
    main()
