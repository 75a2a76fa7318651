"""Round levels on this machine: profile the demo supernet's whole subnets several times as `hwnas optimize`
does (30 calibration + 20 held-out reference subnets, 60 runs in 6 interleaved rounds, a fresh session per round),
and print, per profile, the runner's round levels and the held-out error of a predictor fitted on it, from the
plain median over all samples and from the median after dividing each round by its level (what hwnas uses).

    python benchmarks/round_levels.py [--profiles 12] [--workspace /tmp/hwnas-rounds]

The held-out error is gbm's (as `optimize` fits it) on the 20 reference subnets, mean |error| and the share
within +-10%. Between profiles: the share of subnets whose latency, with the profile's median level removed,
stays within 3% of the first profile's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np


def held_out(space, rows: list[dict], field: str) -> tuple[float, float]:
    from hwnas.predictors import create_predictor

    train = [r for r in rows if r["role"] == "calibration"]
    test = [r for r in rows if r["role"] == "reference"]
    model = create_predictor("gbm", space=space).fit([r["key"] for r in train], np.array([r[field] for r in train]))
    pred = model.predict([r["key"] for r in test])
    y = np.array([r[field] for r in test])
    err = np.abs(pred - y) / y
    return 100 * float(err.mean()), float(np.mean(err <= 0.10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=12)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/hwnas-rounds"))
    args = parser.parse_args()

    from hwnas.devices import open_device
    from hwnas.profiling import profile_device
    from hwnas.supernet import demo_checkpoint_path, load_checkpoint
    from hwnas.workflows import init_workspace
    from hwnas.workflows.optimize import MEASURE_SETTINGS

    ws, _ = init_workspace(args.workspace)
    space = load_checkpoint(demo_checkpoint_path()).space
    batches = []
    print("profile  seconds  round levels                         held-out |error| (within 10%): plain median / "
          "levels divided out / fastest round")
    for i in range(args.profiles):
        shutil.rmtree(ws.root / "profiles", ignore_errors=True)  # measure again; the exported files are kept
        t0 = time.monotonic()
        with open_device("local-cpu-ort", ws) as dev:
            profile_device(dev, space, ws, settings=dev.config.settings(**MEASURE_SETTINGS), ops=[], calibration=30,
                           reference=20, jobs=1)
        seconds = time.monotonic() - t0
        store = ws.root / "profiles" / "local-cpu-ort" / "measurements.jsonl"
        records = [json.loads(line) for line in store.read_text().splitlines() if line.strip()]
        rows = [{"key": r["key"], "role": r["role"], "median": r["measurement"]["median_ms"],
                 "raw": r["measurement"]["raw_median_ms"], "levels": r["measurement"]["round_levels"],
                 "fastest": min(r["measurement"]["round_medians_ms"])}
                for r in records if r["kind"] == "arch"]
        plain, divided = held_out(space, rows, "raw"), held_out(space, rows, "median")
        fastest = held_out(space, rows, "fastest")
        levels = " ".join(f"{x:.2f}" for x in rows[0]["levels"])
        print(f"{i:7d}  {seconds:7.0f}  {levels:36s} {plain[0]:4.1f}% ({plain[1]:.0%}) / {divided[0]:4.1f}% "
              f"({divided[1]:.0%}) / {fastest[0]:4.1f}% ({fastest[1]:.0%})", flush=True)
        batches.append({r["key"]: r for r in rows})
    for field, label in (("raw", "plain median"), ("median", "levels divided out"), ("fastest", "fastest round")):
        shares, as_is = [], []
        for batch in batches[1:]:
            keys = sorted(set(batch) & set(batches[0]))
            q = np.array([batch[k][field] / batches[0][k][field] for k in keys])
            shares.append(float(np.mean(np.abs(q / np.median(q) - 1) <= 0.03)))
            as_is.append(float(np.mean(np.abs(q - 1) <= 0.03)))
        print(f"within 3% of the first profile, {label}: level removed " + " ".join(f"{s:.2f}" for s in shares)
              + " | as measured " + " ".join(f"{s:.2f}" for s in as_is))


if __name__ == "__main__":
    main()
