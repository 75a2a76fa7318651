"""`hwnas demo`: the whole job on this machine with nothing but the install: profile this CPU (a short profile),
fit a latency predictor, search the shipped demo supernet on mnist5k for the front of top-1 vs latency, deploy
the front to TFLite and ONNX, measure it, and print predicted next to measured latency."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import Progress

from hwnas.cli._common import SeedOpt, console, out
from hwnas.cli.search import _columns, build_search, run_with_progress
from hwnas.errors import HwnasError, SearchError
from hwnas.workspace import Workspace

__all__ = ["register", "demo", "DEMO_DEVICE", "PLANS"]

DEMO_DEVICE = "local-cpu-ort"
DEMO_RUNTIME = "onnxruntime"  # profiled and predicted: ONNX exports are fast; the front is also measured as TFLite
# subnets measured whole to fit the predictor, the 20 reference subnets measured to check it, search evaluations,
# images per top-1 evaluation (None: the whole validation split), batches of 250 images for batch-norm
# recalibration, front models deployed (None: all)
PLANS = {"full": (30, True, 60, None, 4, None), "quick": (8, False, 12, 200, 1, 2)}


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def _stage(title: str) -> None:
    console.rule(f"[bold]{title}")


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo workspace.")] = Path("hwnas-demo"),
    quick: Annotated[bool, typer.Option("--quick", help="A smaller profile and search (about a minute or two).")]
    = False,
    supernet: Annotated[Path | None, typer.Option("--supernet", help="Another supernet checkpoint (default: the "
                                                                     "shipped demo supernet).")] = None,
    seed: SeedOpt = 0,
) -> None:
    """Profile this CPU, fit a predictor, search the demo supernet, deploy the front, measure it."""
    from hwnas.devices import open_device
    from hwnas.devices.inventory import add_device, load_inventory
    from hwnas.supernet import demo_checkpoint_path

    started = time.monotonic()
    n_profile, reference, n_evals, limit, calib_batches, max_models = PLANS["quick" if quick else "full"]
    ckpt = supernet or demo_checkpoint_path()
    if not ckpt.is_file():
        raise SearchError(f"the supernet checkpoint {ckpt} does not exist"
                          + ("" if supernet else "; the demo supernet is missing from this install: reinstall hwnas"))
    ws = Workspace.init(out_dir)
    if DEMO_DEVICE not in load_inventory(ws):
        add_device(ws, DEMO_DEVICE, transport="local", runtime=DEMO_RUNTIME, threads=1,
                   description="this machine's CPU: onnxruntime (CPU EP), 1 thread")

    _stage(f"1/4 profile this CPU ({n_profile} subnets measured whole, onnxruntime, 1 thread)")
    from hwnas.supernet import load_checkpoint

    space = load_checkpoint(ckpt).space
    with open_device(DEMO_DEVICE, ws) as dev:
        profile = _short_profile(dev, space, ws, n_profile, reference)

    _stage("2/4 fit a latency predictor")
    predictor_file, fit_note = _fit(ws, space, profile, seed)
    out.print(f"predictor {predictor_file} ({fit_note})")

    _stage(f"3/4 search top-1 (mnist5k, {limit or 'all'} validation images) vs latency, {n_evals} evaluations")
    built = build_search(ws, space.name, ckpt, "mnist5k", [DEMO_DEVICE], {}, limit, batch_size=250,
                         calib_batches=calib_batches)
    run_dir = ws.runs_dir / ("demo-quick" if quick else "demo")
    outcome = run_with_progress(built, run_dir, n_evals, "accelerated", seed,
                                f"hwnas demo --out {out_dir}" + (" --quick" if quick else ""))
    out.print(f"front of {len(outcome.front)} models after {outcome.evaluator.spent} evaluations")

    _stage("4/4 deploy the front to ONNX and TFLite and measure it"
           + (f" (quick: {max_models} models along the front)" if max_models else ""))
    from hwnas.deploy import deploy_front

    with open_device(DEMO_DEVICE, ws) as dev, Progress(*_columns(), console=console) as bar:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        settings = dev.config.settings(runs=30, warmup=5, rounds=2)
        rows = deploy_front(run_dir, dev, ["onnx", "tflite"], supernet=built["supernet"], settings=settings,
                            progress=on_progress, max_models=max_models)
    _print_summary(rows)
    out.print(f"\ndone in {time.monotonic() - started:.0f} s. Everything is in {ws.root}:")
    out.print(f"  report   {run_dir / 'report.html'}")
    out.print(f"  front    {run_dir / 'front.csv'}")
    out.print(f"  models   {run_dir / 'models'}")
    out.print(f"  profile  {profile}")


def _short_profile(dev: Any, space: Any, ws: Workspace, n: int, reference: bool) -> Path:
    """Measure `n` random subnets whole (no per-operator table): enough for a boosted predictor; with
    `reference`, also the 20 reference subnets, held out to report the predictor's error."""
    from hwnas.profiling import profile_device

    settings = dev.config.settings(runs=30, warmup=5, rounds=2)
    with Progress(*_columns(), console=console) as bar:
        tasks: dict[str, int] = {}

        def on_progress(event: Any) -> None:
            if event.stage not in tasks:
                tasks[event.stage] = bar.add_task(event.stage, total=event.total)
            bar.update(tasks[event.stage], completed=event.done, total=event.total)

        return profile_device(dev, space, ws, settings=settings, ops=[], calibration=n, reference=reference,
                              jobs=1, progress=on_progress)


def _fit(ws: Workspace, space: Any, profile_path: Path, seed: int) -> tuple[Path, str]:
    """A boosted latency predictor on the measured subnets; its error on the reference subnets held out."""
    from hwnas.deploy import predictor_path
    from hwnas.predictors import create_predictor
    from hwnas.predictors.fitting import measured_rows
    from hwnas.profiling import load_profile

    profile = load_profile(profile_path)
    train = measured_rows(profile, ("calibration",))
    held = measured_rows(profile, ("reference",))
    if len(train) < 3:
        raise HwnasError(f"the short profile measured only {len(train)} subnets; see {profile_path}")
    predictor = create_predictor("gbm", space=space, seed=seed, min_samples_trees=12, n_estimators=200)
    predictor.fit([r["arch"] for r in train], np.array([r["median_ms"] for r in train]))
    note = f"fitted on {len(train)} measured subnets"
    if held:
        pred = predictor.predict([r["arch"] for r in held])
        true = np.array([r["median_ms"] for r in held])
        mape = float(np.mean(np.abs(pred - true) / true) * 100)
        note += f"; {mape:.1f}% mean error on {len(held)} held-out reference subnets"
    path = predictor_path(ws, DEMO_DEVICE, space.name, DEMO_RUNTIME)
    predictor.meta_ = {"device": DEMO_DEVICE, "runtime": DEMO_RUNTIME, "profile": str(profile_path),
                       "trained_on": [r["key"] for r in train]}
    predictor.save(path)
    return path, note


def _print_summary(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table as RichTable

    name = f"latency_ms[{DEMO_DEVICE}]"
    table = RichTable(title="deployed front: predicted vs measured latency on this CPU (onnxruntime, 1 thread)")
    for col in ("#", "top-1 %", "predicted ms", "measured ms", "error %", "measured TFLite ms", "key"):
        table.add_column(col)
    for i, r in enumerate(rows, 1):
        pred = r["values"].get(name)
        meas = (r.get("measured") or {}).get(name)
        tfl = (r.get("measured") or {}).get(f"latency_ms[{DEMO_DEVICE},tflite]")
        err = f"{100 * (pred - meas) / meas:+.0f}" if pred is not None and meas else "-"
        if pred is None and meas is None and tfl is None:
            continue  # not deployed (quick mode)
        table.add_row(str(i), f"{r['values']['top1']:.2f}", f"{pred:.3f}", "-" if meas is None else f"{meas:.3f}",
                      err, "-" if tfl is None else f"{tfl:.3f}", r["key"][:36])
    out.print(table)
