"""PyTorch weight-sharing supernets: plain layers per operator, elastic OFA MobileNetV3, extraction, training."""

from hwnas.supernet.blocks import build_op_module, build_subnet

__all__ = ["build_op_module", "build_subnet"]
