"""FLOPs (multiply-accumulates of convolutions and linear layers) and parameters of a torch module."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["count_flops_params"]


def count_flops_params(model: torch.nn.Module, input_shape: Sequence[int]) -> tuple[float, float]:
    """(flops_m, params_m) for one input of `input_shape`, in OFA's convention (MACs of conv and linear)."""
    total = [0]

    def conv_hook(module: torch.nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1]
        total[0] += (module.in_channels // module.groups) * k * output.numel() // max(output.shape[0], 1)

    def linear_hook(module: torch.nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        total[0] += module.in_features * output.numel() // max(output.shape[0], 1)

    handles = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, torch.nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(torch.zeros(tuple(int(s) for s in input_shape)))
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in model.parameters())
    return total[0] / 1e6, params / 1e6
