"""`hwnas optimize` (a device and a latency budget to deployed, measured models) and `hwnas demo` (the same on
this machine with embedded defaults): each one call into `hwnas.workflows`, then the predicted-vs-measured
table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hwnas.cli._common import (
    BudgetCoverageOpt,
    JsonOpt,
    RayAddressOpt,
    RayOpt,
    SeedOpt,
    SupernetOpt,
    WorkspaceOpt,
    console,
    out,
    plain,
    print_json,
    progress_display,
    ray_settings,
)

__all__ = ["register", "optimize", "demo"]


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)
    app.command("demo")(demo)


def optimize(
    device: Annotated[str, typer.Option("--device", help="Target device (devices/<name>.toml).")],
    supernet: SupernetOpt = None,
    data: Annotated[str, typer.Option("--data", help="Dataset for top-1: mnist5k, a folder, or a .npz.")] = "mnist5k",
    max_latency: Annotated[float | None, typer.Option("--max-latency", help="Latency budget on the device (ms).")]
    = None,
    evals: Annotated[int, typer.Option("--evals", min=1, help="Budget of top-1 evaluations.")] = 60,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Images per top-1 evaluation.")] = None,
    profile_subnets: Annotated[int, typer.Option("--profile-subnets", min=3, help="Random subnets measured whole "
                                                 "when the device has no predictor for this space yet.")] = 60,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: onnx, tflite.")] = "onnx,tflite",
    int8: Annotated[bool, typer.Option("--int8", help="Also deploy int8 models.")] = False,
    max_models: Annotated[int | None, typer.Option("--max-models", min=1, help="Deploy only this many front models, "
                                                   "spread along the front.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/optimize-<device>).")]
    = None,
    refit: Annotated[bool, typer.Option("--refit", help="Profile and fit again even if a predictor exists.")]
    = False,
    budget_coverage: BudgetCoverageOpt = 0.95,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """From a device and a latency budget to deployed, measured models: predictor (reused or made), search,
    deploy, measure. Resumable: run the same command again after an interruption."""
    from hwnas.workflows import optimize as run

    with progress_display() as progress:
        result = run(device, supernet=supernet, data=data, max_latency_ms=max_latency, workspace=ws, evals=evals,
                     limit=limit, profile_subnets=profile_subnets, formats=[f.strip() for f in formats.split(",")],
                     int8=int8, max_models=max_models, out=out_dir, refit=refit, seed=seed,
                     budget_coverage=budget_coverage or None, ray=ray_settings(ray, ray_address),
                     progress=progress, on_stage=_rule, on_note=plain)
    _report(result, as_json)


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo workspace.")] = Path("hwnas-demo"),
    quick: Annotated[bool, typer.Option("--quick", help="A smaller profile and search (about a minute or two).")]
    = False,
    supernet: Annotated[Path | None, typer.Option("--supernet", help="Another supernet checkpoint (default: the "
                                                                     "shipped demo supernet).")] = None,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Profile this CPU, fit a predictor, search the demo supernet, deploy the front, measure it."""
    from hwnas.workflows import demo as run

    with progress_display() as progress:
        result = run(out_dir, quick=quick, supernet=supernet, seed=seed, progress=progress, on_stage=_rule,
                     on_note=plain)
    _report(result, as_json)


def _rule(title: str) -> None:
    console.rule(f"[bold]{title}")


def _report(result: Any, as_json: bool) -> None:
    rows = result.deployed
    if as_json:
        print_json({"workspace": str(result.workspace.root), "device": result.device, "run": str(result.run_dir),
                    "predictor": str(result.predictor), "predictor_reused": result.predictor_reused,
                    "fit": result.fit_note, "evaluations": result.evaluations, "front_size": result.front_size,
                    "budget_ms": result.budget_ms, "deployed": rows, "session_check": result.session_check,
                    "seconds": round(result.seconds, 1)})
        return
    budget = result.budget_ms
    title = f"deployed front on {result.device}: predicted vs measured latency"
    table = Table(title=title + (f" (budget {budget:g} ms)" if budget is not None else ""))
    columns = ["#", "top-1 %", "predicted ms", "measured ms", "error %"]
    columns += ["budget"] if budget is not None else []
    for col in columns + ["key"]:
        table.add_column(col)
    for i, r in enumerate(rows, 1):
        error = 100 * (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]
        cells = [str(i), f"{r['top1']:.2f}", f"{r['predicted_ms']:.3f}", f"{r['measured_ms']:.3f}", f"{error:+.1f}"]
        if budget is not None:
            cells.append("within" if r["within_budget"] else "[red]over[/red]")
        table.add_row(*cells, r["key"][:36])
    out.print(table)
    from hwnas.search.report import interval_summary, session_summary, settings_summary
    from hwnas.search.runfolder import RunFolder

    if result.session_check:
        out.print(session_summary(result.device, result.session_check))
    doc = RunFolder(result.run_dir).read_front()
    for line in (settings_summary(doc, result.device), interval_summary(doc, result.device)):
        if line:
            out.print(line)
    out.print(f"\ndone in {result.seconds:.0f} s. Everything is in {result.workspace.root}:")
    out.print(f"  report     {result.run_dir / 'report.html'}")
    out.print(f"  front      {result.run_dir / 'front.csv'}")
    out.print(f"  models     {result.run_dir / 'models'}")
    out.print(f"  predictor  {result.predictor}")
