"""Batch-norm recalibration (as OFA does before evaluating a subnet) and top-1 evaluation of a subnet."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.errors import SupernetError

__all__ = ["recalibrate_bn", "evaluate", "batches_for"]

Progress = Callable[[int, int], None]


def _tensor(x: Any, channels_last: bool = False) -> torch.Tensor:
    tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return tensor.contiguous(memory_format=torch.channels_last) if channels_last and tensor.dim() == 4 else tensor


def batches_for(data: Any, resolution: int, channels: int, batch_size: int = 250,
                limit: int | None = None, shuffle: bool = False, seed: int = 0) -> list[tuple[Any, Any]]:
    """(images, labels) batches of `data` (an `hwnas.data.Dataset`, or already an iterable of batches)."""
    from hwnas.data import Dataset, iter_batches

    if isinstance(data, Dataset):
        rng = np.random.default_rng(seed)
        return list(iter_batches(data, batch_size, resolution, channels, shuffle=shuffle, rng=rng, limit=limit))
    return list(data)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: Iterable[Any], batches: int | None = None) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them as exact averages (momentum None)
    over `batches` batches of `data` (images, or (images, labels) pairs). Returns the model in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    was_training = model.training
    seen = 0
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        model.eval()
        for m in bns:
            m.train()
        for item in data:
            if batches is not None and seen >= batches:
                break
            images = item[0] if isinstance(item, (tuple, list)) else item
            model(_tensor(images).float())
            seen += 1
    finally:
        for m, (momentum, _) in zip(bns, saved, strict=True):
            m.momentum = momentum
        model.train(was_training)
    if bns and seen == 0:
        raise SupernetError("batch-norm recalibration got no batches; pass data with at least one batch")
    return model.eval()


@torch.no_grad()
def evaluate(supernet: Any, arch: Any, data: Any, batches: int | None = None, limit: int | None = None,
             calib_data: Any = None, calib_batches: int = 4, batch_size: int = 250,
             progress: Progress | None = None) -> float:
    """Top-1 accuracy (%) of `arch`: extract it, recalibrate its batch norms on `calib_data` (default: `data`),
    then classify `data` (a `hwnas.data.Dataset`, up to `limit` images, or `batches` batches).
    `progress(done, total)` is called after each batch."""
    arch = supernet.validate(arch)
    space = supernet.space
    resolution = getattr(arch, "r", None) or space.input_shape(arch)[-1]
    channels = space.input_shape(arch)[1]
    model = supernet.extract(arch).to(memory_format=torch.channels_last)  # our copy: faster depthwise convs on CPU
    eval_batches = batches_for(data, resolution, channels, batch_size, limit)
    if batches is not None:
        eval_batches = eval_batches[:batches]
    if not eval_batches:
        raise SupernetError("evaluation got no data; pass a dataset with at least one image")
    calib = batches_for(calib_data if calib_data is not None else data, resolution, channels, batch_size,
                        shuffle=calib_data is not None, limit=calib_batches * batch_size)
    recalibrate_bn(model, [_tensor(images, True) for images, _ in calib], calib_batches)
    correct = total = 0
    for done, (images, labels) in enumerate(eval_batches, 1):
        logits = model(_tensor(images, True).float())
        correct += int((logits.argmax(1) == _tensor(labels).long()).sum())
        total += len(labels)
        if progress is not None:
            progress(done, len(eval_batches))
    return 100.0 * correct / total
