"""Does the search pick the archs its latency predictor under-predicts? The predictor's error on a run's front
against its error on every other arch the search evaluated, all measured in one interleaved batch.

    python benchmarks/front_selection.py RUN_FOLDER [RUN_FOLDER ...] [--device local-cpu-ort] [--rounds 6]

RUN_FOLDER is a deployed `hwnas optimize`/`demo` run whose device profile and predictor lie in the workspace (the
run folder's grandparent, as `optimize` lays it out). Every evaluated arch is exported as profiling exports it
(random weights) and measured in one batch with the profile's reference and calibration subnets, whose median
ratio to the profile is the device's level now; each arch's error is (predicted - measured / level) / measured.
A front that errs lower than the archs around it is the winner's curse: the front is where the search found
archs predicted fast for their accuracy, and a predictor's low errors are what put some of them there.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--device", default="local-cpu-ort")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs-per-round", type=int, default=10)
    args = parser.parse_args()
    print(f"{'run':40} {'level':>6} | {'front':>5} {'mean err':>9} | {'others':>6} {'mean err':>9} | "
          f"{'others as accurate':>18} {'mean err':>9}")
    for run in args.runs:
        level, groups = measure(run, args.device, args.rounds, args.runs_per_round)
        cells = []
        for name in ("front", "other", "band"):
            errors = groups[name]
            cells.append(f"{len(errors):5d} {np.mean(errors) if errors else float('nan'):+8.2f}%")
        print(f"{str(run)[-40:]:40} {level:6.3f} | {cells[0]} | {cells[1]:>16} | {cells[2]:>28}")


def measure(run: Path, device: str, rounds: int, runs: int) -> tuple[float, dict[str, list[float]]]:
    """The device's level now, and the predictor's errors in % on the front, on the other evaluated archs and on
    those of them at least as accurate as the front's least accurate model."""
    from front_error import load_run

    from hwnas.devices import BenchmarkModel, open_device
    from hwnas.export import export_arch
    from hwnas.profiling.profiler import _export_arch_cached, arch_models_dir

    ws, front, profile, space, predictor, statistic = load_run(run, device)
    evaluated = {e["key"]: e for e in map(json.loads, (run / "evaluated.jsonl").read_text().splitlines())}
    archs = {k: space.validate(e["arch"]) for k, e in evaluated.items()}
    profiled = [r for role in ("reference", "calibration") for r in profile.get(role) or []]
    models = []
    with tempfile.TemporaryDirectory(dir=ws.root) as tmp:
        for key, arch in archs.items():
            made = _export_arch_cached(export_arch, space, arch, Path(tmp), "onnx", "fp32")
            models.append(BenchmarkModel(made.path, "evaluated:" + key))
        arch_dir = arch_models_dir(ws, space, "onnx", "fp32")
        for r in profiled:
            cached = _export_arch_cached(export_arch, space, space.validate(r["arch"]), arch_dir, "onnx", "fp32")
            models.append(BenchmarkModel(cached.path, "profiled:" + r["key"]))
        with open_device(device, ws) as dev:
            measured = {m.key: getattr(m, statistic) for m in
                        dev.benchmark(models, dev.config.settings(runs=runs * rounds, rounds=rounds, warmup=5))
                        if m.ok}
    level = float(np.median([measured["profiled:" + r["key"]] / r[statistic] for r in profiled
                             if "profiled:" + r["key"] in measured]))
    on_front = {r["key"] for r in front["front"]}
    least = min(evaluated[k]["values"]["top1"] for k in on_front if k in evaluated)
    groups: dict[str, list[float]] = {"front": [], "other": [], "band": []}
    for key, arch in archs.items():
        if "evaluated:" + key not in measured:
            continue
        p = float(predictor.predict([arch])[0])
        m = measured["evaluated:" + key] / level
        error = 100.0 * (p - m) / m
        if key in on_front:
            groups["front"].append(error)
        else:
            groups["other"].append(error)
            if evaluated[key]["values"]["top1"] >= least:
                groups["band"].append(error)
    return level, groups


if __name__ == "__main__":
    main()
