"""Fixtures for export tests: small real torch modules and small spaces (conversions are the slow part)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.space import create


class TinyClassifier(nn.Module):
    """Conv-BN-ReLU x2, global pool, linear: the shape of a real subnet, small enough to convert fast."""

    def __init__(self, channels: int = 3, width: int = 32, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1, groups=width, bias=False), nn.BatchNorm2d(width),
            nn.Hardswish(),
            nn.Conv2d(width, 2 * width, 1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class TwoHeads(nn.Module):
    """Two outputs of different shapes: the validator must compare both."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.conv(x))
        return features, self.fc(features.mean(dim=(2, 3)))


def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) * 0.2 - 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


@pytest.fixture
def tiny_model() -> TinyClassifier:
    torch.manual_seed(0)
    return _randomise_bn(TinyClassifier(), 0)


@pytest.fixture
def two_heads() -> TwoHeads:
    torch.manual_seed(1)
    return TwoHeads().eval()


@pytest.fixture
def calib() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32)


@pytest.fixture(scope="session")
def small_space():
    """An ofa-mbv3 space with small widths and resolutions: same code paths, quick conversions."""
    return create("ofa-mbv3", width_mult=0.5, resolutions=(32, 48), depth_list=(1, 2), n_classes=10)
