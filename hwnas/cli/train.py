"""`hwnas train`: BigNAS-style training of an ofa-mbv3 supernet from scratch, resumable from its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli._common import SeedOpt, console, out
from hwnas.errors import HwnasError


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise HwnasError(f"--{name} must be comma-separated integers like 3,5,7; got {text!r}") from None
    if not values:
        raise HwnasError(f"--{name} needs at least one value")
    return values


def train(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write every epoch (and resume from).")],
    data: Annotated[str, typer.Option("--data", help="'mnist5k', an ImageFolder folder or a .npz (x, y).")] = "mnist5k",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (SGD, nesterov, cosine).")] = 0.05,
    width_mult: Annotated[float, typer.Option("--width-mult", help="Width multiplier of the space.")] = 1.0,
    base_widths: Annotated[str, typer.Option("--base-widths", help="9 base widths (OFA's by default).")]
    = "16,16,24,40,80,112,160,960,1280",
    resolutions: Annotated[str, typer.Option(help="Input resolutions.")] = "32,40,48",
    ks: Annotated[str, typer.Option("--ks", help="Kernel sizes.")] = "3,5,7",
    expand: Annotated[str, typer.Option("--expand", help="Expand ratios.")] = "3,4,6",
    depth: Annotated[str, typer.Option("--depth", help="Stage depths.")] = "2,3,4",
    in_channels: Annotated[int, typer.Option("--in-channels", help="Input channels (grey images are repeated).")] = 3,
    random_subnets: Annotated[int, typer.Option("--random-subnets", help="Random subnets per step (sandwich).")] = 2,
    distill: Annotated[bool, typer.Option("--distill/--no-distill", help="In-place distillation.")] = True,
    reorder: Annotated[bool, typer.Option("--reorder/--no-reorder", help="Re-order channels by importance.")] = True,
    mos_experts: Annotated[int, typer.Option("--mos-experts", help="Mixture-of-Supernets experts (0: off).")] = 0,
    eval_images: Annotated[int, typer.Option("--eval-images", help="Validation images scored per epoch.")] = 500,
    threads: Annotated[int, typer.Option(help="Torch CPU threads.")] = 1,
    resume: Annotated[bool, typer.Option("--resume/--restart", help="Continue an unfinished checkpoint.")] = True,
    seed: SeedOpt = 0,
) -> None:
    """Train an ofa-mbv3 supernet (sandwich rule, in-place distillation, channel re-ordering)."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from hwnas.data import load_dataset
    from hwnas.space import create
    from hwnas.supernet import create_supernet
    from hwnas.supernet.train import TrainConfig, train_supernet

    torch.set_num_threads(max(1, threads))
    options = {"width_mult": width_mult, "base_widths": _ints(base_widths, "base-widths"),
               "resolutions": _ints(resolutions, "resolutions"), "ks_list": _ints(ks, "ks"),
               "expand_list": _ints(expand, "expand"), "depth_list": _ints(depth, "depth"), "in_channels": in_channels}
    create("ofa-mbv3", **options)  # bad options fail before the data is read
    train_data = load_dataset(data, split="train")
    val_data = load_dataset(data, split="val")
    space = create("ofa-mbv3", n_classes=train_data.n_classes, **options)
    torch.manual_seed(seed)
    supernet = create_supernet(space, mos_experts=mos_experts)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, random_subnets=random_subnets, distill=distill,
                         reorder=reorder, seed=seed, eval_images=eval_images)
    console.print(f"training {space!r} on {train_data.name} ({len(train_data)} train / {len(val_data)} val images)")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("epoch", total=None)

        def on_step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def on_epoch(record: dict) -> None:
            text = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
            console.print(text)
            bar.update(task, completed=0)

        result = train_supernet(supernet, train_data, val_data, config, out_path, resume=resume,
                                on_epoch=on_epoch, on_step=on_step)
    out.print(f"wrote {out_path} after {result['epochs_done']} epochs")


def register(app: typer.Typer) -> None:
    """Add `hwnas train` to the app."""
    app.command("train")(train)
