"""Plain layers: every operator a space emits builds and runs with its declared shapes, and the spaces' FLOPs
and parameter counts agree with a count on the built networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hwnas.errors import SupernetError
from hwnas.space import OpSpec, create
from hwnas.supernet import build_op_module, build_subnet
from hwnas.supernet.blocks import MBConv

SPACES = {
    "ofa-mbv3-w1.0": ("ofa-mbv3", {}),
    "ofa-mbv3-w1.2": ("ofa-mbv3", {"width_mult": 1.2}),
    "ofa-mbv3-small": ("ofa-mbv3", {"base_widths": (8, 8, 12, 16, 24, 32, 48, 144, 192),
                                    "resolutions": (32, 40, 48), "n_classes": 10}),
    "nasbench201": ("nasbench201", {}),
}


def _input(op: OpSpec) -> torch.Tensor:
    h, w, c = op.input
    return torch.randn(1, c, h, w)


def _count(space, arch) -> tuple[float, float]:
    """(MACs in millions, params in millions) of the built network, counted by torch's FlopCounterMode
    (2 FLOPs per multiply-accumulate of conv/linear). Built on the meta device, then given zeroed memory."""
    with torch.device("meta"):
        model = build_subnet(space, arch)
    model = model.to_empty(device="cpu")
    for value in model.state_dict().values():
        value.zero_()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(space.input_shape(arch)))
    return counter.get_total_flops() / 2 / 1e6, sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize("key", ["ofa-mbv3-small", "nasbench201"])
def test_every_operator_builds_and_produces_its_output_shape(key):
    name, options = SPACES[key]
    space = create(name, **options)
    ops = space.all_operators()
    assert {op.type for op in ops} >= ({"Conv", "expanded_conv", "Conv_1", "AvgPool2D", "Conv_2", "Logits"}
                                       if name == "ofa-mbv3" else {"nb201_stem", "nb201_resblock",
                                                                   "nb201_classifier", "nb201_nor_conv_3x3"})
    for op in ops:
        module = build_op_module(op).eval()
        with torch.no_grad():
            out = module(_input(op))
        expected = (1, op.output[2], op.output[0], op.output[1]) if len(op.output) == 3 else (1, op.output[0])
        assert tuple(out.shape) == expected, op.key


def test_expanded_conv_layout_follows_the_opspec():
    op = OpSpec("expanded_conv", (14, 14, 40), (14, 14, 40), expand=240, kernel=5, stride=1, idskip=1, se=1, hs=1)
    module = build_op_module(op)
    assert isinstance(module, MBConv) and module.idskip and module.se is not None
    assert module.depth_conv.conv.kernel_size == (5, 5) and module.depth_conv.conv.groups == 240
    assert isinstance(module.depth_conv.act, torch.nn.Hardswish)
    assert module.se.reduce.out_channels == 64  # make_divisible(240 // 4)
    first = build_op_module(OpSpec("expanded_conv", (56, 56, 16), (56, 56, 16), expand=16, kernel=3, idskip=1))
    assert first.inverted_bottleneck is None and isinstance(first.depth_conv.act, torch.nn.ReLU)


def test_unknown_operator_type_is_an_error():
    with pytest.raises(SupernetError, match="no torch module"):
        build_op_module(OpSpec("Gelu", (1, 1, 1), (1, 1, 1)))


# 100 random archs where a count is cheap; OFA's full-size spaces (same formulas, 224 px) get a few each
@pytest.mark.parametrize("key, n_archs", [("ofa-mbv3-small", 100), ("nasbench201", 100), ("ofa-mbv3-w1.0", 4),
                                          ("ofa-mbv3-w1.2", 4)])
def test_space_flops_and_params_agree_with_the_built_model(key, n_archs):
    name, options = SPACES[key]
    space = create(name, **options)
    for arch in space.sample(np.random.default_rng(7), n_archs):
        flops_m, params_m = _count(space, arch)
        assert flops_m == pytest.approx(space.flops(arch), rel=0.01), arch
        assert params_m == pytest.approx(space.params(arch), rel=0.01), arch


def test_build_subnet_is_seeded_and_in_eval_mode(small_space):
    arch = small_space.sample(np.random.default_rng(0), 1)[0]
    a, b, c = (build_subnet(small_space, arch, seed=s) for s in (3, 3, 4))
    assert not a.training
    x = torch.randn(2, 3, arch.r, arch.r)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a[0].conv.weight, c[0].conv.weight)


def test_nasbench201_network_runs_and_none_edges_have_no_module():
    space = create("nasbench201")
    arch = space.validate("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    model = build_subnet(space, arch)
    cell = model.cells[0]
    assert set(cell.edges) == {"e0", "e2", "e3", "e5"}
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
