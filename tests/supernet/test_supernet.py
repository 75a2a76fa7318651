"""The elastic supernet: extraction equals the supernet's own forward, has build_subnet's structure, survives
save/load, rejects foreign archs and checkpoints clearly; channel re-ordering keeps the largest subnet's function;
BN recalibration and evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.errors import CheckpointError, SupernetError
from hwnas.space import create
from hwnas.supernet import build_subnet, create_supernet, evaluate, load_checkpoint, recalibrate_bn
from hwnas.supernet.reorder import block_importance, reorder_channels


def _forward(supernet, arch, x):
    supernet.set_active(arch)
    with torch.no_grad():
        return supernet(x)


@pytest.mark.parametrize("fixture", ["small_supernet", "mos_supernet"])
def test_extract_matches_the_supernet_forward(request, fixture):
    supernet = request.getfixturevalue(fixture)
    space = supernet.space
    archs = [supernet.largest(), supernet.smallest(), *space.sample(np.random.default_rng(0), 12)]
    outputs = []
    for arch in archs:
        x = torch.randn(3, 3, arch.r, arch.r)
        expected = _forward(supernet, arch, x)
        with torch.no_grad():
            got = supernet.extract(arch)(x)
        assert got.shape == (3, 10)
        assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())
        outputs.append(expected[0])
    assert float(torch.stack(outputs).std(0).max()) > 1e-3  # archs compute different functions


def test_extracted_network_has_build_subnet_structure(small_supernet, small_space):
    for arch in small_space.sample(np.random.default_rng(1), 5):
        extracted = small_supernet.extract(arch).state_dict()
        built = build_subnet(small_space, arch).state_dict()
        assert {k: tuple(v.shape) for k, v in extracted.items()} == {k: tuple(v.shape) for k, v in built.items()}
        assert not any(isinstance(m, torch.nn.Parameter) and m.grad is not None
                       for m in small_supernet.extract(arch).parameters())


def test_extracted_weights_are_copies(small_supernet, small_space):
    arch = small_supernet.largest()
    model = small_supernet.extract(arch)
    with torch.no_grad():
        model[0].conv.weight.add_(1.0)
    assert not torch.equal(model[0].conv.weight, small_supernet.first_conv.conv.weight)


def test_mos_subnet_is_a_plain_dense_network_whose_weights_depend_on_the_arch(mos_supernet, small_space):
    a, b = small_space.sample(np.random.default_rng(2), 2)
    b = small_space.make(a.ks, a.e, a.d, b.r) if a.r != b.r else small_space.mutate(a, np.random.default_rng(3))
    model = mos_supernet.extract(a)
    assert not any("experts" in k or "router" in k for k in model.state_dict())
    # the same block under two archs gets different mixed weights
    w_a = mos_supernet.extract(a)[2].point_linear.conv.weight
    w_b = mos_supernet.extract(b)[2].point_linear.conv.weight
    assert w_a.shape == w_b.shape and not torch.allclose(w_a, w_b)


def test_arch_outside_the_space_is_a_supernet_error(small_supernet):
    with pytest.raises(SupernetError, match="outside this supernet's space.*'r'"):
        small_supernet.set_active({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 224})
    with pytest.raises(SupernetError, match="outside"):
        small_supernet.extract({"ks": [4] * 20, "e": [3] * 20, "d": [2] * 5, "r": 32})


def test_save_and_load_round_trip(small_supernet, mos_supernet, tmp_path):
    for net in (small_supernet, mos_supernet):
        path = tmp_path / "net.pt"
        net.save(path, meta={"note": "test"})
        loaded = load_checkpoint(path)
        assert loaded.space.config() == net.space.config() and loaded.options == net.options
        assert loaded.meta["note"] == "test"
        arch = net.space.sample(np.random.default_rng(4), 1)[0]
        x = torch.randn(2, 3, arch.r, arch.r)
        assert torch.equal(_forward(loaded, arch, x), _forward(net, arch, x))
        assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_checkpoint_of_another_space_names_the_difference(small_supernet, tmp_path):
    path = tmp_path / "net.pt"
    small_supernet.save(path)
    other = create("ofa-mbv3", base_widths=(8, 8, 12, 16, 24, 32, 48, 144, 192), resolutions=(32, 40, 48),
                   n_classes=10, ks_list=(3, 5))
    with pytest.raises(CheckpointError, match="another space: ks_list"):
        load_checkpoint(path, space=other)


def test_ofa_checkpoint_that_does_not_fit_names_missing_keys_and_shapes(small_supernet, small_space, tmp_path):
    state = dict(small_supernet.state_dict())
    del state["blocks.3.conv.point_linear.conv.conv.weight"]
    state["blocks.4.conv.depth_conv.conv.conv.weight"] = torch.zeros(5, 1, 7, 7)
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "ofa.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, space=small_space)
    message = str(info.value)
    assert "1 missing keys: blocks.3.conv.point_linear.conv.conv.weight" in message
    assert "1 unexpected keys: extra.weight" in message
    assert "blocks.4.conv.depth_conv.conv.conv.weight (5, 1, 7, 7) (expected (" in message


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_corrupt_or_missing_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")


def test_nasbench201_has_no_supernet():
    with pytest.raises(SupernetError, match="build_subnet"):
        create_supernet(create("nasbench201"))


def test_reorder_keeps_the_largest_subnet_and_sorts_by_importance(small_supernet):
    net = small_supernet
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    arch = net.largest()
    x = torch.randn(2, 3, arch.r, arch.r)
    net.train()
    net.set_active(arch)
    net(x).square().mean().backward()
    optimizer.step()  # creates momentum buffers
    net.eval()
    before = _forward(net, arch, x)
    block = net.elastic_blocks()[0]
    param = block.point_linear.conv.conv.weight
    momentum_before = optimizer.state[param]["momentum_buffer"].clone()
    importance_before = block_importance(block)
    reorder_channels(net.elastic_blocks(), optimizer)
    after = _forward(net, arch, x)
    assert torch.allclose(before, after, atol=1e-5)
    importance = block_importance(block)
    assert torch.all(importance[:-1] >= importance[1:])
    order = torch.argsort(importance_before, descending=True)
    assert torch.equal(optimizer.state[param]["momentum_buffer"], momentum_before[:, order])


def test_recalibrate_bn_estimates_statistics_from_data(small_supernet):
    arch = small_supernet.smallest()
    model = small_supernet.extract(arch)
    data = [torch.randn(16, 3, arch.r, arch.r) * 2 + 1 for _ in range(3)]
    recalibrate_bn(model, data, batches=3)
    assert not model.training
    first_bn = model[0].bn
    with torch.no_grad():
        pre = torch.cat([model[0].conv(d) for d in data])
    assert torch.allclose(first_bn.running_mean, pre.mean(dim=(0, 2, 3)), atol=1e-4)
    with pytest.raises(SupernetError, match="no batches"):
        recalibrate_bn(model, [], batches=2)


def test_evaluate_reports_top1_with_progress(small_supernet, mnist_npz):
    from hwnas.data import load_dataset

    data = load_dataset(mnist_npz, split="val")
    calls = []
    top1 = evaluate(small_supernet, small_supernet.smallest(), data, batch_size=50,
                    progress=lambda done, total: calls.append((done, total)))
    assert 0.0 <= top1 <= 100.0
    assert calls[-1][0] == calls[-1][1] == -(-len(data) // 50)
