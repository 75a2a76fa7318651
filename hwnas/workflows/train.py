"""`train`: a supernet of the ofa-mbv3 space trained from scratch (sandwich rule, in-place distillation, channel
re-ordering; optional Mixture-of-Supernets layers), checkpointed every epoch and resumed from it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["train"]


def train(out: str | Path, *, data: str = "mnist5k", epochs: int = 10, batch_size: int = 64, lr: float = 0.05,
          width_mult: float = 1.0, base_widths: Sequence[int] = (16, 16, 24, 40, 80, 112, 160, 960, 1280),
          resolutions: Sequence[int] = (32, 40, 48), ks: Sequence[int] = (3, 5, 7), expand: Sequence[int] = (3, 4, 6),
          depth: Sequence[int] = (2, 3, 4), in_channels: int = 3, random_subnets: int = 2, distill: bool = True,
          reorder: bool = True, mos_experts: int = 0, eval_images: int = 500, threads: int = 1, resume: bool = True,
          seed: int = 0, on_start: Callable[[str], None] | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None,
          on_step: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Train into the checkpoint `out` (resumed when it holds an unfinished run of the same settings). Bad space
    options fail before the data is read. `on_start` gets one line describing the run, `on_epoch` each epoch's
    record, `on_step(done, total)` the steps within an epoch. Returns the trainer's summary."""
    import torch

    from hwnas.data import load_dataset
    from hwnas.space import create
    from hwnas.supernet import create_supernet
    from hwnas.supernet.train import TrainConfig, train_supernet

    torch.set_num_threads(max(1, threads))
    options = {"width_mult": width_mult, "base_widths": list(base_widths), "resolutions": list(resolutions),
               "ks_list": list(ks), "expand_list": list(expand), "depth_list": list(depth), "in_channels": in_channels}
    create("ofa-mbv3", **options)  # bad options fail before the data is read
    train_data = load_dataset(data, split="train")
    val_data = load_dataset(data, split="val")
    space = create("ofa-mbv3", n_classes=train_data.n_classes, **options)
    torch.manual_seed(seed)
    supernet = create_supernet(space, mos_experts=mos_experts)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, random_subnets=random_subnets, distill=distill,
                         reorder=reorder, seed=seed, eval_images=eval_images)
    if on_start is not None:
        on_start(f"training {space!r} on {train_data.name} ({len(train_data)} train / {len(val_data)} val images)")
    return train_supernet(supernet, train_data, val_data, config, out, resume=resume, on_epoch=on_epoch,
                          on_step=on_step)
