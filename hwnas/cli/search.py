"""`hwnas search`: the Pareto front of supernet top-1 vs predicted latency on devices; `hwnas deploy`: export
the front, measure it on a device, and put measured next to predicted latency."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from hwnas.cli._common import SeedOpt, WorkspaceOpt, console, out, workspace
from hwnas.errors import HwnasError, InventoryError, SearchError
from hwnas.workspace import Workspace

__all__ = ["register", "search", "deploy", "build_search", "print_front"]


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("deploy")(deploy)


def _columns() -> tuple:
    return (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn())


def parse_budgets(items: list[str] | None, devices: list[str]) -> dict[str, float]:
    """`D=30` pairs -> {device: ms}; each device must be one of `devices`."""
    budgets: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if not sep or not name or ms <= 0:
            raise SearchError(f"--latency-ms takes DEVICE=MS with MS > 0, like pixel7=30; got {item!r}")
        if name not in devices:
            raise SearchError(f"--latency-ms names device {name!r}, which is not searched; add --device {name}")
        budgets[name] = ms
    return budgets


def _check_devices(ws: Workspace, devices: list[str]) -> dict[str, Any]:
    from hwnas.devices.inventory import load_inventory

    if not devices:
        raise SearchError("name at least one target device with --device (see `hwnas device list`)")
    inventory = load_inventory(ws)
    unknown = [d for d in devices if d not in inventory]
    if unknown:
        raise InventoryError(f"unknown device {unknown[0]!r} (known: {', '.join(sorted(inventory)) or 'none'}); "
                             f"add it with `hwnas device add {unknown[0]} ...`")
    return {d: inventory[d] for d in devices}


def build_search(ws: Workspace, space_name: str, supernet_path: Path, data_spec: str, devices: list[str],
                 budgets: dict[str, float], limit: int | None, batch_size: int = 250,
                 calib_batches: int = 4) -> dict[str, Any]:
    """Load the supernet, data and device predictors; return the space, objectives and constraints."""
    from hwnas.data import load_dataset
    from hwnas.deploy import SupernetAccuracy, load_device_predictor, predicted_latency
    from hwnas.errors import CheckpointError
    from hwnas.files import sha256_file
    from hwnas.objective import Constraint
    from hwnas.space import list_spaces
    from hwnas.supernet import load_checkpoint

    if space_name not in list_spaces():
        raise SearchError(f"unknown space {space_name!r}; choose one of {', '.join(list_spaces())}")
    configs = _check_devices(ws, devices)
    if not supernet_path.is_file():
        raise SearchError(f"supernet checkpoint {supernet_path} does not exist")
    supernet = load_checkpoint(supernet_path)
    space = supernet.space
    if space.name != space_name:
        raise CheckpointError(f"{supernet_path} is a supernet of space {space.name!r}, not {space_name!r}; "
                              f"pass --space {space.name} or a checkpoint of {space_name}")
    data = load_dataset(data_spec, split="val")
    if len(data) == 0:
        from hwnas.errors import DataError

        raise DataError(f"dataset {data_spec!r} has no validation images; pass a dataset with labelled images")
    objectives: list[Any] = [SupernetAccuracy(supernet, data, limit=limit, batch_size=batch_size,
                                              calib_batches=calib_batches)]
    predictors = {}
    for d in devices:
        predictors[d] = load_device_predictor(ws, d, space, configs[d].runtime)
        objectives.append(predicted_latency(predictors[d], d))
    constraints = [Constraint(objectives[1 + devices.index(d)], upper=ms) for d, ms in budgets.items()]
    settings = {"supernet": str(supernet_path.resolve()), "supernet_sha256": sha256_file(supernet_path),
                "data": data_spec, "limit": limit, "bn_calibration_images": calib_batches * batch_size,
                "devices": devices,
                "runtimes": {d: configs[d].runtime for d in devices},
                # which per-model figure each device's predictor predicts: deploy measures in the same one
                "latency_statistics": {d: (getattr(predictors[d], "meta_", None) or {}).get("statistic")
                                       or "median_ms" for d in devices},
                "latency_budgets_ms": budgets, "workspace": str(ws.root)}
    return {"space": space, "supernet": supernet, "data": data, "objectives": objectives,
            "constraints": constraints, "settings": settings, "predictors": predictors}


# settings that decide a run's top-1 values: another run's carry over only where all of them match
TOP1_KEYS = ("supernet_sha256", "data", "limit", "bn_calibration_images")


def load_reused(runs: list[Path], built: dict[str, Any]) -> list[Any]:
    """The evaluations of earlier runs on the same supernet and data (`--reuse`), to take without spending
    the budget: top-1 does not depend on the device, so a search for a second device starts from them."""
    from hwnas.search.runfolder import RunFolder

    settings = built["settings"]
    records = []
    for path in runs:
        run = RunFolder(path)
        old = run.read_settings()
        for key in TOP1_KEYS:
            if old.get(key) != settings.get(key):
                raise SearchError(f"--reuse {path}: that run measured top-1 with another {key} ({old.get(key)!r}, "
                                  f"here {settings.get(key)!r}); reuse only runs of the same supernet, data and "
                                  "--limit")
        for rec in run.load_records(built["space"]):
            rec.extra = {**rec.extra, "reused_from": str(path)}
            records.append(rec)
    return records


MIN_PRIOR_ARCHS = 10  # fewer related-task evaluations than this teach the prior model nothing reliable


def load_prior(runs: list[Path], built: dict[str, Any], seed: int) -> Any:
    """A `PriorModel` of top-1 fitted on the evaluations of earlier runs that measured it another way (another
    dataset, checkpoint or --limit: a related task, `--prior`). Their values are never taken as this search's
    results; the search starts from the model's predicted front, and the accelerated loop's top-1 surrogate
    gets the model's prediction as one more feature."""
    from hwnas.search.prior import PriorModel
    from hwnas.search.runfolder import RunFolder

    space, settings = built["space"], built["settings"]
    found: dict[str, tuple[Any, float]] = {}
    for path in runs:
        run = RunFolder(path)
        old = run.read_settings()
        if old.get("space") != space.config():
            raise SearchError(f"--prior {path}: that run searched another space ({old.get('space')!r}, here "
                              f"{space.config()!r}); a prior must come from the same space")
        if all(old.get(key) == settings.get(key) for key in TOP1_KEYS):
            raise SearchError(f"--prior {path}: that run measured top-1 exactly as this one does; pass it with "
                              "--reuse, which takes its evaluations as results")
        for rec in run.load_records(space):
            if "top1" in rec.values:
                found[rec.key] = (rec.arch, float(rec.values["top1"]))
    if len(found) < MIN_PRIOR_ARCHS:
        raise SearchError(f"--prior: {len(found)} evaluated archs in {', '.join(map(str, runs))}, at least "
                          f"{MIN_PRIOR_ARCHS} are needed to fit a prior; search longer there or leave out --prior")
    archs, top1 = zip(*found.values(), strict=True)
    return PriorModel(space, seed=seed).fit(list(archs), list(top1))


def run_with_progress(built: dict[str, Any], out_dir: Path, evals: int, algorithm: str, seed: int,
                      resume_hint: str, options: dict[str, Any] | None = None, reuse: list[Any] | None = None) -> Any:
    """run_search with a rich progress bar; Ctrl-C keeps the evaluations and prints how to resume."""
    from hwnas.search.session import run_search

    # the bar appears with the first evaluation, so that an error found before any (a run folder of another
    # search, an infeasible budget) prints on a line of its own
    bar = Progress(*_columns(), console=console, transient=False)
    task = bar.add_task("search", total=evals)

    def show(completed: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=min(completed, evals))

    def stop() -> None:
        if bar.live.is_started:  # a bar never started would still print an empty line
            bar.stop()

    try:
        return run_search(built["space"], built["objectives"], out_dir, evals, built["constraints"],
                          algorithm=algorithm, seed=seed, settings=built["settings"],
                          progress=lambda ev: show(ev.spent), on_record=lambda rec: show(rec.index),
                          options=options, reuse=reuse or ())
    except KeyboardInterrupt:
        stop()
        # soft_wrap: a hard-wrapped command (or path) breaks when copied; markup off: paths may hold [ ]
        console.print(f"interrupted: the evaluations so far are kept in {out_dir / 'evaluated.jsonl'}; "
                      f"resume with:\n  {resume_hint}", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(130) from None
    finally:
        stop()


def print_front(rows: list[dict[str, Any]], title: str) -> None:
    if not rows:
        out.print("the front is empty")
        return
    table = RichTable(title=title)
    names = list(rows[0]["values"])
    measured = sorted({k for r in rows for k in (r.get("measured") or {})})
    for col in ["#", "key", *names, *(f"measured {m}" for m in measured)]:
        table.add_column(col, overflow="fold")
    for i, r in enumerate(rows, 1):
        cells = [str(i), r["key"][:40]] + [f"{r['values'][n]:.3f}" for n in names]
        cells += [("-" if (r.get("measured") or {}).get(m) is None else f"{r['measured'][m]:.3f}") for m in measured]
        table.add_row(*cells)
    out.print(table)


def search(
    space_name: Annotated[str, typer.Option("--space", help="Search space of the supernet.")] = "ofa-mbv3",
    supernet: Annotated[Path | None, typer.Option("--supernet", help="Supernet checkpoint.")] = None,
    data: Annotated[str, typer.Option("--data", help="Dataset for top-1: mnist5k, a folder, or a .npz.")] = "mnist5k",
    device: Annotated[list[str] | None, typer.Option("--device", help="Target device (repeatable).")] = None,
    latency_ms: Annotated[list[str] | None, typer.Option("--latency-ms",
                                                         help="Latency budget DEVICE=MS (repeatable).")] = None,
    evals: Annotated[int, typer.Option("--evals", min=1, help="Budget of expensive (top-1) evaluations.")] = 100,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/<time>).")] = None,
    algorithm: Annotated[str, typer.Option("--algorithm",
                                           help="accelerated, nsga2, random or evolution.")] = "accelerated",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Images per top-1 evaluation.")] = None,
    reuse: Annotated[list[Path] | None, typer.Option(
        "--reuse", help="An earlier run folder on the same supernet and data whose top-1 evaluations this search "
                        "takes without spending --evals (repeatable).")] = None,
    prior: Annotated[list[Path] | None, typer.Option(
        "--prior", help="An earlier run folder that measured top-1 on other data or another checkpoint: the "
                        "search (accelerated or nsga2) starts from the front it predicts, and the loop's top-1 "
                        "surrogate learns from it; never counted as a result (repeatable).")] = None,
    seed: SeedOpt = 0,
    ws: WorkspaceOpt = None,
) -> None:
    """Search the supernet for the front of top-1 vs latency on each device; resumable from --out."""
    import time

    wsp = workspace(ws)
    if supernet is None:
        raise SearchError("pass --supernet CHECKPOINT (the shipped demo: `hwnas demo`)")
    devices = list(dict.fromkeys(device or []))
    budgets = parse_budgets(latency_ms, devices)
    out_dir = out_dir or wsp.runs_dir / time.strftime("%Y%m%d-%H%M%S")
    built = build_search(wsp, space_name, supernet, data, devices, budgets, limit)
    reused = load_reused(reuse or [], built)
    if reuse:
        built["settings"]["reuse"] = [str(p.resolve()) for p in reuse]
    options = None
    if prior:
        if algorithm not in ("accelerated", "nsga2"):
            raise SearchError(f"--prior starts the accelerated loop or NSGA-II from the prior's predicted front; "
                              f"--algorithm {algorithm} cannot use it: choose accelerated or nsga2, or leave out "
                              "--prior")
        model = load_prior(prior, built, seed)
        options = {"prior": model}
        built["settings"]["prior"] = [str(p.resolve()) for p in prior]
        built["settings"]["prior_archs"] = model.n_fit_
    hint = " ".join(shlex.quote(a) for a in ["hwnas", *sys.argv[1:]]) if sys.argv[1:2] == ["search"] else \
        f"hwnas search ... --out {out_dir}"
    outcome = run_with_progress(built, out_dir, evals, algorithm, seed, hint, options=options, reuse=reused)
    if outcome.reused:
        console.print(f"reused: {outcome.reused} top-1 evaluations from {', '.join(map(str, reuse or []))}",
                      soft_wrap=True, markup=False, highlight=False)
    if outcome.resumed:
        console.print(f"resumed: {outcome.resumed} evaluations taken from {outcome.run.evaluated_path}",
                      soft_wrap=True, markup=False, highlight=False)
    print_front(outcome.front, f"front: {len(outcome.front)} models after {outcome.evaluator.spent} evaluations")
    out.print(f"results in {out_dir} (front.csv, report.html); deploy with "
              f"`hwnas deploy {out_dir} --device {devices[0]} --format tflite,onnx`", soft_wrap=True, markup=False)


def deploy(
    run_dir: Annotated[Path, typer.Argument(help="A search run folder (runs/<id>).")],
    device: Annotated[str, typer.Option("--device", help="Device to measure on.")],
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: tflite, onnx.")] = "tflite,onnx",
    int8: Annotated[bool, typer.Option("--int8", help="Also export and measure int8 models.")] = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Export each front model, measure it on the device, and record measured next to predicted latency."""
    from hwnas.devices import open_device
    from hwnas.search.runfolder import RunFolder

    wsp = workspace(ws)
    run = RunFolder(run_dir)
    settings = run.read_settings()
    fmt_list = [f.strip() for f in formats.split(",") if f.strip()]
    _check_devices(wsp, [device])
    supernet, calib = _deploy_inputs(settings, int8)
    with open_device(device, wsp) as dev, Progress(*_columns(), console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        rows = deploy_run(run_dir, dev, fmt_list, int8, supernet, calib, on_progress)
    print_front(rows, f"deployed on {device}: predicted vs measured latency (ms)")
    out.print(f"models in {run.path / 'models'}; report: {run.report_path}")


def _deploy_inputs(settings: dict[str, Any], int8: bool) -> tuple[Any, Any]:
    from hwnas.supernet import load_checkpoint

    path = settings.get("supernet")
    if not path or not Path(path).is_file():
        raise SearchError(f"the run's supernet checkpoint {path} is gone; deploy needs it for the weights")
    supernet = load_checkpoint(path)
    calib = None
    if int8:
        from hwnas.data import load_dataset

        try:
            calib = load_dataset(settings.get("data", "mnist5k"), split="train").x[:64]
        except HwnasError:
            calib = None
    return supernet, calib


def deploy_run(run_dir: Path, dev: Any, formats: list[str], int8: bool, supernet: Any, calib: Any,
               progress: Any) -> list[dict[str, Any]]:
    from hwnas.deploy import deploy_front

    return deploy_front(run_dir, dev, formats, int8=int8, supernet=supernet, calib=calib, progress=progress)
