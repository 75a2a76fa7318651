"""PyTorch weight-sharing supernets: plain layers per operator, the elastic OFA MobileNetV3 supernet, OFA and
hwnas checkpoints, subnet extraction, batch-norm recalibration and evaluation.

`create_supernet(space)`, `load_checkpoint(path)`, `supernet.extract(arch)`, `evaluate(supernet, arch, data)`.
"""

from __future__ import annotations

from pathlib import Path

from hwnas.supernet.base import Supernet
from hwnas.supernet.blocks import build_op_module, build_subnet
from hwnas.supernet.checkpoint import create_supernet, load_checkpoint, save_checkpoint
from hwnas.supernet.evaluate import evaluate, recalibrate_bn
from hwnas.supernet.ofa_mbv3 import OFAMobileNetV3Supernet

__all__ = [
    "Supernet",
    "OFAMobileNetV3Supernet",
    "build_op_module",
    "build_subnet",
    "create_supernet",
    "load_checkpoint",
    "save_checkpoint",
    "recalibrate_bn",
    "evaluate",
    "demo_checkpoint_path",
]

DEMO_CHECKPOINT = "demo_mbv3_mnist.pt"


def demo_checkpoint_path() -> Path:
    """The demo supernet shipped with hwnas (ofa-mbv3, small widths, trained on mnist5k)."""
    from hwnas import DEMO_SUPERNET

    return DEMO_SUPERNET
