"""`hwnas fit`, `hwnas predict`, `hwnas predictor eval|list`: call `hwnas.workflows` fit / predict /
evaluate_predictor and print what they return."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hwnas.cli._common import (
    DeviceArg,
    JsonOpt,
    PrecisionOpt,
    RuntimeOpt,
    SpaceOpt,
    SupernetOpt,
    WorkspaceOpt,
    console,
    out,
    print_json,
    read_json_arg,
)

group = typer.Typer(help="Evaluate and list latency predictors.", no_args_is_help=True)

FileOpt = Annotated[Path | None, typer.Option("--file", help="Predictor file (default: predictors/<device>-...).")]


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
    app.command("predict")(predict)
    app.add_typer(group, name="predictor")


def fit(
    device: DeviceArg,
    space: SpaceOpt = None,
    predictor: Annotated[str, typer.Option("--predictor", help="lut, lut-calibrated, gbm or few-shot (gbm with "
                                                               "--measurements).")] = "lut-calibrated",
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = "fp32",
    base: Annotated[list[Path] | None, typer.Option("--base", help="few-shot: a predictor file of another device "
                                                                   "(repeatable: several sources).")] = None,
    k: Annotated[int | None, typer.Option("-k", min=1, help="few-shot: use the first k reference subnets.")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Where to write (default: predictors/...).")] = None,
    statistic: Annotated[str, typer.Option("--statistic", help="median_ms (default: the fastest round's "
                                                               "median), mean_ms, min_ms or p90_ms.")] = "median_ms",
    measurements: Annotated[Path | None, typer.Option("--measurements", help="Fit on whole-subnet measurements "
                                                      "made elsewhere: a CSV with an arch column (JSON) and a "
                                                      "latency column in ms, instead of the device's profile.")]
    = None,
    supernet: SupernetOpt = None,
    allow_drift: Annotated[bool, typer.Option("--allow-drift", help="Fit on profiling sessions whose reference "
                                                                    "subnets drifted apart.")] = False,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Fit a latency predictor from a device's profile (or a CSV of measurements) and write
    predictors/<device>-<space>-<runtime>.json; print its error on held-out subnets."""
    from hwnas.workflows import fit as run
    from hwnas.workflows.fit import fit_measurements_file

    if measurements is not None:
        name = predictor if predictor != "lut-calibrated" else "gbm"  # no operator table in a CSV
        result = fit_measurements_file(device, measurements, name, workspace=ws, space=space, supernet=supernet,
                                       runtime=runtime, out=output)
    else:
        bases = [str(b) for b in base or []]
        result = run(device, predictor, workspace=ws, space=space, runtime=runtime, precision=precision,
                     base=(bases[0] if len(bases) == 1 else bases) or None, k=k, out=output, statistic=statistic,
                     allow_drift=allow_drift)
    if as_json:
        print_json({"predictor": str(result.path), "name": result.predictor.name, "device": device,
                    "space": result.space, "runtime": result.runtime, "operators": result.operators,
                    "trained_on": len(result.trained_on),
                    "held_out": result.report.to_dict() if result.report is not None else None})
        return
    out.print(f"wrote {result.path}: {result.predictor.name} for {device} ({result.space}, {result.runtime}, "
              f"{result.operators} operators, trained on {len(result.trained_on)} measured subnets)")
    for line in result.lines():
        out.print(line, markup=False, highlight=False)


def predict(
    device: DeviceArg,
    arch: Annotated[str, typer.Argument(help="Arch JSON file, inline JSON (one arch or a list), a key, or -.")],
    space: SpaceOpt = None,
    runtime: RuntimeOpt = None,
    file: FileOpt = None,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Predict the latency of one or more archs on a device."""
    from hwnas.workflows import predict as run

    data = read_json_arg(arch)
    path, model, rows = run(device, data if isinstance(data, list) else [data], workspace=ws, space=space,
                            runtime=runtime, file=file)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    table = Table("arch", "predicted latency (ms)", "95% interval (ms)", title=f"{device} ({model.name}, {path.name})")
    for r in rows:
        if r.hi_ms is None:
            interval = "- (refit for intervals)"
        elif r.hi_ms == float("inf"):
            interval = "unbounded (too few samples)"
        else:
            interval = f"{r.lo_ms:.3f} - {r.hi_ms:.3f}"
        table.add_row(r.key, f"{r.latency_ms:.3f}", interval)
    out.print(table)


@group.command("list")
def list_names() -> None:
    """List the registered predictors."""
    from hwnas.predictors import list_predictors

    for name in list_predictors():
        out.print(name)


@group.command("eval")
def evaluate(
    device: DeviceArg,
    space: SpaceOpt = None,
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = "fp32",
    file: FileOpt = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Scatter PNG (default: beside the predictor).")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Also fit and score lut, lut-calibrated, gbm.")] = False,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Score a device's predictor on held-out measured subnets: MAPE, RMSPE, +-5/10% share, Spearman, Kendall."""
    from hwnas.workflows import evaluate_predictor

    result = evaluate_predictor(device, workspace=ws, space=space, runtime=runtime, precision=precision, file=file,
                                plot=plot, compare=compare)
    for name, why in result.skipped.items():
        console.print(f"[yellow]{name}: {why}[/yellow]")
    if as_json:
        print_json({"predictor": str(result.path), "plot": str(result.plot), "metrics": result.metrics,
                    "by_resolution": result.by_resolution})
        return
    table = Table("predictor", "n", "MAPE %", "RMSPE %", "within 5%", "within 10%", "Spearman", "Kendall",
                  title=f"{device}: held-out measured subnets")
    for name, m in result.metrics.items():
        rows = [(name, m)] + [(f"  {group}", gm) for group, gm in result.by_resolution.get(name, {}).items()]
        for label, g in rows:
            table.add_row(label, str(g["n"]), f"{g['mape_pct']:.2f}", f"{g['rmspe_pct']:.2f}",
                          f"{g['within_5pct'] * 100:.1f}%", f"{g['within_10pct'] * 100:.1f}%",
                          f"{g['spearman']:.4f}", f"{g['kendall']:.4f}")
    out.print(table)
    out.print(f"scatter plot: {result.plot}")
