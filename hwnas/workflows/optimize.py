"""`optimize`: from a device and a latency budget to deployed, measured models in one call. It reuses the
device's predictor for this supernet's space or makes one (a short profile of whole subnets, then a fit),
searches, deploys the front and measures it. Every stage resumes: run it again after an interruption."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import PredictorError, ProfilingError, SearchError
from hwnas.progress import ProgressFn
from hwnas.workflows._common import device_configs, resolve_workspace
from hwnas.workflows.objectives import latency_name
from hwnas.workspace import Workspace

__all__ = ["OptimizeResult", "optimize", "MEASURE_SETTINGS"]

# how the profile measures here (deploy then measures as the profile did, so the two compare; with these where a
# reused predictor has no profile)
# 6 interleaved rounds, each in a freshly loaded session: one session's latency is one draw of its memory placement
# (on this machine, six sessions of one demo subnet spread by a median 5.5% where six blocks of one session spread
# by 2.5%), so the median over rounds averages placement as well as time
MEASURE_SETTINGS = {"runs": 60, "warmup": 5, "rounds": 6, "fresh_session": True}


@dataclass
class OptimizeResult:
    """What each stage produced: the predictor (reused or fitted, with its held-out error), the run folder,
    and the deployed front rows with predicted and measured latency."""

    workspace: Workspace
    device: str
    run_dir: Path
    predictor: Path
    predictor_reused: bool
    fit_note: str
    profile: Path | None
    evaluations: int
    front_size: int
    rows: list[dict[str, Any]]
    budget_ms: float | None
    seconds: float
    deployed: list[dict[str, Any]] = field(default_factory=list)
    session_check: dict[str, Any] | None = None  # the deploy session against the profile (report.session_summary)

    def deployed_rows(self) -> list[dict[str, Any]]:
        """The front rows that were measured: key, top-1, predicted and measured ms, and whether the measured
        latency keeps the budget (None without a budget)."""
        name = latency_name(self.device)
        rows = []
        for r in self.rows:
            measured = (r.get("measured") or {}).get(name)
            if measured is None:
                continue
            rows.append({"key": r["key"], "top1": r["values"].get("top1"), "predicted_ms": r["values"].get(name),
                         "measured_ms": measured, "models": r.get("models") or {},
                         "within_budget": None if self.budget_ms is None else bool(measured <= self.budget_ms)})
        return rows


def optimize(device: str, *, supernet: str | Path | None = None, data: str = "mnist5k",
             max_latency_ms: float | None = None, workspace: Workspace | str | Path | None = None, evals: int = 60,
             limit: int | None = None, calib_batches: int = 4, profile_subnets: int = 60, reference: bool = True,
             formats: Sequence[str] = ("onnx", "tflite"), int8: bool = False, max_models: int | None = None,
             out: str | Path | None = None, refit: bool = False, seed: int = 0, budget_coverage: float | None = 0.95,
             ray: Any = None, progress: ProgressFn | None = None,
             on_stage: Callable[[str], None] | None = None,
             on_note: Callable[[str], None] | None = None) -> OptimizeResult:
    """Search `supernet` (default: the shipped demo supernet) for the front of top-1 on `data` against latency on
    `device` under `max_latency_ms`, and deploy it there. The device's predictor for the supernet's space is
    reused when it exists (`refit`: make a new one); otherwise `profile_subnets` random subnets (and the 20
    reference subnets, held out, with `reference`) are measured whole and a boosted predictor is fitted. The run
    folder is `out` (default `runs/optimize-<device>`), resumed when it holds the same search. `ray`
    (`hwnas.distributed.RaySettings`) spreads the search's top-1 evaluations over Ray workers."""
    from hwnas import DEMO_SUPERNET
    from hwnas.devices import open_device
    from hwnas.search.runfolder import RunFolder
    from hwnas.workflows.deploy import deploy_front, int8_calibration, read_session_checks
    from hwnas.workflows.search import check_budgets, prepare_search, search

    def stage(title: str) -> None:
        if on_stage is not None:
            on_stage(title)

    def note(text: str) -> None:
        if on_note is not None:
            on_note(text)

    started = time.monotonic()
    ws = resolve_workspace(workspace)
    budgets = check_budgets({device: max_latency_ms} if max_latency_ms is not None else {}, [device])
    if evals < 1:
        raise SearchError(f"the search needs at least 1 evaluation; got --evals {evals}")
    if profile_subnets < 3:
        raise ProfilingError(f"a predictor needs at least 3 measured subnets; got --profile-subnets {profile_subnets}")
    config = device_configs(ws, [device])[device]
    ckpt = Path(supernet) if supernet is not None else DEMO_SUPERNET
    if not ckpt.is_file():
        raise SearchError(f"supernet checkpoint {ckpt} does not exist")
    from hwnas.supernet import load_checkpoint  # torch: imported once the cheap checks passed

    space = load_checkpoint(ckpt).space
    predictor_file = ws.predictor_path(device, space.name, config.runtime)
    profile = None

    stage(f"1/4 latency predictor for {device} ({space.name}, {config.runtime})")
    reused = not refit and _usable_predictor(predictor_file, space)
    if reused:
        fit_note = f"reusing {predictor_file}"
    else:
        with open_device(device, ws) as dev:
            from hwnas.profiling import profile_device
            from hwnas.workflows.profile import refuse_other_config

            refuse_other_config(ws, device, space, config.runtime)
            profile = profile_device(dev, space, ws, settings=dev.config.settings(**MEASURE_SETTINGS), ops=[],
                                     calibration=profile_subnets, reference=reference, jobs=1, progress=progress)
        fit_note = _fit_whole_subnets(profile, predictor_file, seed)
    note(f"predictor {predictor_file}: {fit_note}")

    stage(f"2/4 search top-1 ({data}, {limit or 'all'} validation images) vs latency"
          + (f" under {max_latency_ms:g} ms" if max_latency_ms is not None else "") + f", {evals} evaluations")
    job = prepare_search(ckpt, [device], workspace=ws, budgets=budgets, data=data, space=space.name, limit=limit,
                         calib_batches=calib_batches, budget_coverage=budget_coverage)
    if budgets:
        note(f"the budget is held on {job.settings['budget_margin'][device]}")
    run_dir = Path(out) if out is not None else ws.runs_dir / f"optimize-{device}"
    outcome = search(job=job, out=run_dir, evals=evals, algorithm="accelerated", seed=seed, ray=ray,
                     progress=progress)
    note(f"front of {len(outcome.front)} models after {outcome.evaluator.spent} evaluations")

    stage(f"3/4 deploy the front ({', '.join(formats)}{', int8' if int8 else ''}) and measure it on {device}"
          + (f" ({max_models} models along the front)" if max_models else ""))
    calib = None
    if int8:
        calib = int8_calibration(job.settings)
    from hwnas.profiling import profile_path

    # measured as the device's profile was (the one just taken, or the one a reused predictor was fitted on, which
    # `hwnas profile` may have measured with other settings); these settings where the device has no profile
    profiled = profile_path(ws, device, space.name, config.runtime, "fp32").is_file()
    with open_device(device, ws) as dev:
        rows = deploy_front(run_dir, dev, list(formats), int8=int8, supernet=job.supernet, calib=calib,
                            settings=None if profiled else dev.config.settings(**MEASURE_SETTINGS),
                            progress=progress, max_models=max_models, workspace=ws)
    stage("4/4 predicted vs measured")
    result = OptimizeResult(ws, device, run_dir, predictor_file, reused, fit_note, profile, outcome.evaluator.spent,
                            len(outcome.front), rows, max_latency_ms, time.monotonic() - started)
    result.deployed = result.deployed_rows()
    result.session_check = read_session_checks(RunFolder(run_dir), [device]).get(device)
    return result


def _usable_predictor(path: Path, space: Any) -> bool:
    """Whether `path` holds a predictor fitted for exactly this space (same options)."""
    from hwnas.predictors import load_predictor

    if not path.is_file():
        return False
    try:
        load_predictor(path, space=space)
    except PredictorError:
        return False
    return True


def _fit_whole_subnets(profile: Path, target: Path, seed: int) -> str:
    """A boosted predictor on the profile's random subnets, written to `target`; its error on the reference
    subnets, which it never saw."""
    from hwnas.predictors.fitting import evaluate_on_rows, fit_from_profile, held_out_rows
    from hwnas.profiling import load_profile

    data = load_profile(profile)
    model = fit_from_profile("gbm", data, profile_path=profile, seed=seed)
    model.save(target)
    note = f"gbm fitted on {len(model.meta_['trained_on'])} measured subnets"
    held = held_out_rows(model, data)
    if held:
        metrics = evaluate_on_rows(model, held)[0]
        note += (f"; on {metrics['n']} held-out reference subnets: {metrics['mape_pct']:.1f}% mean error, "
                 f"{metrics['within_10pct'] * 100:.0f}% within 10%")
    for warning in model.meta_.get("warnings") or []:  # e.g. the device's speed changed during the profile
        note += f"; warning: {warning}"
    return note
