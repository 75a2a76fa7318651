"""Measurement you can check: each profiling session re-measures a few fixed reference subnets at its start,
middle and end; a session whose references moved beyond their run-to-run noise is flagged in the profile, and
sessions whose reference levels disagree are not mixed silently by `fit`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from hwnas.profiling.reference import reference_archs
from hwnas.profiling.store import StoredMeasurement
from hwnas.space import Arch, SearchSpace

__all__ = ["CHECK_PHASES", "DRIFT_FLOOR_PCT", "check_archs", "new_session_id", "session_summaries"]

CHECK_PHASES = ("start", "middle", "end")
N_CHECK = 3
DRIFT_FLOOR_PCT = 10.0  # below this no move is called drift, however quiet the runs were
NOISE_FACTOR = 3.0  # a move beyond 3x the references' own run-to-run spread is drift


def check_archs(space: SearchSpace, n_reference: int) -> list[Arch]:
    """The reference subnets a session re-measures: up to 3 spread over FLOPs (none without references)."""
    return reference_archs(space, min(N_CHECK, n_reference)) if n_reference else []


def new_session_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


def session_summaries(records: Iterable[StoredMeasurement], space: str | None = None) -> list[dict[str, Any]]:
    """One summary per session that measured reference checks, oldest first: {id, started, checks {phase: {key:
    median_ms}}, drift_pct, noise_pct, threshold_pct, drifted}."""
    sessions: dict[str, dict[str, Any]] = {}
    spreads: dict[str, list[float]] = {}
    for rec in records:
        if rec.kind != "check" or not rec.ok or not rec.session or (space and rec.space != space):
            continue
        m = rec.measurement
        s = sessions.setdefault(rec.session, {"id": rec.session, "started": m.timestamp, "checks": {}})
        s["started"] = min(s["started"], m.timestamp)
        s["checks"].setdefault(rec.role, {})[rec.key] = m.median_ms
        if m.median_ms > 0 and np.isfinite(m.std_ms):
            spreads.setdefault(rec.session, []).append(100.0 * m.std_ms / m.median_ms)
    out = []
    for sid, s in sorted(sessions.items(), key=lambda kv: kv[1]["started"]):
        moves = []
        keys = set().union(*(set(v) for v in s["checks"].values()))
        for key in keys:
            values = [s["checks"][p][key] for p in CHECK_PHASES if key in s["checks"].get(p, {})]
            if len(values) > 1:
                moves.append(100.0 * (max(values) / min(values) - 1.0))
        noise = float(np.median(spreads[sid])) if spreads.get(sid) else 0.0
        threshold = max(DRIFT_FLOOR_PCT, NOISE_FACTOR * noise)
        drift = float(max(moves)) if moves else 0.0
        out.append({**s, "drift_pct": round(drift, 2), "noise_pct": round(noise, 2),
                    "threshold_pct": round(threshold, 2), "drifted": drift > threshold})
    return out
