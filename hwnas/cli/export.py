"""`hwnas export`: subnets (an arch, or every entry of a search front) to validated ONNX / TFLite files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwnas.cli._common import JsonOpt, console, out, read_json_arg
from hwnas.errors import ExportError, InvalidArchError

DEFAULT_CALIB_SAMPLES = 128


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    archs: Annotated[str, typer.Argument(help="Arch JSON, a search front.json (entries with an 'arch' field), "
                                              "inline JSON, an arch key, or - for stdin.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into (created if missing).")],
    supernet_path: Annotated[Path | None, typer.Option("--supernet", help="Supernet checkpoint whose weights to "
                                                       "export (default: random weights; needs --space).")] = None,
    space_name: Annotated[str | None, typer.Option("--space", help="Space of the archs: a name, or a space "
                                                   "config (JSON file or inline) for non-default options; "
                                                   "checked against the checkpoint.")] = None,
    formats: Annotated[str, typer.Option("--format", "-f", help="Comma-separated: onnx, tflite.")] = "onnx,tflite",
    int8: Annotated[bool, typer.Option("--int8", help="Also write int8 (post-training static) models.")] = False,
    calib: Annotated[str | None, typer.Option("--calib", help="Calibration images (for --int8, and to re-estimate "
                                              "a supernet subnet's batch norms): a dataset ('mnist5k', an "
                                              "ImageFolder, a .npz; its train split) or a .npy of NCHW "
                                              "floats.")] = None,
    calib_samples: Annotated[int, typer.Option("--calib-samples", min=1, help="Calibration images to use.")]
    = DEFAULT_CALIB_SAMPLES,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip comparing each file with PyTorch.")]
    = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Export subnets to ONNX and/or TFLite, validated against PyTorch, each with a model.json sidecar."""
    from hwnas.export import FORMATS, export_archs
    from hwnas.export.core import prepare_folder

    fmts = [f.strip().lower() for f in formats.split(",") if f.strip()]
    unknown = [f for f in fmts if f not in FORMATS]
    if not fmts or unknown:
        raise ExportError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {formats!r}")
    if int8 and calib is None:
        raise ExportError("--int8 needs calibration images: pass --calib mnist5k (or a dataset folder, .npz, .npy)")
    if calib is not None and not int8 and supernet_path is None:
        raise ExportError("--calib is used for --int8 or to re-estimate a supernet's batch norms; "
                          "add --int8 or --supernet, or drop --calib")
    space, supernet = _load_space(supernet_path, space_name)
    items = _arch_items(read_json_arg(archs, "arch or search front"))
    checked = [supernet.validate(item) if supernet is not None else space.validate(item) for item in items]
    unique = list({a.key: a for a in checked}.values())
    calib_data = _load_calib(calib, calib_samples) if calib is not None else None
    folder = prepare_folder(out_dir)
    precisions = ["fp32", "int8"] if int8 else ["fp32"]
    if supernet is None:
        console.print("[yellow]no --supernet given: exporting random weights (fine for latency, not for "
                      "accuracy)[/yellow]")
    elif calib_data is None:
        console.print("[yellow]no --calib given: batch norms keep the supernet's running statistics; pass "
                      "--calib DATA to re-estimate them per subnet (as OFA does) for full accuracy[/yellow]")
    total = len(unique) * len(fmts) * len(precisions)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("exporting", total=total)
        results = export_archs(space, unique, folder, fmts, precisions, checkpoint=supernet_path if supernet else None,
                               calib=calib_data if int8 else None, bn_data=calib_data,
                               validate=not no_validate, jobs=jobs,
                               progress=lambda done, _total: progress.update(task, completed=done))
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in results]))
        return
    table = Table("arch", "format", "precision", "MB", "check", "file")
    for r in results:
        table.add_row(r.meta.get("arch_key", ""), r.format, r.precision, f"{r.bytes / 1e6:.2f}", _check(r.validation),
                      str(r.path))
    out.print(table)


def _check(validation: dict[str, Any] | None) -> str:
    if validation is None:
        return "not validated"
    if validation["precision"] == "fp32":
        return f"max diff {validation['max_abs_diff']:.1e}"
    top1 = validation.get("top1_agreement")
    return f"top-1 agree {top1:.0%}" if top1 is not None else f"nrmse {validation['nrmse']:.2f}"


def _load_space(supernet_path: Path | None, space_name: str | None) -> tuple[Any, Any]:
    from hwnas import space as spaces

    expected, full_config = None, False
    if space_name:
        config = read_json_arg(space_name, "space config")
        if isinstance(config, dict):
            expected, full_config = spaces.from_config(config), True
        elif isinstance(config, str):
            expected = spaces.create(config)
        else:
            raise ExportError("--space takes a space name or a space config object (JSON)")
    if supernet_path is None:
        if expected is None:
            raise ExportError("pass --supernet CKPT (trained weights) or --space NAME (random weights)")
        return expected, None
    from hwnas.supernet import load_checkpoint

    if supernet_path.is_dir():
        raise ExportError(f"--supernet {supernet_path} is a folder; pass the checkpoint file")
    supernet = load_checkpoint(supernet_path, expected if full_config else None)
    if expected is not None and supernet.space.name != expected.name:
        raise ExportError(f"checkpoint {supernet_path} is for space {supernet.space.name!r}, not {expected.name!r}; "
                          f"pass the checkpoint trained for {expected.name!r}")
    return supernet.space, supernet.eval()


def _arch_items(data: Any) -> list[Any]:
    """An arch (dict or key), a front entry ({"arch": ...}), or a list of either (a search front)."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidArchError("no arch given: the JSON list is empty")
    archs = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "arch" in item:
            item = item["arch"]
        if not isinstance(item, (dict, str)):
            raise InvalidArchError(f"entry {i} is a {type(item).__name__}; expected an arch dict, an arch key "
                                   f"or a front entry with an 'arch' field")
        archs.append(item)
    return archs


def _load_calib(spec: str, limit: int) -> np.ndarray:
    path = Path(spec).expanduser()
    if path.suffix == ".npy":
        if not path.is_file():
            raise ExportError(f"calibration file {path} does not exist")
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ExportError(f"cannot read {path} as a numpy array: {exc}") from None
        if data.ndim != 4:
            raise ExportError(f"{path} holds shape {data.shape}; calibration images must be NCHW (4 dimensions)")
        return np.asarray(data[:limit], dtype=np.float32)
    from hwnas.data import load_dataset

    dataset = load_dataset(spec, split="train")
    if len(dataset) == 0:
        raise ExportError(f"dataset {spec!r} has no training images to calibrate with")
    index = np.random.default_rng(0).permutation(len(dataset))[:limit]
    return np.asarray(dataset.x[np.sort(index)], dtype=np.float32)
