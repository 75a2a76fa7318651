"""hwnas: hardware-aware deployment of weight-sharing supernets.

Profile target devices, learn latency predictors, search Pareto fronts of subnets and emit
validated TFLite/ONNX models. See README.md and DESIGN.md.
"""

__version__ = "0.1.0"

from pathlib import Path

from hwnas.errors import HwnasError

# the demo supernet shipped with hwnas (ofa-mbv3, small widths, trained on mnist5k); named here, where finding it
# imports no torch (`hwnas.supernet.demo_checkpoint_path()` returns it)
DEMO_SUPERNET = Path(__file__).resolve().parent / "assets" / "demo_mbv3_mnist.pt"

__all__ = ["DEMO_SUPERNET", "HwnasError", "__version__"]
