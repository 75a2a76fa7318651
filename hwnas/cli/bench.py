"""`hwnas bench MODEL... --device D`: calls `hwnas.workflows.bench` (any .onnx / .tflite file measured on a device
with the profiling method) and prints its statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hwnas.cli._common import JsonOpt, WorkspaceOpt, out, print_json, progress_display


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    models: Annotated[list[Path], typer.Argument(help="Model files (.onnx or .tflite).")],
    device: Annotated[str, typer.Option("--device", help="Device to measure on.")],
    runs: Annotated[int | None, typer.Option("--runs", min=1, help="Timed runs per model (device default).")] = None,
    warmup: Annotated[int | None, typer.Option("--warmup", min=0, help="Warm-up runs per model.")] = None,
    rounds: Annotated[int | None, typer.Option("--rounds", min=1, help="Interleaved rounds over the files.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Inference threads (device default).")]
    = None,
    as_json: JsonOpt = False,
    ws: WorkspaceOpt = None,
) -> None:
    """Measure model files on a device: median, mean, std, min and p90 latency (ms), as profiling does."""
    from hwnas.workflows import bench as run

    with progress_display() as progress:
        results = run(models, device, workspace=ws, runs=runs, warmup=warmup, rounds=rounds, threads=threads,
                      progress=progress)
    if as_json:
        print_json([{"model": str(path), **m.to_dict()} for path, m in zip(models, results, strict=True)])
    else:
        table = Table("model", "runtime", "median ms", "mean ms", "std ms", "min ms", "p90 ms", "runs", "status",
                      title=f"measured on {device}")
        for path, m in zip(models, results, strict=True):
            if m.ok:
                table.add_row(str(path), m.runtime, f"{m.median_ms:.3f}", f"{m.mean_ms:.3f}", f"{m.std_ms:.3f}",
                              f"{m.min_ms:.3f}", f"{m.p90_ms:.3f}", str(m.n), "ok")
            else:
                table.add_row(str(path), m.runtime, "-", "-", "-", "-", "-", "-", f"failed: {m.error}")
        out.print(table)
    if not all(m.ok for m in results):
        raise typer.Exit(1)
