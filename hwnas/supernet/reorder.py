"""OFA's channel re-ordering by importance: sort each elastic block's middle channels (and its SE middle
channels) by the L1 norm of the weights that read them, so that first-channel slicing keeps the best ones.
The largest subnet computes the same function before and after; optimizer state is permuted alongside."""

from __future__ import annotations

import torch
from torch import nn

from hwnas.supernet.elastic import ElasticConv, ElasticMBConv

__all__ = ["reorder_channels", "block_importance"]


def _permute(param: torch.Tensor, index: torch.Tensor, dim: int, optimizer: torch.optim.Optimizer | None) -> None:
    param.data.copy_(param.data.index_select(dim, index))
    if optimizer is not None and param in optimizer.state:
        for value in optimizer.state[param].values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.copy_(value.index_select(dim, index))


def _conv_params(conv: ElasticConv) -> tuple[torch.Tensor, int]:
    """The weight tensor of an elastic 1x1 conv and the offset of its (out, in) dims (1 for MoS experts)."""
    return (conv.experts, 1) if conv.n_experts else (conv.conv.weight, 0)


def block_importance(block: ElasticMBConv) -> torch.Tensor:
    """Importance of each middle channel: L1 norm of the point-wise projection weights reading it."""
    weight, offset = _conv_params(block.point_linear.conv)
    dims = [d for d in range(weight.dim()) if d != offset + 1]
    return weight.detach().abs().sum(dim=dims)


def _permute_bn(bn: nn.BatchNorm2d, index: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    for param in (bn.weight, bn.bias):
        _permute(param, index, 0, optimizer)
    for buffer in (bn.running_mean, bn.running_var):
        buffer.copy_(buffer.index_select(0, index))


@torch.no_grad()
def reorder_channels(blocks: list[ElasticMBConv], optimizer: torch.optim.Optimizer | None = None) -> None:
    """Sort the middle channels of every block by importance, most important first."""
    for block in blocks:
        index = torch.argsort(block_importance(block), descending=True)
        weight, offset = _conv_params(block.point_linear.conv)
        _permute(weight, index, offset + 1, optimizer)
        dw = block.depth_conv
        _permute(dw.conv.conv.weight, index, 0, optimizer)
        _permute_bn(dw.bn.bn, index, optimizer)
        weight, offset = _conv_params(block.inverted_bottleneck.conv)
        _permute(weight, index, offset, optimizer)
        _permute_bn(block.inverted_bottleneck.bn.bn, index, optimizer)
        if block.use_se:
            fc = dw.se.fc
            _permute(fc.reduce.weight, index, 1, optimizer)
            _permute(fc.expand.weight, index, 0, optimizer)
            _permute(fc.expand.bias, index, 0, optimizer)
            se_index = torch.argsort(fc.expand.weight.detach().abs().sum(dim=(0, 2, 3)), descending=True)
            _permute(fc.reduce.weight, se_index, 0, optimizer)
            _permute(fc.reduce.bias, se_index, 0, optimizer)
            _permute(fc.expand.weight, se_index, 1, optimizer)

