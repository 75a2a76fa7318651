"""hwnas: hardware-aware deployment of weight-sharing supernets.

Profile target devices, learn latency predictors, search Pareto fronts of subnets and emit
validated TFLite/ONNX models. See README.md and DESIGN.md.
"""

__version__ = "0.1.0"

from hwnas.errors import HwnasError

__all__ = ["HwnasError", "__version__"]
