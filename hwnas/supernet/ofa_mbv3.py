"""The elastic Once-for-All MobileNetV3 supernet for the `ofa-mbv3` space: `set_active(arch)`, a forward pass of
the active subnet, and `extract(arch)`: a plain `nn.Sequential` (as `build_subnet`) holding copies of the sliced
and transformed weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from hwnas.errors import SupernetError
from hwnas.space import OFAArch, OFAMobileNetV3Space
from hwnas.space.ofa_mbv3 import STAGE_ACTS, STAGE_SE, STAGE_STRIDES
from hwnas.supernet.base import Supernet
from hwnas.supernet.blocks import Classifier, ConvBNAct, GlobalAvgPool, MBConv, build_op_module
from hwnas.supernet.elastic import ElasticConv, ElasticMBConv

__all__ = ["OFAMobileNetV3Supernet", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """A block (`conv`) with an optional identity shortcut, as OFA's ResidualBlock."""

    def __init__(self, conv: nn.Module, idskip: bool):
        super().__init__()
        self.conv = conv
        self.idskip = bool(idskip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + x if self.idskip else y


class OFAMobileNetV3Supernet(Supernet):
    """OFA's `OFAMobileNetV3` (same layer names and arithmetic), optionally with Mixture-of-Supernets 1x1 convs."""

    def __init__(self, space: OFAMobileNetV3Space, mos_experts: int = 0, router_hidden: int = 16):
        super().__init__()
        if not isinstance(space, OFAMobileNetV3Space):
            raise SupernetError(f"OFAMobileNetV3Supernet needs an ofa-mbv3 space, got {space!r}")
        if mos_experts < 0 or mos_experts == 1:
            raise SupernetError(f"mos_experts must be 0 (off) or at least 2, got {mos_experts}")
        self.space = space
        self.options = {"mos_experts": int(mos_experts), "router_hidden": int(router_hidden)}
        self.meta: dict[str, Any] = {}
        router_in = space.encode([space.sample(_rng(0), 1)[0]]).shape[1] if mos_experts else 0
        c0, c1 = space.first_conv_width, space.first_block_width
        self.first_conv = ConvBNAct(space.in_channels, c0, 3, 2, act="h_swish")
        first = MBConv(c0, c1, c0, 3, STAGE_STRIDES[0], act=STAGE_ACTS[0], se=STAGE_SE[0])
        blocks: list[nn.Module] = [ResidualBlock(first, c0 == c1)]
        in_c = c1
        for stage in range(space.n_stages):
            out_c = space.stage_widths[stage]
            for j in range(space.max_depth):
                stride = STAGE_STRIDES[stage + 1] if j == 0 else 1
                conv = ElasticMBConv(in_c, out_c, space.ks_list, space.expand_list, stride, STAGE_ACTS[stage + 1],
                                     STAGE_SE[stage + 1], mos_experts, router_in, router_hidden)
                blocks.append(ResidualBlock(conv, stride == 1 and in_c == out_c))
                in_c = out_c
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = ConvBNAct(in_c, space.final_expand_width, 1, act="h_swish")
        self.global_avg_pool = GlobalAvgPool()
        self.feature_mix_layer = ConvBNAct(space.final_expand_width, space.last_channel, 1, bn=False, act="h_swish")
        self.classifier = Classifier(space.last_channel, space.n_classes)
        self.active: OFAArch = self.set_active(space.make([max(space.ks_list)] * space.n_slots,
                                                          [max(space.expand_list)] * space.n_slots,
                                                          [space.max_depth] * space.n_stages,
                                                          max(space.resolutions)))

    # ------------------------------------------------------------------ arch control
    def elastic_blocks(self) -> list[ElasticMBConv]:
        return [b.conv for b in self.blocks[1:]]

    def mos_layers(self) -> list[ElasticConv]:
        return [m for m in self.modules() if isinstance(m, ElasticConv) and m.n_experts]

    def set_active(self, arch: Any) -> OFAArch:
        """Make `arch` the subnet that forward() runs (inputs must already be at `arch.r`)."""
        arch = self.validate(arch)
        for slot, block in enumerate(self.elastic_blocks()):
            block.active_kernel, block.active_expand = arch.ks[slot], arch.e[slot]
        if self.options["mos_experts"]:
            encoding = torch.from_numpy(self.space.encode([arch])[0])
            for layer in self.mos_layers():
                layer.encoding = encoding
        self.active = arch
        return arch

    def largest(self) -> OFAArch:
        s = self.space
        return s.make([max(s.ks_list)] * s.n_slots, [max(s.expand_list)] * s.n_slots, [s.max_depth] * s.n_stages,
                      max(s.resolutions))

    def smallest(self) -> OFAArch:
        s = self.space
        return s.make([min(s.ks_list)] * s.n_slots, [min(s.expand_list)] * s.n_slots, [min(s.depth_list)] * s.n_stages,
                      min(s.resolutions))

    def active_block_indices(self, arch: OFAArch | None = None) -> list[int]:
        arch = self.active if arch is None else arch
        return [1 + stage * self.space.max_depth + j for stage, d in enumerate(arch.d) for j in range(d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks[0](self.first_conv(x))
        for i in self.active_block_indices():
            x = self.blocks[i](x)
        x = self.feature_mix_layer(self.global_avg_pool(self.final_expand_layer(x)))
        return self.classifier(x)

    # ------------------------------------------------------------------ extraction
    @torch.no_grad()
    def extract(self, arch: Any) -> nn.Sequential:
        """A plain network for `arch` (the structure of `build_subnet`) with copies of the active weights."""
        arch = self.validate(arch)
        previous = self.active
        self.set_active(arch)
        try:
            ops = self.space.operators(arch)
            layers: list[nn.Module] = [copy.deepcopy(self.first_conv)]
            first = copy.deepcopy(self.blocks[0].conv)
            first.idskip = self.blocks[0].idskip
            layers.append(first)
            for op, index in zip(ops[2:-4], self.active_block_indices(arch), strict=True):
                layers.append(self._extract_block(self.blocks[index], op))
            layers += [copy.deepcopy(self.final_expand_layer), GlobalAvgPool(),
                       copy.deepcopy(self.feature_mix_layer), copy.deepcopy(self.classifier)]
        finally:
            self.set_active(previous)
        model = nn.Sequential(*layers)
        return model.eval()

    def _extract_block(self, block: ResidualBlock, op: Any) -> MBConv:
        elastic: ElasticMBConv = block.conv
        module = build_op_module(op)
        if not isinstance(module, MBConv) or module.idskip != block.idskip:
            raise SupernetError(f"operator {op.key} does not fit supernet block layout")
        mid, in_c, out_c = op.expand, elastic.in_channels, elastic.out_channels
        state: dict[str, torch.Tensor] = {}
        if module.inverted_bottleneck is not None:
            ib = elastic.inverted_bottleneck
            state["inverted_bottleneck.conv.weight"] = ib.conv.active_weight(mid, in_c)
            state.update({f"inverted_bottleneck.bn.{k}": v for k, v in ib.bn.active_state(mid).items()})
        dw = elastic.depth_conv
        state["depth_conv.conv.weight"] = dw.conv.active_weight(mid, op.kernel)
        state.update({f"depth_conv.bn.{k}": v for k, v in dw.bn.active_state(mid).items()})
        if module.se is not None:
            state.update({f"se.{k}": v for k, v in dw.se.active_state(mid).items()})
        pl = elastic.point_linear
        state["point_linear.conv.weight"] = pl.conv.active_weight(out_c, mid)
        state.update({f"point_linear.bn.{k}": v for k, v in pl.bn.active_state(out_c).items()})
        module.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
        return module


def _rng(seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed)
