"""Why a deployed front misses its predicted latency: the error split into the device's state, the weights in the
files, and the predictor, all measured in one interleaved batch.

    python benchmarks/front_error.py RUN_FOLDER [--workspace WS] [--device local-cpu-ort] [--rounds 10]

RUN_FOLDER is a deployed `hwnas optimize`/`deploy` run whose device profile lies in the workspace (default: the
run folder's grandparent, as `optimize` lays it out). One batch, rounds interleaved, measures:
- the front's deployed files (trained weights),
- the same archs exported as profiling exports them (random weights, batch-norm on noise),
- the profile's own whole-subnet files (reference and calibration subnets, the very files it measured).
Then, per front model: the device's level now against the profile (median ratio of the profile's subnets),
trained / random-weight latency, and the predictor's error on the random-weight file with the level removed:
the part that is the predictor's own.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def load_run(run: Path, device: str, workspace: Path | None = None):
    """A deployed run's (workspace, front.json, the device's profile, space, predictor, statistic); the workspace
    defaults to the run folder's grandparent, as `optimize` lays it out."""
    from hwnas.predictors import load_predictor
    from hwnas.profiling import load_profile
    from hwnas.supernet import load_checkpoint
    from hwnas.workspace import Workspace

    ws = Workspace(workspace or run.parent.parent)
    front = json.loads((run / "front.json").read_text())
    settings = json.loads((run / "settings.json").read_text())
    deployed = front["deployed"][device]
    profile_path = Path((deployed.get("session_check") or {}).get("profile") or "")
    if not profile_path.is_file():
        raise SystemExit(f"no profile recorded for {device} in {run}/front.json")
    profile = load_profile(profile_path)
    space = load_checkpoint(Path(settings["supernet"])).space
    predictor = load_predictor(ws.predictor_path(device, space.name, profile["runtime"]), space=space)
    return ws, front, profile, space, predictor, deployed.get("statistic", "median_ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--device", default="local-cpu-ort")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--profiled", type=int, default=100, help="profile subnets measured again (level, refit)")
    args = parser.parse_args()

    from hwnas.devices import BenchmarkModel, open_device
    from hwnas.export import export_arch
    from hwnas.predictors import create_predictor
    from hwnas.profiling.profiler import _export_arch_cached, arch_models_dir
    from hwnas.profiling.reference import corner_archs

    ws, front, profile, space, predictor, stat = load_run(args.run, args.device, args.workspace)

    rows = [r for r in front["front"] if r.get("models", {}).get("onnx-fp32")]
    archs = [space.validate(r["arch"]) for r in rows]
    arch_dir = arch_models_dir(ws, space, "onnx", "fp32")
    profiled = [r for role in ("reference", "calibration") for r in profile.get(role) or []][: args.profiled]
    models = []
    with tempfile.TemporaryDirectory(dir=ws.root) as tmp:
        for r, arch in zip(rows, archs):
            models.append(BenchmarkModel(args.run / r["models"]["onnx-fp32"], "trained:" + arch.key))
            fresh = _export_arch_cached(export_arch, space, arch, Path(tmp), "onnx", "fp32")
            models.append(BenchmarkModel(fresh.path, "random:" + arch.key))
        corners = corner_archs(space, per_resolution=True)
        for arch in corners:
            made = _export_arch_cached(export_arch, space, arch, Path(tmp), "onnx", "fp32")
            models.append(BenchmarkModel(made.path, "corner:" + arch.key))
        for r in profiled:
            cached = _export_arch_cached(export_arch, space, space.validate(r["arch"]), arch_dir, "onnx", "fp32")
            models.append(BenchmarkModel(cached.path, "profiled:" + r["key"]))
        with open_device(args.device, ws) as dev:
            measured = list(dev.benchmark(models, dev.config.settings(runs=args.runs, rounds=args.rounds, warmup=5)))
    failed = [f"{m.key}: {m.error}" for m in measured if m.status != "ok"]
    if failed:
        raise SystemExit("failed: " + "; ".join(failed[:3]))
    now = {m.key: getattr(m, stat) for m in measured}
    level = float(np.median([now["profiled:" + r["key"]] / r[stat] for r in profiled]))
    spread = [now["profiled:" + r["key"]] / r[stat] / level for r in profiled]
    print(f"device level now vs its profile: {level:.3f}x (median of {len(profiled)} profiled subnets; "
          f"per-subnet ratio / level {min(spread):.3f}-{max(spread):.3f})")
    predicted = predictor.predict(archs)
    print(f"{'arch':<44} {'pred':>7} {'deployed':>9} {'trained':>8} {'random':>8} {'tr/rnd':>7} "
          f"{'err now':>8} {'err pred':>9}")
    errs, weights, own = [], [], []
    for r, arch, p in zip(rows, archs, predicted):
        trained, rnd = now["trained:" + arch.key], now["random:" + arch.key]
        deployed_ms = (r.get("measured") or {}).get(f"latency_ms[{args.device}]")
        errs.append(100 * (p - trained) / trained)
        weights.append(trained / rnd)
        own.append(100 * (p * level - rnd) / rnd)
        print(f"{arch.key:<44} {p:7.4f} {deployed_ms or float('nan'):9.4f} {trained:8.4f} {rnd:8.4f} "
              f"{trained / rnd:7.3f} {errs[-1]:+7.1f}% {own[-1]:+8.1f}%")
    trained_on = set(predictor.meta_.get("trained_on") or [])
    train = [r for r in profiled if r["key"] in trained_on]
    outliers = sum(abs(now["profiled:" + r["key"]] / r[stat] / level - 1) > 0.1 for r in profiled)
    print(f"profiled subnets off the level by more than 10% when measured again: {outliers}/{len(profiled)}")
    train_archs = [r["arch"] for r in train]
    train_y = [now["profiled:" + r["key"]] for r in train]
    variants = {"its subnets": (train_archs, train_y),
                "+ the space's corners": (train_archs + corners, train_y + [now["corner:" + a.key] for a in corners])}
    for label, (xs, ys) in variants.items():
        again = create_predictor("gbm", space=space).fit(xs, np.array(ys)).predict(archs)
        print(f"gbm refitted on {label} as measured now: error on the random-weight front files "
              + ", ".join(f"{100 * (p - now['random:' + a.key]) / now['random:' + a.key]:+.1f}%"
                          for a, p in zip(archs, again)))
    print(f"prediction vs trained files now: mean {np.mean(errs):+.1f}%; trained/random weights: "
          f"{min(weights):.3f}-{max(weights):.3f} (median {np.median(weights):.3f}); the predictor's own error "
          f"(random weights, level removed): {min(own):+.1f}% to {max(own):+.1f}% (mean {np.mean(own):+.1f}%)")


if __name__ == "__main__":
    main()
