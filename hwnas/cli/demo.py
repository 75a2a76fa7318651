"""`hwnas demo`: calls `hwnas.workflows.demo` (profile this CPU, fit, search the shipped supernet, deploy,
measure) and prints predicted next to measured latency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hwnas.cli._common import JsonOpt, SeedOpt, console, out, print_json, progress_display

__all__ = ["register", "demo"]


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


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
    from hwnas.workflows.demo import DEMO_DEVICE
    from hwnas.workflows.demo import demo as run

    with progress_display() as progress:
        result = run(out_dir, quick=quick, supernet=supernet, seed=seed, progress=progress,
                     on_stage=lambda title: console.rule(f"[bold]{title}"),
                     on_note=lambda text: console.print(text, soft_wrap=True, markup=False, highlight=False))
    if as_json:
        print_json({"workspace": str(result.workspace.root), "run": str(result.run_dir),
                    "profile": str(result.profile), "predictor": str(result.predictor), "fit": result.fit_note,
                    "evaluations": result.evaluations, "front": result.rows, "seconds": round(result.seconds, 1)})
        return
    _print_summary(result.rows, DEMO_DEVICE)
    out.print(f"\ndone in {result.seconds:.0f} s. Everything is in {result.workspace.root}:")
    out.print(f"  report   {result.run_dir / 'report.html'}")
    out.print(f"  front    {result.run_dir / 'front.csv'}")
    out.print(f"  models   {result.run_dir / 'models'}")
    out.print(f"  profile  {result.profile}")


def _print_summary(rows: list[dict[str, Any]], device: str) -> None:
    from rich.table import Table as RichTable

    name = f"latency_ms[{device}]"
    table = RichTable(title="deployed front: predicted vs measured latency on this CPU (onnxruntime, 1 thread)")
    for col in ("#", "top-1 %", "predicted ms", "measured ms", "error %", "measured TFLite ms", "key"):
        table.add_column(col)
    for i, r in enumerate(rows, 1):
        pred = r["values"].get(name)
        meas = (r.get("measured") or {}).get(name)
        tfl = (r.get("measured") or {}).get(f"latency_ms[{device},tflite]")
        err = f"{100 * (pred - meas) / meas:+.0f}" if pred is not None and meas else "-"
        if pred is None and meas is None and tfl is None:
            continue  # not deployed (quick mode)
        table.add_row(str(i), f"{r['values']['top1']:.2f}", f"{pred:.3f}", "-" if meas is None else f"{meas:.3f}",
                      err, "-" if tfl is None else f"{tfl:.3f}", r["key"][:36])
    out.print(table)
