"""The predicted-vs-measured scatter plot (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from hwnas.workspace import atomic_write_bytes

__all__ = ["scatter_plot", "scatter_png"]


def scatter_plot(y_true: np.ndarray, y_pred: np.ndarray, path: str | Path, title: str = "",
                 metrics: dict[str, float] | None = None) -> Path:
    """Write a PNG: measured (x) against predicted (y) latency, with the y=x line and a +-10% band."""
    atomic_write_bytes(path, scatter_png(y_true, y_pred, title, metrics))
    return Path(path)


def scatter_png(y_true: np.ndarray, y_pred: np.ndarray, title: str = "",
                metrics: dict[str, float] | None = None) -> bytes:
    """The PNG bytes of `scatter_plot` (to embed in a report)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    lo = float(min(np.min(y_true), np.min(y_pred))) * 0.95
    hi = float(max(np.max(y_true), np.max(y_pred))) * 1.05
    line = np.linspace(lo, hi, 50)
    ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15, label="+-10%")
    ax.plot(line, line, color="black", lw=0.8, label="predicted = measured")
    ax.scatter(y_true, y_pred, s=12, alpha=0.8, color="tab:blue", label=f"{len(y_true)} held-out subnets")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    if metrics:
        text = (f"MAPE {metrics['mape_pct']:.2f}%  RMSPE {metrics['rmspe_pct']:.2f}%\n"
                f"within 5% {metrics['within_5pct'] * 100:.0f}%  within 10% {metrics['within_10pct'] * 100:.0f}%\n"
                f"Spearman {metrics['spearman']:.3f}  Kendall {metrics['kendall']:.3f}")
        ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=8, family="monospace")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
