"""`search`: the Pareto front of a supernet's top-1 against predicted latency on one or more devices, into a
resumable run folder. `prepare_search` loads what a search needs (supernet, data, device predictors) into a
typed `SearchJob`; `search` runs it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import CheckpointError, DataError, PredictorError, SearchError
from hwnas.files import sha256_file
from hwnas.objective import Constraint, Objective
from hwnas.progress import ProgressFn, emit
from hwnas.workflows._common import device_configs, resolve_workspace
from hwnas.workflows.objectives import SupernetAccuracy, predicted_latency
from hwnas.workspace import Workspace

__all__ = ["SearchJob", "prepare_search", "load_device_predictor", "load_reused", "load_prior", "search",
           "check_budgets", "budget_constraint", "TOP1_KEYS", "MIN_PRIOR_ARCHS"]

# settings that decide a run's top-1 values: another run's carry over only where all of them match
TOP1_KEYS = ("supernet_sha256", "data", "limit", "bn_calibration_images")
MIN_PRIOR_ARCHS = 10  # fewer related-task evaluations than this teach the prior model nothing reliable


@dataclass
class SearchJob:
    """Everything one search needs, loaded and checked: the space, the supernet and its data, the objectives
    (top-1 first, then one latency per device), the latency budgets as constraints, and the settings the run
    folder records (and resumes by)."""

    workspace: Workspace
    space: Any
    supernet: Any
    data: Any
    devices: list[str]
    objectives: list[Objective]
    constraints: list[Constraint]
    predictors: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)


def check_budgets(budgets: Mapping[str, float] | None, devices: Sequence[str]) -> dict[str, float]:
    """{device: ms}: each device searched, each budget a positive number of milliseconds."""
    checked: dict[str, float] = {}
    for name, ms in (budgets or {}).items():
        if name not in devices:
            raise SearchError(f"a latency budget names device {name!r}, which is not searched; add --device {name}")
        try:
            value = float(ms)
        except (TypeError, ValueError):
            value = -1.0
        if not value > 0 or value == float("inf"):
            raise SearchError(f"the latency budget of {name} must be a positive number of ms, like {name}=30; "
                              f"got {ms!r}")
        checked[name] = value
    return checked


def load_device_predictor(workspace: Workspace, device: str, space: Any, runtime: str) -> Any:
    """The fitted latency predictor `predictors/<device>-<space>-<runtime>.json` for `space`."""
    from hwnas.predictors import load_predictor

    path = workspace.predictor_path(device, space.name, runtime)
    if not path.is_file():
        raise PredictorError(f"no latency predictor for {device} ({space.name}, {runtime}) at {path}; "
                             f"profile and fit it first: `hwnas profile {device} --space {space.name}` then "
                             f"`hwnas fit {device}`")
    return load_predictor(path, space=space)


def budget_constraint(predictor: Any, device: str, point: Objective, ms: float,
                      coverage: float | None) -> tuple[Constraint, str]:
    """`latency <= ms` on `device`, held with a margin: on the upper end of the predictor's split-conformal
    `coverage` interval, so that a model the search keeps measures within budget with that probability. Falls
    back to the point prediction (and says why) when the predictor has no usable interval."""
    from hwnas.objective import FunctionObjective

    if coverage is None:
        return Constraint(point, upper=ms), "none: the point prediction"
    try:
        halfwidth = predictor.interval_halfwidth(coverage)
    except PredictorError:
        return Constraint(point, upper=ms), "none: the predictor has no interval calibration (refit it)"
    if not np.isfinite(halfwidth):
        return Constraint(point, upper=ms), f"none: too few held-out residuals for a {coverage:.0%} interval"
    upper = FunctionObjective(f"latency_ms_upper[{device}]",
                              lambda archs: predictor.interval_from(predictor.predict(list(archs)), coverage)[1],
                              "min", expensive=False, unit="ms")
    return Constraint(upper, upper=ms), f"the upper end of the {coverage:.0%} interval"


def prepare_search(supernet: str | Path, devices: Sequence[str], *, workspace: Workspace | str | Path | None = None,
                   budgets: Mapping[str, float] | None = None, data: str = "mnist5k", space: str | None = None,
                   limit: int | None = None, batch_size: int = 250, calib_batches: int = 4,
                   budget_coverage: float | None = 0.95) -> SearchJob:
    """Check the inputs (cheap checks first), then load the supernet, the validation data and each device's
    predictor. `space`, when given, must be the checkpoint's space. `budgets`: {device: ms}, each held on the
    upper end of the predictor's `budget_coverage` interval (None: on the point prediction)."""
    from hwnas.space import list_spaces

    ws = resolve_workspace(workspace)
    devices = list(dict.fromkeys(devices))
    budgets = check_budgets(budgets, devices)
    if space is not None and space not in list_spaces():
        raise SearchError(f"unknown space {space!r}; choose one of {', '.join(list_spaces())}")
    configs = device_configs(ws, devices)
    supernet_path = Path(supernet).expanduser()
    if not supernet_path.is_file():
        raise SearchError(f"supernet checkpoint {supernet_path} does not exist")
    from hwnas.data import load_dataset  # torch: imported once the cheap checks passed
    from hwnas.supernet import load_checkpoint

    net = load_checkpoint(supernet_path)
    sp = net.space
    if space is not None and sp.name != space:
        raise CheckpointError(f"{supernet_path} is a supernet of space {sp.name!r}, not {space!r}; "
                              f"pass --space {sp.name} or a checkpoint of {space}")
    predictors = {d: load_device_predictor(ws, d, sp, configs[d].runtime) for d in devices}
    val = load_dataset(data, split="val")
    if len(val) == 0:
        raise DataError(f"dataset {data!r} has no validation images; pass a dataset with labelled images")
    objectives: list[Objective] = [SupernetAccuracy(net, val, limit=limit, batch_size=batch_size,
                                                    calib_batches=calib_batches)]
    objectives += [predicted_latency(predictors[d], d) for d in devices]
    if budget_coverage is not None and not 0 < budget_coverage < 1:
        raise SearchError(f"the budget coverage must be a share in (0, 1), like 0.95; got {budget_coverage!r}")
    held = {d: budget_constraint(predictors[d], d, objectives[1 + devices.index(d)], ms, budget_coverage)
            for d, ms in budgets.items()}
    constraints = [constraint for constraint, _ in held.values()]
    settings = {"supernet": str(supernet_path.resolve()), "supernet_sha256": sha256_file(supernet_path),
                "data": data, "limit": limit, "bn_calibration_images": calib_batches * batch_size,
                "devices": devices, "runtimes": {d: configs[d].runtime for d in devices},
                # which per-model figure each device's predictor predicts: deploy measures in the same one
                "latency_statistics": {d: (getattr(predictors[d], "meta_", None) or {}).get("statistic")
                                       or "median_ms" for d in devices},
                "latency_budgets_ms": budgets, "budget_margin": {d: why for d, (_, why) in held.items()},
                "workspace": str(ws.root)}
    return SearchJob(ws, sp, net, val, devices, objectives, constraints, predictors, settings)


def load_reused(runs: Sequence[str | Path], job: SearchJob) -> list[Any]:
    """The evaluations of earlier runs on the same supernet and data (`--reuse`), to take without spending
    the budget: top-1 does not depend on the device, so a search for a second device starts from them."""
    from hwnas.search.runfolder import RunFolder

    records = []
    for path in runs:
        run = RunFolder(path)
        old = run.read_settings()
        for key in TOP1_KEYS:
            if old.get(key) != job.settings.get(key):
                raise SearchError(f"--reuse {path}: that run measured top-1 with another {key} ({old.get(key)!r}, "
                                  f"here {job.settings.get(key)!r}); reuse only runs of the same supernet, data "
                                  "and --limit")
        for rec in run.load_records(job.space):
            rec.extra = {**rec.extra, "reused_from": str(path)}
            records.append(rec)
    return records


def load_prior(runs: Sequence[str | Path], job: SearchJob, seed: int) -> Any:
    """A `PriorModel` of top-1 fitted on the evaluations of earlier runs that measured it another way (another
    dataset, checkpoint or --limit: a related task, `--prior`). Their values are never taken as this search's
    results; the search starts from the model's predicted front, and the accelerated loop's top-1 surrogate
    gets the model's prediction as one more feature."""
    from hwnas.search.prior import PriorModel
    from hwnas.search.runfolder import RunFolder

    found: dict[str, tuple[Any, float]] = {}
    for path in runs:
        run = RunFolder(path)
        old = run.read_settings()
        if old.get("space") != job.space.config():
            raise SearchError(f"--prior {path}: that run searched another space ({old.get('space')!r}, here "
                              f"{job.space.config()!r}); a prior must come from the same space")
        if all(old.get(key) == job.settings.get(key) for key in TOP1_KEYS):
            raise SearchError(f"--prior {path}: that run measured top-1 exactly as this one does; pass it with "
                              "--reuse, which takes its evaluations as results")
        for rec in run.load_records(job.space):
            if "top1" in rec.values:
                found[rec.key] = (rec.arch, float(rec.values["top1"]))
    if len(found) < MIN_PRIOR_ARCHS:
        raise SearchError(f"--prior: {len(found)} evaluated archs in {', '.join(map(str, runs))}, at least "
                          f"{MIN_PRIOR_ARCHS} are needed to fit a prior; search longer there or leave out --prior")
    archs, top1 = zip(*found.values(), strict=True)
    return PriorModel(job.space, seed=seed).fit(list(archs), list(top1))


def search(supernet: str | Path | None = None, devices: Sequence[str] = (), *,
           workspace: Workspace | str | Path | None = None, budgets: Mapping[str, float] | None = None,
           data: str = "mnist5k", space: str | None = None, evals: int = 100, out: str | Path | None = None,
           algorithm: str = "accelerated", limit: int | None = None, reuse: Sequence[str | Path] = (),
           prior: Sequence[str | Path] = (), seed: int = 0, job: SearchJob | None = None,
           budget_coverage: float | None = 0.95, ray: Any = None, workers: int | None = None,
           progress: ProgressFn | None = None) -> Any:
    """Search `supernet` for the front of top-1 against predicted latency on each of `devices` (under
    `budgets`, {device: ms}, held on the upper end of each predictor's `budget_coverage` interval) with at
    most `evals` top-1 evaluations, into the run folder `out` (default
    `runs/<time>`; an existing run of the same search is resumed). `reuse`: earlier runs on the same supernet
    and data whose evaluations are taken as results; `prior`: earlier runs on related data that only guide
    the search. `job` skips loading (a `prepare_search` result). `ray` (`hwnas.distributed.RaySettings`) spreads
    the top-1 evaluations over `workers` Ray workers (default: one per CPU of the cluster), each loading the
    supernet and data once; the front of a seeded search does not depend on it. Returns
    `hwnas.search.session.SearchOutcome`; on Ctrl-C the evaluations so far are kept and KeyboardInterrupt is
    raised again."""
    import time

    from hwnas.search.session import run_search

    if evals < 1:
        raise SearchError(f"the search needs a budget of at least 1 evaluation; got {evals}")
    if prior and algorithm not in ("accelerated", "nsga2"):
        raise SearchError(f"--prior starts the accelerated loop or NSGA-II from the prior's predicted front; "
                          f"--algorithm {algorithm} cannot use it: choose accelerated or nsga2, or leave out --prior")
    if workers is not None and workers < 1:
        raise SearchError(f"--workers must be at least 1; got {workers}")
    if workers is not None and (ray is None or not ray.enabled):
        raise SearchError("--workers spreads evaluations over Ray workers; add --ray (a Ray on this machine) or "
                          "--ray-address ADDRESS, or leave out --workers")
    if ray is not None and ray.address:
        from hwnas.distributed import check_reachable

        check_reachable(ray.address)  # before loading anything: Ray itself would retry for minutes
    if job is None:
        if supernet is None:
            raise SearchError("pass --supernet CHECKPOINT (the shipped demo: `hwnas demo`)")
        job = prepare_search(supernet, devices, workspace=workspace, budgets=budgets, data=data, space=space,
                             limit=limit, budget_coverage=budget_coverage)
    out_dir = Path(out) if out is not None else job.workspace.runs_dir / time.strftime("%Y%m%d-%H%M%S")
    settings = dict(job.settings)
    reused = load_reused(reuse, job)
    if reuse:
        settings["reuse"] = [str(Path(p).resolve()) for p in reuse]
    options = None
    if prior:
        model = load_prior(prior, job, seed)
        options = {"prior": model}
        settings["prior"] = [str(Path(p).resolve()) for p in prior]
        settings["prior_archs"] = model.n_fit_
    # progress: the evaluations spent at the last batch's end, plus those that arrived since (in any order)
    count = {"spent": 0, "arrived": 0}

    def batch_done(ev: Any) -> None:
        count.update(spent=ev.spent, arrived=0)
        emit(progress, "search", min(ev.spent, evals), evals)

    def arrived(rec: Any) -> None:
        count["arrived"] += 1
        emit(progress, "search", min(max(rec.index, count["spent"] + count["arrived"]), evals), evals, rec.key)

    with evaluation_pool(ray, workers) as pool:
        if pool is not None:
            settings["executor"] = pool.describe()
        return run_search(job.space, job.objectives, out_dir, evals, job.constraints, algorithm=algorithm,
                          seed=seed, settings=settings, options=options, reuse=reused, pool=pool,
                          progress=batch_done, on_record=arrived)


@contextmanager
def evaluation_pool(ray: Any, workers: int | None) -> Iterator[Any]:
    """A started-on-demand `RayEvaluationPool` inside a Ray session when `ray` asks for one, else None
    (the evaluator then evaluates in-process)."""
    from hwnas.distributed import ray_session

    if ray is None or not ray.enabled:
        yield None
        return
    from hwnas.distributed import available_workers
    from hwnas.distributed.pool import RayEvaluationPool

    with ray_session(ray) as session:
        pool = RayEvaluationPool(session, workers or available_workers(session))
        try:
            yield pool
        finally:
            pool.close()
