"""`demo`: the whole job on this machine with nothing but the install: profile this CPU (a short profile), fit
a latency predictor, search the shipped demo supernet on mnist5k for the front of top-1 against latency,
deploy the front to ONNX and TFLite, and measure it, predicted next to measured."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import HwnasError, SearchError
from hwnas.progress import ProgressFn
from hwnas.workspace import Workspace

__all__ = ["DemoPlan", "DemoResult", "demo", "DEMO_DEVICE", "DEMO_RUNTIME", "PLANS"]

DEMO_DEVICE = "local-cpu-ort"
DEMO_RUNTIME = "onnxruntime"  # profiled and predicted: ONNX exports are fast; the front is also measured as TFLite


@dataclass(frozen=True)
class DemoPlan:
    """How big each stage is: subnets measured whole to fit the predictor, whether the 20 reference subnets are
    measured to check it, search evaluations, images per top-1 evaluation (None: the whole validation split),
    batches of 250 images for batch-norm recalibration, front models deployed (None: all)."""

    profiled: int
    reference: bool
    evals: int
    limit: int | None
    calib_batches: int
    max_models: int | None


PLANS = {"full": DemoPlan(30, True, 60, None, 4, None), "quick": DemoPlan(8, False, 12, 200, 1, 2)}


@dataclass
class DemoResult:
    """Where everything went, the predictor's note, and the deployed front rows."""

    workspace: Workspace
    run_dir: Path
    profile: Path
    predictor: Path
    fit_note: str
    front_size: int
    evaluations: int
    rows: list[dict[str, Any]]
    seconds: float


def demo(out_dir: str | Path = "hwnas-demo", *, quick: bool = False, supernet: str | Path | None = None, seed: int = 0,
         progress: ProgressFn | None = None, on_stage: Callable[[str], None] | None = None,
         on_note: Callable[[str], None] | None = None) -> DemoResult:
    """Run the four stages into the workspace `out_dir` (made if missing; a second call resumes). `on_stage`
    gets each stage's title as it starts, `on_note` one line of what a stage found."""
    from hwnas.devices import open_device
    from hwnas.devices.inventory import add_device, load_inventory
    from hwnas.supernet import demo_checkpoint_path, load_checkpoint
    from hwnas.workflows.deploy import deploy_front
    from hwnas.workflows.search import prepare_search, search

    def stage(title: str) -> None:
        if on_stage is not None:
            on_stage(title)

    def note(text: str) -> None:
        if on_note is not None:
            on_note(text)

    started = time.monotonic()
    plan = PLANS["quick" if quick else "full"]
    ckpt = Path(supernet) if supernet is not None else demo_checkpoint_path()
    if not ckpt.is_file():
        raise SearchError(f"the supernet checkpoint {ckpt} does not exist"
                          + ("" if supernet else "; the demo supernet is missing from this install: reinstall hwnas"))
    ws = Workspace.init(out_dir)
    if DEMO_DEVICE not in load_inventory(ws):
        add_device(ws, DEMO_DEVICE, transport="local", runtime=DEMO_RUNTIME, threads=1,
                   description="this machine's CPU: onnxruntime (CPU EP), 1 thread")

    stage(f"1/4 profile this CPU ({plan.profiled} subnets measured whole, onnxruntime, 1 thread)")
    space = load_checkpoint(ckpt).space
    from hwnas.profiling import profile_device

    with open_device(DEMO_DEVICE, ws) as dev:
        profile = profile_device(dev, space, ws, settings=dev.config.settings(runs=30, warmup=5, rounds=2), ops=[],
                                 calibration=plan.profiled, reference=plan.reference, jobs=1, progress=progress)

    stage("2/4 fit a latency predictor")
    predictor_file, fit_note = _fit(ws, space, profile, seed)
    note(f"predictor {predictor_file} ({fit_note})")

    stage(f"3/4 search top-1 (mnist5k, {plan.limit or 'all'} validation images) vs latency, {plan.evals} evaluations")
    job = prepare_search(ckpt, [DEMO_DEVICE], workspace=ws, data="mnist5k", space=space.name, limit=plan.limit,
                         calib_batches=plan.calib_batches)
    run_dir = ws.runs_dir / ("demo-quick" if quick else "demo")
    outcome = search(job=job, out=run_dir, evals=plan.evals, algorithm="accelerated", seed=seed, progress=progress)
    note(f"front of {len(outcome.front)} models after {outcome.evaluator.spent} evaluations")

    stage("4/4 deploy the front to ONNX and TFLite and measure it"
          + (f" (quick: {plan.max_models} models along the front)" if plan.max_models else ""))
    with open_device(DEMO_DEVICE, ws) as dev:
        rows = deploy_front(run_dir, dev, ["onnx", "tflite"], supernet=job.supernet,
                            settings=dev.config.settings(runs=30, warmup=5, rounds=2), progress=progress,
                            max_models=plan.max_models)
    return DemoResult(ws, run_dir, profile, predictor_file, fit_note, len(outcome.front), outcome.evaluator.spent,
                      rows, time.monotonic() - started)


def _fit(ws: Workspace, space: Any, profile_path: Path, seed: int) -> tuple[Path, str]:
    """A boosted latency predictor on the measured subnets; its error on the reference subnets held out."""
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
    path = ws.predictor_path(DEMO_DEVICE, space.name, DEMO_RUNTIME)
    predictor.meta_ = {"device": DEMO_DEVICE, "runtime": DEMO_RUNTIME, "profile": str(profile_path),
                       "trained_on": [r["key"] for r in train]}
    predictor.save(path)
    return path, note
