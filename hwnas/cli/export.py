"""`hwnas export`: calls `hwnas.workflows.export` (subnets to validated ONNX / TFLite files) and lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hwnas.cli._common import JsonOpt, SupernetOpt, out, plain, print_json, progress_display, read_json_arg


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    archs: Annotated[str, typer.Argument(help="Arch JSON, a search front.json, inline JSON, an arch key, or - for "
                                              "stdin.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into (created if missing).")],
    supernet_path: SupernetOpt = None,
    space_name: Annotated[str | None, typer.Option("--space", help="Space of the archs: a name, or a space "
                                                   "config (JSON file or inline) for non-default options; "
                                                   "checked against the checkpoint; without --supernet the "
                                                   "weights are random.")] = None,
    formats: Annotated[str, typer.Option("--format", "-f", help="Comma-separated: onnx, tflite.")] = "onnx,tflite",
    int8: Annotated[bool, typer.Option("--int8", help="Also write int8 (post-training static) models.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write fp16 TFLite models (float16 weights, float32 "
                                       "compute: about half the size).")] = False,
    tflite_layout: Annotated[str, typer.Option("--tflite-layout", help="Input layout of TFLite files: nhwc "
                                               "([1, H, W, C], what phone apps and delegates expect) or nchw "
                                               "(PyTorch's).")] = "nhwc",
    labels: Annotated[str | None, typer.Option("--labels", help="Class names for the metadata: a text file with "
                                               "one per line, or comma-separated (default: the classes of the "
                                               "supernet's training dataset).")] = None,
    calib: Annotated[str | None, typer.Option("--calib", help="Calibration images (for --int8, and to re-estimate "
                                              "a supernet subnet's batch norms): a dataset ('mnist5k', an "
                                              "ImageFolder, a .npz; its train split) or a .npy of NCHW "
                                              "floats.")] = None,
    calib_samples: Annotated[int | None, typer.Option("--calib-samples", min=1, help="Calibration images to use "
                                                      "(default 128).")] = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip comparing each file with PyTorch.")]
    = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Export subnets to ONNX and/or TFLite, validated against PyTorch, each with a model.json sidecar."""
    from hwnas.workflows import export as run

    space: Any = read_json_arg(space_name, "space config") if space_name else None
    samples = {} if calib_samples is None else {"calib_samples": calib_samples}  # else the workflow's default
    with progress_display() as progress:
        summary = run(read_json_arg(archs, "arch or search front"), out_dir, supernet=supernet_path, space=space,
                      formats=formats.split(","), int8=int8, fp16=fp16, tflite_layout=tflite_layout, labels=labels,
                      calib=calib, validate=not no_validate, jobs=jobs, progress=progress, **samples)
    for warning in summary.warnings:
        plain(f"warning: {warning}")
    if as_json:
        print_json([r.to_dict() for r in summary.models])
        return
    table = Table("arch", "format", "precision", "input", "MB", "check", "file")
    for r in summary.models:
        table.add_row(r.meta.get("arch_key", ""), r.format, r.precision, r.input_layout, f"{r.bytes / 1e6:.2f}",
                      _check(r.validation), str(r.path))
    out.print(table)


def _check(validation: dict[str, Any] | None) -> str:
    if validation is None:
        return "not validated"
    if validation["precision"] in ("fp32", "fp16"):
        return f"max diff {validation['max_abs_diff']:.1e}"
    top1 = validation.get("top1_agreement")
    return f"top-1 agree {top1:.0%}" if top1 is not None else f"nrmse {validation['nrmse']:.2f}"
