"""How well the loop's surrogates predicted what was then measured: per batch, the rank correlation and the
interval coverage of the predictions made when the archs were proposed, and from them how much of the next
batch to spend on exploration instead of on the surrogates' picks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["BatchDiagnostics", "SurrogateMonitor", "Z_INTERVAL"]

Z_INTERVAL = 1.2816  # half-width of a central 80% Gaussian interval, in standard deviations


@dataclass
class BatchDiagnostics:
    """One batch of the accelerated loop, as written to the run folder's diagnostics.jsonl.

    `rank_corr[name]` is the Spearman correlation between the predictions made at proposal time and the measured
    values over the last `window` proposals (None before there are enough); `coverage[name]` the share of those
    measured values inside the predictions' 80% interval (0.8 when calibrated; far below: overconfident).
    `trust` is the smallest rank correlation over the expensive objectives (clipped to [0, 1]); `picks` counts
    the batch's archs by where they came from ("surrogate": Thompson sampling on the surrogates, "explore":
    NSGA-II offspring of the validated archs and spread samples, "refine": one-edge neighbours of the validated
    front where the front is still uncertain); `models[name]` which model the surrogate chose at this fit, for
    surrogates that choose ("ensemble" or "lookup table" for a measured latency, `SelectedByOutOfBag`)."""

    round: int
    evals: int
    rank_corr: dict[str, float | None]
    coverage: dict[str, float | None]
    trust: float | None
    picks: dict[str, int] = field(default_factory=dict)
    noise_std: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("rank_corr", "coverage", "noise_std"):
            out[key] = {k: (None if v is None else round(float(v), 4)) for k, v in out[key].items()}
        out["trust"] = None if self.trust is None else round(float(self.trust), 4)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchDiagnostics:
        return cls(int(data["round"]), int(data["evals"]), dict(data.get("rank_corr") or {}),
                   dict(data.get("coverage") or {}), data.get("trust"), dict(data.get("picks") or {}),
                   dict(data.get("noise_std") or {}), dict(data.get("models") or {}))


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho (average ranks for ties); None where either side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class SurrogateMonitor:
    """Pairs the surrogates' predictions at proposal time with the values later measured.

    `propose(keys, means, stds)` stores, per expensive objective, the mean and the predictive standard deviation
    (model spread and measurement noise) for the archs about to be evaluated; `observe(records)` pairs them
    with the measured values. Rank correlation and coverage are taken over the last `window` pairs: one batch
    of 5 is too few to rank. The exploration share of the next batch rises linearly from 0 at a rank
    correlation of `trust[1]` to `max_explore` at `trust[0]` and below; intervals that cover less than half
    of the measured values (overconfident) add `overconfident_explore` to it."""

    objectives: list[str]
    window: int = 30
    min_pairs: int = 10
    trust: tuple[float, float] = (0.1, 0.4)  # (low, high) rank correlation: all exploration below, none above
    max_explore: float = 0.6
    overconfident_explore: float = 0.2
    pairs: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)  # (mean, std, measured)
    _pending: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.objectives = list(self.objectives)
        for n in self.objectives:
            self.pairs.setdefault(n, [])

    def propose(self, keys: Sequence[str], means: dict[str, np.ndarray], stds: dict[str, np.ndarray]) -> None:
        for i, key in enumerate(keys):
            self._pending[key] = {n: (float(means[n][i]), float(stds[n][i])) for n in self.objectives}

    def observe(self, records: Sequence[Any]) -> None:
        """Pair each record (with `.key` and `.values`) proposed with predictions with its measured values."""
        for rec in records:
            pred = self._pending.pop(rec.key, None)
            if pred is None:
                continue
            for n in self.objectives:
                mean, std = pred[n]
                self.pairs[n].append((mean, std, float(rec.values[n])))

    def _recent(self, name: str) -> np.ndarray | None:
        pairs = self.pairs[name][-self.window:]
        return np.array(pairs) if len(pairs) >= self.min_pairs else None

    def rank_corr(self, name: str) -> float | None:
        recent = self._recent(name)
        return None if recent is None else _spearman(recent[:, 0], recent[:, 2])

    def coverage(self, name: str) -> float | None:
        recent = self._recent(name)
        if recent is None:
            return None
        return float(np.mean(np.abs(recent[:, 2] - recent[:, 0]) <= Z_INTERVAL * recent[:, 1]))

    def trust_level(self) -> float | None:
        """The smallest rank correlation over the objectives, clipped to [0, 1]; None until known for all
        (a constant window counts as uninformative, 0)."""
        known = [self._recent(n) is not None for n in self.objectives]
        if not self.objectives or not all(known):
            return None
        return float(np.clip(min(self.rank_corr(n) or 0.0 for n in self.objectives), 0.0, 1.0))

    def explore_share(self) -> float:
        """Share of the next batch to spend on exploration: 0 while the surrogates rank well (or before
        enough is known to tell)."""
        trust = self.trust_level()
        if trust is None:
            return 0.0
        low, high = self.trust
        share = self.max_explore * float(np.clip((high - trust) / max(high - low, 1e-9), 0.0, 1.0))
        covered = [self.coverage(n) for n in self.objectives]
        if any(c is not None and c < 0.5 for c in covered):
            share += self.overconfident_explore
        return min(share, self.max_explore)

    def diagnostics(self, round_: int, evals: int, picks: dict[str, int],
                    noise_std: dict[str, float] | None = None,
                    models: dict[str, str] | None = None) -> BatchDiagnostics:
        return BatchDiagnostics(round_, evals, {n: self.rank_corr(n) for n in self.objectives},
                                {n: self.coverage(n) for n in self.objectives}, self.trust_level(), dict(picks),
                                dict(noise_std or {}), dict(models or {}))
