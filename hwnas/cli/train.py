"""`hwnas train`: BigNAS-style training of an ofa-mbv3 supernet from scratch, resumable from its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli._common import SeedOpt, console, ints, out


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
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from hwnas.workflows import train as run

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("epoch", total=None)

        def on_epoch(record: dict) -> None:
            console.print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
            bar.update(task, completed=0)

        result = run(out_path, data=data, epochs=epochs, batch_size=batch_size, lr=lr, width_mult=width_mult,
                     base_widths=ints(base_widths, "--base-widths"), resolutions=ints(resolutions, "--resolutions"),
                     ks=ints(ks, "--ks"), expand=ints(expand, "--expand"), depth=ints(depth, "--depth"),
                     in_channels=in_channels, random_subnets=random_subnets, distill=distill, reorder=reorder,
                     mos_experts=mos_experts, eval_images=eval_images, threads=threads, resume=resume, seed=seed,
                     on_start=console.print, on_epoch=on_epoch,
                     on_step=lambda done, total: bar.update(task, completed=done, total=total))
    out.print(f"wrote {out_path} after {result['epochs_done']} epochs")


def register(app: typer.Typer) -> None:
    """Add `hwnas train` to the app."""
    app.command("train")(train)
