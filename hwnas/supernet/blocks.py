"""Plain PyTorch layers of the networks hwnas searches, one module per `OpSpec`.

`build_op_module(op)` builds any operator a space emits; `build_subnet(space, arch)` builds a whole randomly
initialised network of them. `Supernet.extract(arch)` returns the same structure with copied weights, so that
per-operator and whole-network latencies refer to the same layers. Activations follow Once-for-All.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hwnas.errors import SupernetError
from hwnas.space import NasBench201Space, OFAMobileNetV3Space, OpSpec, SearchSpace
from hwnas.space.nasbench201 import EDGES, OPS
from hwnas.space.ofa_mbv3 import SE_REDUCTION, make_divisible

__all__ = [
    "ConvBNAct",
    "SqueezeExcite",
    "MBConv",
    "GlobalAvgPool",
    "Classifier",
    "ReLUConvBN",
    "NB201ResBlock",
    "NB201Classifier",
    "NB201Cell",
    "NB201Network",
    "make_activation",
    "build_op_module",
    "build_subnet",
]


def make_activation(name: str) -> nn.Module:
    """"relu", "h_swish", "h_sigmoid" or "" (identity)."""
    if name == "relu":
        return nn.ReLU()
    if name == "h_swish":
        return nn.Hardswish()
    if name == "h_sigmoid":
        return nn.Hardsigmoid()
    if name in ("", "none", None):
        return nn.Identity()
    raise SupernetError(f"unknown activation {name!r}; use 'relu', 'h_swish', 'h_sigmoid' or ''")


class ConvBNAct(nn.Module):
    """Convolution with same padding, optional batch norm, optional activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 bn: bool = True, bias: bool = False, act: str = ""):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels) if bn else nn.Identity()
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-excite as in MobileNetV3/OFA: mean pool, 1x1 conv + relu, 1x1 conv + h_sigmoid, rescale."""

    def __init__(self, channels: int, mid_channels: int | None = None):
        super().__init__()
        mid = make_divisible(channels // SE_REDUCTION) if mid_channels is None else mid_channels
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.relu(self.reduce(y))))


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expand (absent when mid == in), depthwise kxk, optional SE, 1x1 project,
    identity skip when `idskip`."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, kernel: int, stride: int = 1,
                 act: str = "relu", se: bool = False, idskip: bool = False):
        super().__init__()
        if idskip and (stride != 1 or in_channels != out_channels):
            raise SupernetError("an identity skip needs stride 1 and equal input/output channels")
        self.inverted_bottleneck = (ConvBNAct(in_channels, mid_channels, 1, act=act)
                                    if mid_channels != in_channels else None)
        self.depth_conv = ConvBNAct(mid_channels, mid_channels, kernel, stride, groups=mid_channels, act=act)
        self.se = SqueezeExcite(mid_channels) if se else None
        self.point_linear = ConvBNAct(mid_channels, out_channels, 1)
        self.idskip = bool(idskip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.inverted_bottleneck is None else self.inverted_bottleneck(x)
        y = self.depth_conv(y)
        if self.se is not None:
            y = self.se(y)
        y = self.point_linear(y)
        return y + x if self.idskip else y


class GlobalAvgPool(nn.Module):
    """Mean over H and W, keeping (N, C, 1, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class Classifier(nn.Module):
    """(N, C, 1, 1) or (N, C) -> (N, classes) through one linear layer."""

    def __init__(self, in_features: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(in_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1))


# ------------------------------------------------------------------ NAS-Bench-201
class ReLUConvBN(nn.Module):
    """NAS-Bench-201's conv op: relu, conv (no bias), batch norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2,
                                                     bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class NB201ResBlock(nn.Module):
    """NAS-Bench-201's reduction block: two ReLUConvBN 3x3 (first strided) plus avg-pool + 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, odd_input: bool = False):
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, stride)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0, ceil_mode=odd_input),
                                        nn.Conv2d(in_channels, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class NB201Classifier(nn.Module):
    """NAS-Bench-201's head: batch norm, relu, global average pool, linear."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.linear = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.relu(self.bn(x)).mean(dim=(2, 3)))


class NB201Cell(nn.Module):
    """A cell of 4 nodes: node i sums its incoming edge ops; `none` edges are left out (a node without
    inputs is zero, and ops reading it still run, as NAS-Bench-201 counts them)."""

    def __init__(self, edge_modules: dict[int, nn.Module]):
        super().__init__()
        self.edges = nn.ModuleDict({f"e{i}": m for i, m in edge_modules.items()})
        self._edge_ids = sorted(edge_modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        for i in self._edge_ids:
            to, frm = EDGES[i]
            source = nodes[frm] if nodes[frm] is not None else torch.zeros_like(x)
            y = self.edges[f"e{i}"](source)
            nodes[to] = y if nodes[to] is None else nodes[to] + y
        return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


class NB201Network(nn.Module):
    """NAS-Bench-201's CIFAR network: stem, 3 stages of cells with residual reduction blocks, classifier."""

    def __init__(self, stem: nn.Module, cells: list[nn.Module], classifier: nn.Module):
        super().__init__()
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(x)


# ------------------------------------------------------------------ builders
def build_op_module(op: OpSpec) -> nn.Module:
    """A randomly initialised module computing one operator; input NCHW of `op.input` (H, W, C)."""
    c_in, c_out = int(op.input[-1]), int(op.output[-1])
    if op.type in ("Conv", "Conv_1", "Conv_2"):
        return ConvBNAct(c_in, c_out, op.kernel or 1, op.stride, bn=bool(op.bn), bias=bool(op.bias), act=op.act)
    if op.type == "expanded_conv":
        return MBConv(c_in, c_out, op.expand, op.kernel, op.stride, act="h_swish" if op.hs else "relu",
                      se=bool(op.se), idskip=bool(op.idskip))
    if op.type == "AvgPool2D":
        return GlobalAvgPool()
    if op.type == "Logits":
        return Classifier(c_in, c_out)
    if op.type == "nb201_stem":
        return ConvBNAct(c_in, c_out, op.kernel, op.stride)
    if op.type in ("nb201_nor_conv_1x1", "nb201_nor_conv_3x3"):
        return ReLUConvBN(c_in, c_out, op.kernel, op.stride)
    if op.type == "nb201_skip_connect":
        return nn.Identity()
    if op.type == "nb201_avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op.type == "nb201_resblock":
        return NB201ResBlock(c_in, c_out, op.stride, odd_input=bool(op.input[0] % 2))
    if op.type == "nb201_classifier":
        return NB201Classifier(c_in, c_out)
    raise SupernetError(f"no torch module for operator type {op.type!r}")


def _build_nb201(space: NasBench201Space, arch: Any) -> NB201Network:
    arch = space.validate(arch)
    ops = space.operators(arch)
    stem, classifier = build_op_module(ops[0]), build_op_module(ops[-1])
    body = iter(ops[1:-1])
    cells: list[nn.Module] = []
    for stage in range(3):
        if stage > 0:
            cells.append(build_op_module(next(body)))
        for _ in range(space.cells_per_stage):
            edges = {i: build_op_module(next(body)) for i, o in enumerate(arch.ops) if OPS[o] != "none"}
            cells.append(NB201Cell(edges))
    return NB201Network(stem, cells, classifier)


def build_subnet(space: SearchSpace, arch: Any, seed: int = 0) -> nn.Module:
    """A randomly initialised plain network for `arch`, in eval mode.

    ofa-mbv3: `nn.Sequential` of `build_op_module(op)` over `space.operators(arch)`; nasbench201: the cell network.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(space, OFAMobileNetV3Space):
            model: nn.Module = nn.Sequential(*[build_op_module(op) for op in space.operators(arch)])
        elif isinstance(space, NasBench201Space):
            model = _build_nb201(space, arch)
        else:
            raise SupernetError(f"no network builder for space {getattr(space, 'name', space)!r}")
    return model.eval()
