"""Helpers shared by the supernet tests (a unique module name: other test folders have their own helpers)."""

from __future__ import annotations

import torch


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give batch norms, biases and kernel-transform matrices values far from their defaults."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if not value.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                value.copy_(torch.randn(value.shape, generator=g) * 0.2)
            elif name.endswith("matrix"):
                value.add_(torch.randn(value.shape, generator=g) * 0.1)
            elif "bn" in name and name.endswith("weight"):
                value.copy_(torch.rand(value.shape, generator=g) + 0.5)
            elif name.endswith("bias"):
                value.copy_(torch.randn(value.shape, generator=g) * 0.2)
            elif name.endswith("experts") or name.endswith("weight"):
                value.mul_(1.5)
    return model
