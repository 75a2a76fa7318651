"""The held-out report of a fitted latency predictor: its error on measurements it did not learn from, and how
often its prediction intervals cover them. What `hwnas fit` prints and the benchmarks tabulate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.errors import PredictorError
from hwnas.predictors.base import Predictor
from hwnas.predictors.metrics import evaluate_predictions

__all__ = ["HeldOutReport", "held_out_report"]


@dataclass
class HeldOutReport:
    """Metrics on `n` held-out measurements (mape_pct, within_5pct, within_10pct, spearman, kendall, ...), the
    share inside the `coverage` interval, the interval's half-width in % (exp(q) - 1), and warnings."""

    n: int
    metrics: dict[str, float]
    coverage: float
    covered: float | None  # None: the predictor has no interval calibration
    halfwidth_pct: float | None  # inf: too few calibration residuals for this coverage
    warnings: list[str] = field(default_factory=list)
    interval_source: str | None = None  # what the interval was calibrated on (`conformal_["source"]`)

    def lines(self) -> list[str]:
        """Human-readable lines, the way `hwnas fit` prints them."""
        m = self.metrics
        out = [f"held-out: {self.n} subnets, MAPE {m['mape_pct']:.1f}%, within +-10% {m['within_10pct']:.1%}, "
               f"within +-5% {m['within_5pct']:.1%}, Spearman {m['spearman']:.3f}"]
        if self.covered is not None:
            width = "unbounded (too few samples)" if not np.isfinite(self.halfwidth_pct) else \
                f"+-{self.halfwidth_pct:.1f}%"
            source = f" (calibrated on {self.interval_source})" if self.interval_source else ""
            out.append(f"{self.coverage:.0%} interval {width}{source}: covers {self.covered:.1%} of held-out "
                       "subnets")
        out += [f"warning: {w}" for w in self.warnings]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "metrics": self.metrics, "coverage": self.coverage, "covered": self.covered,
                "halfwidth_pct": self.halfwidth_pct if self.halfwidth_pct is None or np.isfinite(self.halfwidth_pct)
                else None, "warnings": list(self.warnings), "interval_source": self.interval_source}


def held_out_report(predictor: Predictor, archs: Any, y_ms: Any, coverage: float = 0.95,
                    warnings: list[str] | None = None) -> HeldOutReport:
    """Evaluate `predictor` on held-out `archs` with measured `y_ms`; interval coverage if it has intervals."""
    y = np.asarray(y_ms, dtype=float)
    if y.size == 0:
        raise PredictorError("no held-out measurements to report on; measure more subnets than the predictor "
                             "is fitted on")
    pred = predictor.predict(archs)
    metrics = evaluate_predictions(y, pred)
    covered = halfwidth = source = None
    if predictor.__dict__.get("conformal_"):
        lo, hi = predictor.interval_from(pred, coverage)
        covered = float(np.mean((y >= lo) & (y <= hi)))
        halfwidth = float(np.expm1(predictor.interval_halfwidth(coverage)) * 100)
        source = predictor.conformal_.get("source")
    return HeldOutReport(int(y.size), metrics, coverage, covered, halfwidth, list(warnings or []), source)
