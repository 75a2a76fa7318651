"""Fixtures for the supernet tests: one torch thread (the CI machine has 2 shared cores), small spaces,
supernets with non-trivial weights, a tiny real-MNIST dataset file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from supernet_helpers import perturb

from hwnas.space import create
from hwnas.supernet import create_supernet

SMALL_WIDTHS = (8, 8, 12, 16, 24, 32, 48, 144, 192)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def small_space():
    return create("ofa-mbv3", base_widths=SMALL_WIDTHS, resolutions=(32, 40, 48), n_classes=10)


@pytest.fixture()
def small_supernet(small_space):
    torch.manual_seed(0)
    return perturb(create_supernet(small_space)).eval()


@pytest.fixture()
def mos_supernet(small_space):
    torch.manual_seed(1)
    net = create_supernet(small_space, mos_experts=3).eval()
    with torch.no_grad():  # non-uniform routers, so the mixture depends on the arch
        for layer in net.mos_layers():
            torch.nn.init.normal_(layer.router[2].weight, std=1.0)
    return perturb(net, seed=1)


@pytest.fixture(scope="session")
def mnist_npz(tmp_path_factory):
    """600 real MNIST digits (uint8) as a .npz dataset."""
    from hwnas.data import load_dataset

    ds = load_dataset("mnist5k")
    idx = np.arange(0, 5000, 5000 // 600)[:600]
    pixels = np.round((ds.x[idx, 0] * 0.5 + 0.5) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "mnist600.npz"
    np.savez(path, x=pixels, y=ds.y[idx])
    return path
