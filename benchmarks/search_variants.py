"""Stress variants of the NAS-Bench-201 device latency tables, built from the shared data, for the search
benchmarks: devices the loop was never tuned on, on which a surrogate can mislead.

- `raspi4-noisy`: the Raspberry Pi 4's latency times lognormal noise (sigma 0.15, one draw per arch): a device
  whose single measurement is off by 15% (one standard deviation), as a busy or throttling device is.
- `gpu-flat`: a GPU at batch 1, where every kernel costs about the same and launches, not FLOPs, set latency:
  each live op costs 0.25-0.33 units whatever its FLOPs, on top of a fixed 2.0 units, times the Pi 4's own
  measurement noise (its residual off a per-op fit) and lognormal noise (sigma 0.10).
- `dsp-pool`: an int8 DSP that runs convolutions fast but falls back to the CPU for pooling and for the
  requantised adds of skips: pooling costs 1.5 units, a skip 1.0, a 3x3 convolution 0.2, a 1x1 0.1, on top of
  0.5, times the Pi 4's measurement noise.

Each is a column `cifar10_<variant>_latency_ms` (a table of fixed values: a search measures each arch once, and
the exhaustive front of that column is the true front), scaled to the Pi 4's median.

The fixed draws make each noisy arch's noise part of the truth: the true front then holds archs whose draw
happened to be low, which a re-measurement would not reproduce. `MEASURED_NOISE` names the other reading: the
noise-free column (the truth a search is scored on) and the noise each measurement adds, drawn afresh per
evaluation (`search_robustness.py --noise measured`). `gpu-flat-truth` is gpu-flat before its lognormal draw.
"""

from __future__ import annotations

import numpy as np

from hwnas.search.tabular import Table

__all__ = ["MEASURED_NOISE", "STRESS_VARIANTS", "add_stress_variants"]

STRESS_VARIANTS = ("raspi4-noisy", "gpu-flat", "dsp-pool")
# variant -> (the column without the variant's lognormal draw, that draw's sigma)
MEASURED_NOISE = {"raspi4-noisy": ("raspi4", 0.15), "gpu-flat": ("gpu-flat-truth", 0.10)}
_COSTS = {  # per live op: none, skip, conv 1x1, conv 3x3, avg pool 3x3
    "gpu-flat": (0.0, 0.25, 0.3, 0.33, 0.3),
    "dsp-pool": (0.0, 1.0, 0.1, 0.2, 1.5),
}
_BASE = {"gpu-flat": 2.0, "dsp-pool": 0.5}
_EXTRA_NOISE = {"gpu-flat": 0.10, "dsp-pool": 0.0}


def _live_ops(table: Table) -> np.ndarray:
    """(n, 5) counts of each op among each arch's live edges (its effective form)."""
    counts = np.zeros((len(table), 5))
    for i, a in enumerate(table.archs):
        for op in table.space.effective(a).ops:
            counts[i, op] += 1
    return counts


def _log_residual(table: Table, column: str) -> np.ndarray:
    """Each arch's log latency minus a linear fit of it on the effective one-hot: what a per-op model cannot
    explain, the device's measurement noise (and interactions)."""
    from sklearn.linear_model import LinearRegression

    space = table.space
    X = space.encode([space.effective(a) for a in table.archs], "onehot")
    y = np.log(table.data[column])
    return y - LinearRegression().fit(X, y).predict(X)


def add_stress_variants(table: Table, seed: int = 2026) -> dict[str, float]:
    """Add each variant's column to `table.data`; returns each one's Spearman correlation with FLOPs."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    pi4 = table.data["cifar10_raspi4_latency_ms"]
    out = {}
    noisy = pi4 * rng.lognormal(0.0, 0.15, len(table))
    columns = {"raspi4-noisy": noisy}
    counts = _live_ops(table)
    residual = _log_residual(table, "cifar10_raspi4_latency_ms")
    for name, costs in _COSTS.items():
        quiet = (_BASE[name] + counts @ np.array(costs)) * np.exp(residual)
        lat = quiet * rng.lognormal(0.0, _EXTRA_NOISE[name], len(table)) if _EXTRA_NOISE[name] else quiet
        scale = np.median(pi4) / np.median(lat)
        columns[name] = lat * scale
        if _EXTRA_NOISE[name]:
            table.data[f"cifar10_{name}-truth_latency_ms"] = quiet * scale
    flops = np.array([table.space.flops(table.space.effective(a)) for a in table.archs])
    for name, col in columns.items():
        table.data[f"cifar10_{name}_latency_ms"] = col
        out[name] = float(spearmanr(col, flops).statistic)
    out["raspi4"] = float(spearmanr(pi4, flops).statistic)
    return out
