"""Elastic layers of the OFA MobileNetV3 supernet: the first channels of a weight are active, depthwise kernels
shrink through OFA's learned transform matrices, and optional Mixture-of-Supernets (MoS) weights.

Attribute names reproduce OFA's `OFAMobileNetV3` state-dict keys (`conv.conv.weight`, `bn.bn.*`,
`depth_conv.conv.7to5_matrix`, `se.fc.reduce.*`), so its checkpoints load without renaming tables.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.space.ofa_mbv3 import SE_REDUCTION, make_divisible
from hwnas.supernet.blocks import make_activation

__all__ = ["ElasticConv", "ElasticDWConv", "ElasticBN", "ElasticSE", "ElasticMBConv", "sub_kernel_range"]


def sub_kernel_range(kernel: int, sub_kernel: int) -> tuple[int, int]:
    """Start and end of the centred `sub_kernel` window inside a `kernel` window."""
    centre, half = kernel // 2, sub_kernel // 2
    return centre - half, centre + half + 1


class ElasticConv(nn.Module):
    """A 1x1 convolution (no bias) whose first `out` x `in` channels are active.

    With `experts` > 0 it is a Mixture-of-Supernets layer: its weight is a convex mixture of `experts` weights
    whose coefficients come from a small router MLP on the active arch's encoding (`self.encoding`, set by the
    supernet), so every arch still gets one dense weight.
    """

    def __init__(self, max_in: int, max_out: int, experts: int = 0, router_in: int = 0, router_hidden: int = 16):
        super().__init__()
        self.max_in, self.max_out, self.n_experts = max_in, max_out, int(experts)
        self.encoding: torch.Tensor | None = None
        if self.n_experts:
            weights = []
            for _ in range(self.n_experts):
                w = torch.empty(max_out, max_in, 1, 1)
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                weights.append(w * math.sqrt(self.n_experts))  # keep the mean's variance at init
            self.experts = nn.Parameter(torch.stack(weights))
            self.router = nn.Sequential(nn.Linear(router_in, router_hidden), nn.ReLU(),
                                        nn.Linear(router_hidden, self.n_experts))
            nn.init.zeros_(self.router[2].weight)
            nn.init.zeros_(self.router[2].bias)
        else:
            self.conv = nn.Conv2d(max_in, max_out, 1, bias=False)

    def mixture(self) -> torch.Tensor:
        """The router's coefficients for the active arch (MoS layers only)."""
        if self.encoding is None:
            raise RuntimeError("a Mixture-of-Supernets layer needs set_active(arch) first")
        return torch.softmax(self.router(self.encoding), dim=-1)

    def full_weight(self) -> torch.Tensor:
        if not self.n_experts:
            return self.conv.weight
        return torch.einsum("m,moikl->oikl", self.mixture(), self.experts)

    def active_weight(self, out_channels: int, in_channels: int) -> torch.Tensor:
        return self.full_weight()[:out_channels, :in_channels]

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        return F.conv2d(x, self.active_weight(out_channels, x.size(1)))


class ElasticDWConv(nn.Module):
    """Depthwise convolution with one largest kernel; smaller kernels are its centre passed through OFA's
    per-layer transform matrices (`7to5_matrix`, `5to3_matrix`)."""

    def __init__(self, max_channels: int, ks_list: tuple[int, ...], stride: int = 1):
        super().__init__()
        self.ks_set = sorted(set(ks_list))
        self.max_kernel = self.ks_set[-1]
        self.stride = stride
        self.conv = nn.Conv2d(max_channels, max_channels, self.max_kernel, stride, groups=max_channels, bias=False)
        for small, large in zip(self.ks_set[:-1], self.ks_set[1:], strict=True):
            self.register_parameter(f"{large}to{small}_matrix", nn.Parameter(torch.eye(small * small)))

    def active_weight(self, channels: int, kernel: int) -> torch.Tensor:
        weight = self.conv.weight[:channels]
        if kernel == self.max_kernel:
            return weight
        for i in range(len(self.ks_set) - 1, 0, -1):
            src, tgt = self.ks_set[i], self.ks_set[i - 1]
            if src <= kernel:
                break
            start, end = sub_kernel_range(src, tgt)
            flat = weight[:, :, start:end, start:end].reshape(-1, tgt * tgt)
            weight = F.linear(flat, getattr(self, f"{src}to{tgt}_matrix")).view(channels, 1, tgt, tgt)
        return weight

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        c = x.size(1)
        return F.conv2d(x, self.active_weight(c, kernel), None, self.stride, kernel // 2, 1, c)


class ElasticBN(nn.Module):
    """Batch norm over the first channels of a larger one (statistics slices update in place)."""

    def __init__(self, max_channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(max_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, c = self.bn, x.size(1)
        if c == bn.num_features:
            return bn(x)
        return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                            bn.training or not bn.track_running_stats, bn.momentum or 0.0, bn.eps)

    def active_state(self, channels: int) -> dict[str, torch.Tensor]:
        bn = self.bn
        return {"weight": bn.weight[:channels], "bias": bn.bias[:channels], "running_mean": bn.running_mean[:channels],
                "running_var": bn.running_var[:channels], "num_batches_tracked": bn.num_batches_tracked}


class _SEFC(nn.Module):
    def __init__(self, channels: int, mid: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)


class ElasticSE(nn.Module):
    """Squeeze-excite over the first channels; its middle width follows the active channels."""

    def __init__(self, max_channels: int):
        super().__init__()
        self.fc = _SEFC(max_channels, make_divisible(max_channels // SE_REDUCTION))

    def active_state(self, channels: int) -> dict[str, torch.Tensor]:
        mid = make_divisible(channels // SE_REDUCTION)
        fc = self.fc
        return {"reduce.weight": fc.reduce.weight[:mid, :channels], "reduce.bias": fc.reduce.bias[:mid],
                "expand.weight": fc.expand.weight[:channels, :mid], "expand.bias": fc.expand.bias[:channels]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.active_state(x.size(1))
        y = x.mean(dim=(2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, p["reduce.weight"], p["reduce.bias"]))
        return x * F.hardsigmoid(F.conv2d(y, p["expand.weight"], p["expand.bias"]))


class _Stage(nn.Module):
    """A named holder (conv, bn, act, optional se) so that state-dict keys read as OFA's."""

    def __init__(self, conv: nn.Module, bn: nn.Module, act: str = "", se: nn.Module | None = None):
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, make_activation(act)
        if se is not None:
            self.se = se


class ElasticMBConv(nn.Module):
    """Inverted bottleneck with elastic kernel (`active_kernel`) and expand ratio (`active_expand`)."""

    def __init__(self, in_channels: int, out_channels: int, ks_list: tuple[int, ...], expand_list: tuple[int, ...],
                 stride: int, act: str, se: bool, mos_experts: int = 0, router_in: int = 0, router_hidden: int = 16):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.act_name, self.use_se = act, se
        max_mid = make_divisible(round(in_channels * max(expand_list)))
        mos = {"experts": mos_experts, "router_in": router_in, "router_hidden": router_hidden}
        self.inverted_bottleneck = _Stage(ElasticConv(in_channels, max_mid, **mos), ElasticBN(max_mid), act)
        self.depth_conv = _Stage(ElasticDWConv(max_mid, tuple(ks_list), stride), ElasticBN(max_mid), act,
                                 ElasticSE(max_mid) if se else None)
        self.point_linear = _Stage(ElasticConv(max_mid, out_channels, **mos), ElasticBN(out_channels))
        self.active_kernel = max(ks_list)
        self.active_expand = max(expand_list)

    def mid_channels(self, expand: int | None = None) -> int:
        return make_divisible(round(self.in_channels * (self.active_expand if expand is None else expand)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.mid_channels()
        y = x
        if mid != self.in_channels:
            ib = self.inverted_bottleneck
            y = ib.act(ib.bn(ib.conv(y, mid)))
        dw = self.depth_conv
        y = dw.act(dw.bn(dw.conv(y, self.active_kernel)))
        if self.use_se:
            y = dw.se(y)
        pl = self.point_linear
        return pl.bn(pl.conv(y, self.out_channels))
