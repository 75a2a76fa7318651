"""`hwnas search` and `hwnas deploy`: parse, call `hwnas.workflows.search` / `deploy`, print the front."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from hwnas.cli._common import (
    BudgetCoverageOpt,
    JsonOpt,
    RayAddressOpt,
    RayOpt,
    SeedOpt,
    SpaceOpt,
    SupernetOpt,
    WorkspaceOpt,
    out,
    plain,
    print_json,
    progress_display,
    ray_settings,
    workspace,
)
from hwnas.errors import SearchError

__all__ = ["register", "search", "deploy", "print_front", "parse_budgets"]


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("deploy")(deploy)


def parse_budgets(items: list[str] | None) -> dict[str, str]:
    """`--latency-ms D=30` pairs -> {device: "30"} (the workflow checks the devices and the numbers)."""
    budgets: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SearchError(f"--latency-ms takes DEVICE=MS with MS > 0, like pixel7=30; got {item!r}")
        budgets[name] = value
    return budgets


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
    space_name: SpaceOpt = None,
    supernet: SupernetOpt = None,
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
    budget_coverage: BudgetCoverageOpt = 0.95,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers evaluating top-1 at once "
                                                "(default: one per CPU of the cluster).")] = None,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Search the supernet for the front of top-1 vs latency on each device; resumable from --out."""
    import time

    from hwnas.workflows import search as run

    wsp = workspace(ws)
    devices = list(dict.fromkeys(device or []))
    out_dir = out_dir or wsp.runs_dir / time.strftime("%Y%m%d-%H%M%S")
    hint = " ".join(shlex.quote(a) for a in ["hwnas", *sys.argv[1:]]) if sys.argv[1:2] == ["search"] else \
        f"hwnas search ... --out {out_dir}"
    try:
        with progress_display() as progress:
            outcome = run(supernet, devices, workspace=wsp, budgets=parse_budgets(latency_ms), data=data,
                          space=space_name, evals=evals, out=out_dir, algorithm=algorithm, limit=limit,
                          reuse=reuse or [], prior=prior or [], seed=seed,
                          budget_coverage=budget_coverage or None, ray=ray_settings(ray, ray_address),
                          workers=workers, progress=progress)
    except KeyboardInterrupt:
        plain(f"interrupted: the evaluations so far are kept in {out_dir / 'evaluated.jsonl'}; resume with:\n"
              f"  {hint}")
        raise typer.Exit(130) from None
    if as_json:
        print_json({"run": str(out_dir), "evaluations": outcome.evaluator.spent, "resumed": outcome.resumed,
                    "reused": outcome.reused, "front": outcome.front})
        return
    if outcome.reused:
        plain(f"reused: {outcome.reused} top-1 evaluations from {', '.join(map(str, reuse or []))}")
    if outcome.resumed:
        plain(f"resumed: {outcome.resumed} evaluations taken from {outcome.run.evaluated_path}")
    print_front(outcome.front, f"front: {len(outcome.front)} models after {outcome.evaluator.spent} evaluations")
    out.print(f"results in {out_dir} (front.csv, report.html); deploy with "
              f"`hwnas deploy {out_dir} --device {devices[0]} --format tflite,onnx`", soft_wrap=True, markup=False)


def deploy(
    run_dir: Annotated[Path, typer.Argument(help="A search run folder (runs/<id>).")],
    device: Annotated[list[str], typer.Option("--device", help="Device to measure on (repeatable: several are "
                                                               "measured at once).")],
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: tflite, onnx.")] = "tflite,onnx",
    int8: Annotated[bool, typer.Option("--int8", help="Also export and measure int8 models (calibrated on the "
                                                      "run's training images).")] = False,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Export each front model, measure it on the device(s), and record measured next to predicted latency."""
    from hwnas.distributed import RaySettings
    from hwnas.search.report import interval_summary, session_summary, settings_summary
    from hwnas.workflows import deploy as run
    from hwnas.workflows.deploy import FarmDeployError, deploy_many

    devices = list(dict.fromkeys(device))
    fmt_list = [f.strip() for f in formats.split(",") if f.strip()]
    settings = RaySettings.from_options(ray=ray, ray_address=ray_address)
    failed: FarmDeployError | None = None
    with progress_display() as progress:
        if len(devices) == 1 and not settings.enabled:
            result = run(run_dir, devices[0], formats=fmt_list, int8=int8, workspace=workspace(ws),
                         progress=progress)
        else:
            try:
                result = deploy_many(run_dir, devices, ray=settings, formats=fmt_list, int8=int8,
                                     workspace=workspace(ws), progress=progress)
            except FarmDeployError as exc:
                result, failed = exc.result, exc
    if failed is not None and not result.devices:
        raise failed
    if as_json:
        named = {"device": devices[0]} if len(devices) == 1 else {"devices": result.devices}
        print_json({"run": str(result.run.path), **named, "models": str(result.models_dir),
                    "report": str(result.report), "front": result.rows})
    else:
        print_front(result.rows, f"deployed on {', '.join(result.devices)}: predicted vs measured latency (ms)")
        for name, check in result.session_checks().items():
            out.print(session_summary(name, check))
        doc = result.run.read_front()
        for name in result.devices:
            for line in (settings_summary(doc, name), interval_summary(doc, name)):
                if line:
                    out.print(line)
        out.print(f"models in {result.models_dir}; report: {result.report}")
    if failed is not None:
        raise failed
