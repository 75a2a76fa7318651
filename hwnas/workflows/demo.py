"""`demo`: `optimize` on this machine with embedded defaults and nothing but the install: a new workspace with the
local devices, a short profile of this CPU, a predictor, a search of the shipped demo supernet on mnist5k, and
the front deployed to ONNX and TFLite and measured, predicted next to measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwnas.errors import SearchError
from hwnas.progress import ProgressFn
from hwnas.workflows.optimize import OptimizeResult, optimize

__all__ = ["DemoPlan", "demo", "DEMO_DEVICE", "PLANS"]

DEMO_DEVICE = "local-cpu-ort"  # onnxruntime: profiled and predicted (ONNX exports are fast); TFLite is also measured


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


# 60 subnets profiled (optimize's default too), not 30: the search ends in a region that 30 random subnets cover
# thinly, and the predictor then errs there for the whole front at once (benchmarks/README.md, "Every reference
# subnet in the front's batch": every model of 6 demos within +-5% with 60, in 1 of 3 demos with 30); it costs 10-30 s
PLANS = {"full": DemoPlan(60, True, 60, None, 4, None), "quick": DemoPlan(8, False, 12, 200, 1, 2)}


def demo(out_dir: str | Path = "hwnas-demo", *, quick: bool = False, supernet: str | Path | None = None, seed: int = 0,
         progress: ProgressFn | None = None, on_stage: Callable[[str], None] | None = None,
         on_note: Callable[[str], None] | None = None) -> OptimizeResult:
    """`optimize` on `DEMO_DEVICE` in the workspace `out_dir` (made if missing; a second call resumes), with the
    plan `PLANS["quick"]` or `PLANS["full"]`, no latency budget, the shipped demo supernet (or `supernet`)."""
    from hwnas.supernet import demo_checkpoint_path
    from hwnas.workflows.workspace import init_workspace

    plan = PLANS["quick" if quick else "full"]
    ckpt = Path(supernet) if supernet is not None else demo_checkpoint_path()
    if not ckpt.is_file():
        raise SearchError(f"the supernet checkpoint {ckpt} does not exist"
                          + ("" if supernet else "; the demo supernet is missing from this install: reinstall hwnas"))
    ws, _ = init_workspace(out_dir)
    return optimize(DEMO_DEVICE, supernet=ckpt, data="mnist5k", workspace=ws, evals=plan.evals, limit=plan.limit,
                    calib_batches=plan.calib_batches, profile_subnets=plan.profiled, reference=plan.reference,
                    formats=("onnx", "tflite"), max_models=plan.max_models,
                    out=ws.runs_dir / ("demo-quick" if quick else "demo"), seed=seed, progress=progress,
                    on_stage=on_stage, on_note=on_note)
