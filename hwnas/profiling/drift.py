"""Measurement you can check: each profiling session re-measures a few fixed reference subnets at its start,
middle and end; a session whose references moved beyond their run-to-run noise is flagged in the profile, and
sessions whose reference levels disagree are not mixed silently by `fit`. A later session on the device (deploy)
re-measures the same reference subnets at its start and end (`SessionCheck`): how fast the device runs now
against its profile, and which measurement settings differ."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import SpaceError
from hwnas.profiling.reference import reference_archs
from hwnas.profiling.store import StoredMeasurement
from hwnas.space import Arch, SearchSpace, network_config

__all__ = ["AGAIN_PHASE", "CHECK_PHASES", "DRIFT_FLOOR_PCT", "SessionCheck", "check_archs", "new_session_id",
           "plan_session_check", "session_summaries"]

CHECK_PHASES = ("start", "middle", "end")
AGAIN_PHASE = "again"  # the profile's reference and check subnets again, in a batch of their own (intervals, levels)
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
        if (rec.kind != "check" or rec.role not in CHECK_PHASES or not rec.ok or not rec.session
                or (space and rec.space != space)):
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


# the settings that change what a model measures; a later session that differs in one is not like for like
MEASURE_FIELDS = ("runtime", "threads", "warmup", "runs", "min_seconds", "rounds", "pin_cores", "use_gpu",
                  "fresh_session")


@dataclass
class SessionCheck:
    """The reference checks of a device's profile, to re-measure in a later session under its own settings:
    `archs` are the check subnets, `baseline_ms` their level in the profile's sessions (in `statistic`)."""

    profile: Path
    runtime: str
    sessions: list[str]
    statistic: str
    threshold_pct: float
    archs: list[Arch]
    baseline_ms: dict[str, float]
    settings_differ: dict[str, list[Any]]

    def compare(self, start: Mapping[str, float], end: Mapping[str, float],
                with_front: Mapping[str, float] | None = None) -> dict[str, Any]:
        """What front.json records of the session: per check subnet its profiled level and the levels at the
        session's start and end, and `with_front_ms` where it was also measured in the front's own batch (its
        rounds interleaved with the front's models: the same moments, so the same load); `ratio`, the median over
        the subnets of (level now / profiled level), is how much longer the device takes now (0.9: 10% faster),
        taken from the front's batch where measured there, else from the mean of start and end; `shifted` when
        that move exceeds the profile's noise threshold, `drifted` when the session itself moved beyond it
        between its start and end."""
        checks, ratios, moves = {}, [], []
        with_front = with_front or {}

        def usable(v: Any) -> bool:
            return v is not None and bool(np.isfinite(v)) and v > 0

        for key, base in self.baseline_ms.items():
            now = [v for v in (start.get(key), end.get(key)) if usable(v)]
            checks[key] = {"profile_ms": base, "start_ms": start.get(key), "end_ms": end.get(key)}
            if len(now) == 2:
                moves.append(100.0 * (max(now) / min(now) - 1.0))
            if usable(with_front.get(key)):
                checks[key]["with_front_ms"] = with_front[key]
                ratios.append(float(with_front[key]) / base)
            elif now:
                ratios.append(float(np.mean(now)) / base)
        ratio = float(np.median(ratios)) if ratios else None
        shift = 100.0 * (ratio - 1.0) if ratio is not None else None
        drift = max(moves, default=0.0)
        return {"profile": str(self.profile), "sessions": self.sessions, "statistic": self.statistic,
                "checks": checks, "measured": len(ratios),
                "ratio": round(ratio, 4) if ratio is not None else None,
                "shift_pct": round(shift, 2) if shift is not None else None, "drift_pct": round(drift, 2),
                "threshold_pct": self.threshold_pct,
                "shifted": bool(shift is not None and abs(shift) > self.threshold_pct),
                "drifted": drift > self.threshold_pct, "settings_differ": self.settings_differ}


def plan_session_check(profile: dict[str, Any], profile_file: Path, records: Iterable[StoredMeasurement],
                       space: SearchSpace, settings: Any, statistic: str = "median_ms") -> SessionCheck | None:
    """The check of a later session measuring with `settings` against `profile` (loaded from `profile_file`,
    the device's profile for this space and runtime): None when the profile measured no reference checks or
    describes other networks. The check subnets and their levels come from the device's measurement store (the records
    of the profile's sessions; a level from the batch of reference subnets measured again where there is one),
    the threshold from the profile's own noise."""
    if network_config(profile["space"]) != network_config(space.config()):
        return None  # a profile of other networks says nothing about these
    summaries = profile.get("sessions") or []
    ids = {s["id"] for s in summaries}
    levels: dict[str, list[float]] = {}
    again: dict[str, list[float]] = {}
    archs: dict[str, Arch] = {}
    for rec in records:
        m = rec.measurement
        if (rec.kind != "check" or rec.role not in (*CHECK_PHASES, AGAIN_PHASE) or not rec.ok
                or rec.session not in ids or rec.space != space.name
                or rec.precision != profile.get("precision") or m.runtime != profile.get("runtime")):
            continue
        value = getattr(m, statistic, None)
        if value is None or not np.isfinite(value) or value <= 0:
            continue
        if rec.role == AGAIN_PHASE:
            again.setdefault(rec.key, []).append(float(value))
            continue
        try:
            archs.setdefault(rec.key, space.validate(rec.spec))
        except SpaceError:  # a check subnet this space does not hold is left out
            continue
        levels.setdefault(rec.key, []).append(float(value))
    if not levels:
        return None
    # the profile's level of a check subnet: from the batch of all reference subnets after the profile where it
    # was measured there (their rounds spread over the batch), else from the check batches of three
    levels.update({key: again[key] for key in levels if key in again})
    theirs = profile.get("settings") or {}
    mine = settings.to_dict()
    differ = {f: [theirs.get(f), mine.get(f)] for f in MEASURE_FIELDS
              if f in theirs and _normal(theirs.get(f)) != _normal(mine.get(f))}
    threshold = max([float(s.get("threshold_pct") or DRIFT_FLOOR_PCT) for s in summaries] + [DRIFT_FLOOR_PCT])
    keys = sorted(levels)
    return SessionCheck(profile_file, str(profile.get("runtime")), sorted(ids), statistic, round(threshold, 2),
                        [archs[k] for k in keys], {k: float(np.median(levels[k])) for k in keys}, differ)


def _normal(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value
