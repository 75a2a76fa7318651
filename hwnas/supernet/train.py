"""BigNAS-style supernet training: the sandwich rule (largest, smallest and random subnets each step), in-place
distillation from the largest subnet's soft labels, OFA's channel re-ordering each epoch, a checkpoint every
epoch and resumption from it (a killed run loses at most the epoch in progress)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.errors import SupernetError
from hwnas.supernet.checkpoint import read_checkpoint, save_checkpoint
from hwnas.supernet.evaluate import evaluate
from hwnas.supernet.ofa_mbv3 import OFAMobileNetV3Supernet
from hwnas.supernet.reorder import reorder_channels

__all__ = ["TrainConfig", "train_supernet", "TRAIN_KEY"]

TRAIN_KEY = "train"  # checkpoint entry with the optimizer state while a run is unfinished

EpochCallback = Callable[[dict[str, Any]], None]
StepCallback = Callable[[int, int], None]


@dataclass
class TrainConfig:
    """Hyper-parameters of `train_supernet` (stored in the checkpoint; a resumed run must match)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-5
    warmup_epochs: float = 0.5
    random_subnets: int = 2
    distill: bool = True
    label_smoothing: float = 0.1
    reorder: bool = True
    shift_px: int = 2
    grad_clip: float = 5.0
    seed: int = 0
    eval_images: int = 500

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _lr(config: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * config.lr * (1 + math.cos(math.pi * progress))


def _shift(x: torch.Tensor, rng: np.random.Generator, pixels: int) -> torch.Tensor:
    if pixels <= 0:
        return x
    dy, dx = (int(v) for v in rng.integers(-pixels, pixels + 1, 2))
    padded = F.pad(x, (pixels, pixels, pixels, pixels), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., pixels + dy:pixels + dy + h, pixels + dx:pixels + dx + w]


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _sandwich(supernet: OFAMobileNetV3Supernet, rng: np.random.Generator, n_random: int) -> list[Any]:
    return [supernet.largest(), supernet.smallest(), *supernet.space.sample(rng, n_random)]


def train_supernet(supernet: OFAMobileNetV3Supernet, train_data: Any, val_data: Any, config: TrainConfig,
                   checkpoint: str | Path, resume: bool = True, on_epoch: EpochCallback | None = None,
                   on_step: StepCallback | None = None, stop_after_epochs: int | None = None) -> dict[str, Any]:
    """Train `supernet` on `train_data` (an `hwnas.data.Dataset`), writing `checkpoint` after every epoch.

    With `resume`, an unfinished checkpoint at that path (same space and config) continues where it stopped.
    Returns {"epochs_done", "history"}; `on_epoch(record)` gets each epoch's record, `on_step(step, steps)`
    each optimisation step. `stop_after_epochs` ends the call early (for tests and time-boxed runs).
    """
    if not isinstance(supernet, OFAMobileNetV3Supernet):
        raise SupernetError("training needs an ofa-mbv3 supernet")
    space = supernet.space
    if train_data.n_classes > space.n_classes:
        raise SupernetError(f"the data has {train_data.n_classes} classes but the space has n_classes="
                            f"{space.n_classes}")
    checkpoint = Path(checkpoint)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
    start_epoch, history = 0, []
    if resume and checkpoint.is_file():
        start_epoch, history = _resume(supernet, optimizer, checkpoint, config)
    steps_per_epoch = max(1, len(train_data) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    channels = space.in_channels
    x_all = torch.from_numpy(_channels(train_data.x, channels))
    _memory_format(supernet, torch.channels_last)  # 3-4x faster depthwise backward on CPU
    y_all = torch.from_numpy(train_data.y)
    epochs_run = 0
    for epoch in range(start_epoch, config.epochs):
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            break
        started = time.time()
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 100003 + epoch)
        order = torch.from_numpy(rng.permutation(len(train_data)))
        supernet.train()
        losses = []
        for step in range(steps_per_epoch):
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = _lr(config, global_step, total_steps, steps_per_epoch)
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            x, y = _shift(x_all[idx], rng, config.shift_px), y_all[idx]
            optimizer.zero_grad(set_to_none=True)
            soft = None
            step_loss = 0.0
            for k, arch in enumerate(_sandwich(supernet, rng, config.random_subnets)):
                supernet.set_active(arch)
                logits = supernet(_resize(x, arch.r).contiguous(memory_format=torch.channels_last))
                if k == 0 or not config.distill:
                    loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                    if k == 0:
                        soft = F.softmax(logits.detach(), dim=1)
                else:
                    loss = F.kl_div(F.log_softmax(logits, dim=1), soft, reduction="batchmean")
                loss.backward()
                step_loss += float(loss.detach())
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(supernet.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(step_loss)
            if on_step is not None:
                on_step(step + 1, steps_per_epoch)
        if config.reorder:
            reorder_channels(supernet.elastic_blocks(), optimizer)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": round(time.time() - started, 1)}
        if val_data is not None and config.eval_images:
            record["top1_largest"] = evaluate(supernet, supernet.largest(), val_data, limit=config.eval_images,
                                              calib_data=train_data)
            record["top1_smallest"] = evaluate(supernet, supernet.smallest(), val_data, limit=config.eval_images,
                                               calib_data=train_data)
        history.append(record)
        finished = epoch + 1 == config.epochs
        meta = {"train_config": asdict(config), "history": history, "epochs_done": epoch + 1,
                "data": getattr(train_data, "name", "")}
        extra = None if finished else {TRAIN_KEY: {"epoch": epoch + 1, "optimizer": optimizer.state_dict()}}
        save_checkpoint(supernet, checkpoint, meta=meta, extra=extra)
        epochs_run += 1
        if on_epoch is not None:
            on_epoch(record)
    _memory_format(supernet, torch.contiguous_format)
    supernet.set_active(supernet.largest())
    return {"epochs_done": history[-1]["epoch"] if history else 0, "history": history}


def _memory_format(module: torch.nn.Module, memory_format: torch.memory_format) -> None:
    """Store every 4-d parameter and buffer in `memory_format` (in place: optimizers keep their references)."""
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=memory_format)


def _channels(x: np.ndarray, channels: int) -> np.ndarray:
    from hwnas.data import match_channels

    return np.ascontiguousarray(match_channels(x, channels))


def _resume(supernet: OFAMobileNetV3Supernet, optimizer: torch.optim.Optimizer, path: Path,
            config: TrainConfig) -> tuple[int, list[dict[str, Any]]]:
    data = read_checkpoint(path)
    meta = data.get("meta") or {}
    if data.get("space") != supernet.space.config():
        raise SupernetError(f"{path} holds a supernet of another space; pass a new checkpoint path or the same "
                            "space options to resume")
    if meta.get("supernet", {}) != supernet.options:
        raise SupernetError(f"{path} was trained with supernet options {meta.get('supernet')}, not "
                            f"{supernet.options}; use the same --mos-experts to resume")
    stored = meta.get("train_config", {})
    if stored != asdict(config):
        diff = sorted(k for k in asdict(config) if stored.get(k) != asdict(config)[k])
        raise SupernetError(f"{path} was trained with other settings ({', '.join(diff)} differ); resume with the "
                            "same options or write to a new checkpoint")
    supernet.load_state_dict(data["state_dict"], strict=True)
    state = data.get(TRAIN_KEY)
    if state is None:  # a finished run
        return int(meta.get("epochs_done", config.epochs)), list(meta.get("history", []))
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"]), list(meta.get("history", []))
