"""The objectives a supernet search optimises: top-1 of a subnet (extract, recalibrate batch norms, evaluate:
expensive) and latency on a device from its fitted predictor (cheap)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hwnas.errors import DataError
from hwnas.objective import FunctionObjective, Objective

__all__ = ["SupernetAccuracy", "latency_name", "predicted_latency"]


def latency_name(device: str) -> str:
    """The objective (and front column) name of latency on `device`: `latency_ms[<device>]`."""
    return f"latency_ms[{device}]"


@dataclass(eq=False, repr=False)
class SupernetAccuracy(Objective):
    """Top-1 (%) of a subnet of `supernet` on `data`: extract, recalibrate batch norms, evaluate (expensive).
    `limit` caps the images evaluated; `calib_data` (default: `data`) feeds the batch-norm recalibration."""

    name: ClassVar[str] = "top1"
    direction: ClassVar[str] = "max"
    expensive: ClassVar[bool] = True
    unit: ClassVar[str] = "%"

    supernet: Any
    data: Any
    limit: int | None = None
    calib_data: Any = None
    calib_batches: int = 4
    batch_size: int = 250

    def __post_init__(self) -> None:
        if self.data is None or len(self.data) == 0:
            raise DataError("the evaluation dataset is empty; pass data with at least one labelled image")

    def evaluate(self, archs: Sequence[Any]) -> np.ndarray:
        from hwnas.supernet import evaluate

        return np.array([evaluate(self.supernet, a, self.data, limit=self.limit, calib_data=self.calib_data,
                                  calib_batches=self.calib_batches, batch_size=self.batch_size)
                         for a in archs], dtype=float)


def predicted_latency(predictor: Any, device: str) -> FunctionObjective:
    """Latency on `device` (ms) from its fitted predictor: a cheap objective."""
    return FunctionObjective(latency_name(device), lambda archs: predictor.predict(list(archs)), "min",
                             expensive=False, unit="ms")
