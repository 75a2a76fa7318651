"""`hwnas fit`, `hwnas predict`, `hwnas predictor eval|list`: fit latency predictors from profiles, use them,
and measure how good they are on held-out subnets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hwnas.cli._common import JsonOpt, WorkspaceOpt, out, read_json_arg, workspace
from hwnas.errors import PredictorError
from hwnas.workspace import Workspace

group = typer.Typer(help="Evaluate and list latency predictors.", no_args_is_help=True)

DeviceArg = Annotated[str, typer.Argument(help="Device name (as profiled).")]
SpaceOpt = Annotated[str | None, typer.Option("--space", help="Search space (default: the device's only one).")]
RuntimeOpt = Annotated[str | None, typer.Option("--runtime", help="Runtime (default: the device's only one).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="fp32 or int8 profile.")]
FileOpt = Annotated[Path | None, typer.Option("--file", help="Predictor file (default: predictors/<device>-...).")]
LATENCY_PREDICTORS = ("lut", "lut-calibrated", "gbm")


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
    app.command("predict")(predict)
    app.add_typer(group, name="predictor")


def predictor_path(ws: Workspace, device: str, space: str, runtime: str) -> Path:
    return ws.predictors_dir / f"{device}-{space}-{runtime}.json"


def _find_predictor(ws: Workspace, device: str, space: str | None, runtime: str | None) -> Path:
    if space and runtime:
        path = predictor_path(ws, device, space, runtime)
        if not path.exists():
            raise PredictorError(f"no predictor {path}; fit one with `hwnas fit {device} --space {space}`")
        return path
    candidates = []
    for path in sorted(ws.predictors_dir.glob(f"{device}-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        meta = data.get("meta") or {} if isinstance(data, dict) else {}
        if meta.get("device", device) != device:
            continue
        if space and (data.get("space") or {}).get("name") != space:
            continue
        if runtime and meta.get("runtime") != runtime:
            continue
        candidates.append(path)
    if not candidates:
        raise PredictorError(f"no predictor for device {device} in {ws.predictors_dir}; run `hwnas fit {device}` first")
    if len(candidates) > 1:
        raise PredictorError(f"device {device} has several predictors ({', '.join(p.name for p in candidates)}); "
                             "choose with --space and --runtime")
    return candidates[0]


def fit(
    device: DeviceArg,
    space: SpaceOpt = None,
    predictor: Annotated[str, typer.Option("--predictor", help="lut, lut-calibrated, gbm or few-shot.")]
    = "lut-calibrated",
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = "fp32",
    base: Annotated[Path | None, typer.Option("--base", help="few-shot: a predictor file of another device.")] = None,
    k: Annotated[int | None, typer.Option("-k", min=1, help="few-shot: use the first k reference subnets.")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Where to write (default: predictors/...).")] = None,
    statistic: Annotated[str, typer.Option("--statistic", help="median_ms (default), mean_ms, min_ms (steadier on "
                                                               "a shared CPU) or p90_ms.")] = "median_ms",
    ws: WorkspaceOpt = None,
) -> None:
    """Fit a latency predictor from a device's profile and write predictors/<device>-<space>-<runtime>.json."""
    from hwnas.predictors.fitting import fit_from_profile
    from hwnas.profiling import find_profile, load_profile

    wsp = workspace(ws)
    path = find_profile(wsp, device, space, runtime, precision)
    profile = load_profile(path, space=space, runtime=runtime, precision=precision)
    model = fit_from_profile(predictor, profile, profile_path=path, base=str(base) if base else None, max_samples=k,
                             statistic=statistic)
    target = output or predictor_path(wsp, device, profile["space"]["name"], profile["runtime"])
    model.save(target)
    trained = len(model.meta_["trained_on"])
    out.print(f"wrote {target}: {predictor} for {device} ({profile['space']['name']}, {profile['runtime']}, "
              f"{len(profile['operators'])} operators, trained on {trained} measured subnets)")


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
    from hwnas.predictors import load_predictor

    wsp = workspace(ws)
    path = file or _find_predictor(wsp, device, space, runtime)
    model = load_predictor(path)
    data = read_json_arg(arch)
    items = data if isinstance(data, list) else [data]
    if not items:
        raise PredictorError("no arch given: the JSON list is empty")
    archs = [model.space_.validate(a) for a in items]
    latency = model.predict(archs)
    if as_json:
        out.print_json(json.dumps([{"key": a.key, "latency_ms": float(v)} for a, v in zip(archs, latency,
                                                                                          strict=True)]))
        return
    table = Table("arch", "predicted latency (ms)", title=f"{device} ({model.name}, {path.name})")
    for a, v in zip(archs, latency, strict=True):
        table.add_row(a.key, f"{v:.3f}")
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
    from hwnas.predictors import load_predictor
    from hwnas.predictors.fitting import evaluate_on_rows, fit_from_profile, held_out_rows
    from hwnas.predictors.plot import scatter_plot
    from hwnas.profiling import find_profile, load_profile

    wsp = workspace(ws)
    path = file or _find_predictor(wsp, device, space, runtime)
    model = load_predictor(path)
    meta = model.meta_
    prof_path = find_profile(wsp, device, model.space_.name, meta.get("runtime") or runtime, precision)
    profile = load_profile(prof_path, space=model.space_.name)
    rows = held_out_rows(model, profile)
    results: dict[str, Any] = {}
    metrics, y, pred = evaluate_on_rows(model, rows)
    results[f"{model.name} (file)"] = metrics
    if compare:
        for name in LATENCY_PREDICTORS:
            try:
                other = fit_from_profile(name, profile, prof_path, statistic=meta.get("statistic") or "median_ms")
            except PredictorError as exc:
                out.print(f"[yellow]{name}: {exc}[/yellow]")
                continue
            held = [r for r in rows if r["key"] not in set(other.meta_["trained_on"])]
            results[name] = evaluate_on_rows(other, held)[0]
    plot_path = plot or path.with_name(path.stem + "-eval.png")
    scatter_plot(y, pred, plot_path, title=f"{device}: {model.name} on {len(rows)} held-out subnets", metrics=metrics)
    if as_json:
        out.print_json(json.dumps({"predictor": str(path), "plot": str(plot_path), "metrics": results}))
        return
    table = Table("predictor", "n", "MAPE %", "RMSPE %", "within 5%", "within 10%", "Spearman", "Kendall",
                  title=f"{device}: held-out measured subnets")
    for name, m in results.items():
        table.add_row(name, str(m["n"]), f"{m['mape_pct']:.2f}", f"{m['rmspe_pct']:.2f}",
                      f"{m['within_5pct'] * 100:.1f}%", f"{m['within_10pct'] * 100:.1f}%", f"{m['spearman']:.4f}",
                      f"{m['kendall']:.4f}")
    out.print(table)
    out.print(f"scatter plot: {plot_path}")
