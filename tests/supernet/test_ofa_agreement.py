"""hwnas's extraction agrees with Once-for-All's own `get_active_subnet` on OFA-format checkpoints (w1.0, w1.2).

Needs OFA's reference code: `pip install --no-deps ofa==0.1.0.post202307202001`. OFA imports torchvision only
for its data loaders; a minimal stand-in module is put into sys.modules for this test only.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from supernet_helpers import perturb

from hwnas.supernet import load_checkpoint

N_ARCHS = 50
BATCH = 2


@pytest.fixture(scope="module")
def ofa_mbv3_class():
    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    datasets = types.ModuleType("torchvision.datasets")
    transforms.RandomResizedCrop = type("RandomResizedCrop", (), {})
    transforms.functional = functional
    tv.transforms, tv.datasets = transforms, datasets
    stand_ins = {"torchvision": tv, "torchvision.transforms": transforms,
                 "torchvision.transforms.functional": functional, "torchvision.datasets": datasets}
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
    except ImportError as exc:
        pytest.fail(f"OFA's reference code is needed: pip install --no-deps ofa==0.1.0.post202307202001 ({exc})")
    yield OFAMobileNetV3
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


@pytest.mark.parametrize("width_mult", [1.0, 1.2])
def test_extract_matches_ofa_get_active_subnet(ofa_mbv3_class, tmp_path, width_mult):
    torch.manual_seed(0)
    ofa_net = ofa_mbv3_class(n_classes=1000, dropout_rate=0, width_mult=width_mult, ks_list=[3, 5, 7],
                             expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    perturb(ofa_net, seed=int(width_mult * 10)).eval()
    path = tmp_path / f"ofa_mbv3_d234_e346_k357_w{width_mult}.pth"
    torch.save({"state_dict": ofa_net.state_dict()}, path)

    supernet = load_checkpoint(path)  # the space (w1.0 or w1.2) is recognised from the weights
    space = supernet.space
    assert space.width_mult == width_mult
    resolutions = (min(space.resolutions), max(space.resolutions))
    g = torch.Generator().manual_seed(1)
    inputs = {r: torch.randn(BATCH, 3, r, r, generator=g) for r in resolutions}
    worst, outputs = 0.0, []
    for arch in space.sample(np.random.default_rng(int(width_mult * 10)), N_ARCHS):
        d = arch.to_dict()
        ofa_net.set_active_subnet(ks=d["ks"], e=d["e"], d=d["d"])
        reference = ofa_net.get_active_subnet(preserve_weight=True).eval()
        ours = supernet.extract(arch)
        with torch.no_grad():
            for r in resolutions:
                expected, got = reference(inputs[r]), ours(inputs[r])
                assert got.shape == expected.shape == (BATCH, 1000)
                worst = max(worst, float((got - expected).abs().max()))
                outputs.append(expected)
    assert worst <= 1e-5, f"largest difference to OFA's subnet: {worst:.3g}"
    # the comparison is meaningful: outputs are far from constant and differ between archs
    stacked = torch.stack(outputs)
    assert float(stacked.std()) > 1e-2
    assert float((stacked[0] - stacked[2]).abs().max()) > 1e-3


def test_legacy_ofa_key_names_load(ofa_mbv3_class, tmp_path):
    torch.manual_seed(0)
    ofa_net = perturb(ofa_mbv3_class(n_classes=1000, dropout_rate=0, width_mult=1.0, ks_list=[3, 5, 7],
                                     expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])).eval()
    legacy = {}
    for key, value in ofa_net.state_dict().items():  # the spellings of OFA's published files
        key = key.replace("blocks.1.conv.", "blocks.1.mobile_inverted_conv.")
        key = key.replace(".bn.bn.", ".bn.").replace(".conv.conv.weight", ".conv.weight")
        key = key.replace("classifier.linear.", "classifier.linear.linear.")
        legacy[key] = value
    assert any(".mobile_inverted_conv." in k for k in legacy)
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": legacy}, path)
    supernet = load_checkpoint(path)
    arch = supernet.space.sample(np.random.default_rng(3), 1)[0]
    d = arch.to_dict()
    ofa_net.set_active_subnet(ks=d["ks"], e=d["e"], d=d["d"])
    x = torch.randn(1, 3, arch.r, arch.r)
    with torch.no_grad():
        assert torch.allclose(supernet.extract(arch)(x), ofa_net.get_active_subnet().eval()(x), atol=1e-5)
