"""Measurement you can check: each profiling session re-measures a few fixed reference subnets at its start,
middle and end, and its 20 reference subnets once more in a batch of their own after the profile's batch; a
session whose references moved beyond their run-to-run noise is flagged in the profile, and sessions whose
reference levels disagree are not mixed silently by `fit`. A later session on the device (deploy) re-measures
the check subnets at its start and end and inside its own batch (`SessionCheck`): how fast the device runs now
against its profile, and which measurement settings differ.

Two kinds of noise figure. The check batches hold three models whose rounds run back to back, so one slow phase
of the host covers a whole batch: their spread (`noise_pct`, std/median of their samples) is wide, and so is a
threshold built on it (x3, at least 10%). The reference subnets measured in two big batches give the figure that
matters for a level: each subnet's ratio between the batches scatters by `spread_pct` (a robust std of the log
ratio), so a level read as the median of n such ratios is noise within about 1.25 * spread / sqrt(n), and a move
beyond three of those (at least 5%) is a real change of the device's speed (`batch_level`, `level_threshold`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import SpaceError
from hwnas.profiling.reference import reference_archs
from hwnas.profiling.store import StoredMeasurement
from hwnas.space import Arch, SearchSpace, network_config

__all__ = ["AGAIN_PHASE", "CHECK_PHASES", "DRIFT_FLOOR_PCT", "LEVEL_FLOOR_PCT", "SessionCheck", "batch_level",
           "check_archs", "conditions_changed", "device_conditions", "level_threshold", "move_pct",
           "new_session_id", "plan_session_check", "reference_levels", "session_summaries"]

CHECK_PHASES = ("start", "middle", "end")
AGAIN_PHASE = "again"  # the profile's reference and check subnets again, in a batch of their own (intervals, levels)
N_CHECK = 3
DRIFT_FLOOR_PCT = 10.0  # below this no move is called drift, however quiet the runs were
NOISE_FACTOR = 3.0  # a move beyond 3x the references' own run-to-run spread is drift
LEVEL_FLOOR_PCT = 5.0  # a level read from many subnets in big batches: below this no move is called a shift
MIN_LEVEL_PAIRS = 8  # subnets measured in both batches that a level and its spread need
MIN_SESSION_REFERENCES = 3  # reference subnets a session needs to have its level read against the second batch
MEDIAN_SE = 1.2533  # the standard error of a median of n normal draws is about 1.2533 sigma / sqrt(n)
DRIFT_FROM_AGAIN = "reference subnets measured again"
DRIFT_FROM_CHECKS = "check subnets at start, middle and end"


def check_archs(space: SearchSpace, n_reference: int) -> list[Arch]:
    """The reference subnets a session re-measures: up to 3 spread over FLOPs (none without references)."""
    return reference_archs(space, min(N_CHECK, n_reference)) if n_reference else []


def new_session_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


def batch_level(first: Mapping[str, Any], second: Mapping[str, Any], min_pairs: int = MIN_LEVEL_PAIRS) \
        -> dict[str, Any] | None:
    """How a second batch of the same subnets ({key: latency}) compares with the first: `level`, the median over
    the subnets of second / first; `spread_pct`, how far one subnet's ratio strays from it (1.4826 x the median
    absolute deviation of the log ratios, in %); `n`. None with fewer than `min_pairs` subnets usable in both."""
    keys = [k for k in first if k in second and _usable(first[k]) and _usable(second[k])]
    if len(keys) < max(1, min_pairs):
        return None
    logs = np.log([float(second[k]) / float(first[k]) for k in keys])
    mid = float(np.median(logs))
    spread = 1.4826 * float(np.median(np.abs(logs - mid)))
    return {"n": len(keys), "level": round(float(np.exp(mid)), 4), "spread_pct": round(100.0 * spread, 2)}


def level_threshold(spread_pct: float, n: int, m: int | None = None, floor: float = LEVEL_FLOOR_PCT) -> float:
    """The move in % beyond which a level read as the median of `n` subnets' ratios (each straying by
    `spread_pct`) is more than noise: three standard errors of that median, at least `floor`; with `m`, of the
    difference between two such levels read from n and m subnets."""
    share = 1.0 / max(n, 1) + (1.0 / max(m, 1) if m else 0.0)
    return round(max(floor, NOISE_FACTOR * MEDIAN_SE * float(spread_pct) * float(np.sqrt(share))), 2)


def move_pct(level: float) -> float:
    """How far a level is from 1, in % of the faster side (0.8 and 1.25 both move 25%)."""
    return 100.0 * (max(level, 1.0 / level) - 1.0)


def session_summaries(records: Iterable[StoredMeasurement], space: str | None = None) -> list[dict[str, Any]]:
    """One summary per session that measured reference checks, oldest first: {id, started, checks {phase: {key:
    median_ms}}, noise_pct and check_threshold_pct (the check batches' spread and the threshold it gives), drift_pct,
    threshold_pct, drifted, drift_source, and `again` ({n, level, spread_pct}: the reference subnets measured
    again against their own measurement in the profile's batch) where this session measured both: then the
    session's drift is that level's move, else the largest move of a check subnet between its phases."""
    sessions: dict[str, dict[str, Any]] = {}
    spreads: dict[str, list[float]] = {}
    profiled: dict[str, dict[str, float]] = {}  # per session, the reference subnets' latency in the profile's batch
    again: dict[str, dict[str, float]] = {}
    for rec in records:
        if not rec.ok or not rec.session or (space and rec.space != space):
            continue
        m = rec.measurement
        if rec.kind == "arch" and rec.role == "reference":
            profiled.setdefault(rec.session, {})[rec.key] = m.median_ms  # the newest wins, as in the profile
        elif rec.kind == "check" and rec.role == AGAIN_PHASE:
            again.setdefault(rec.session, {})[rec.key] = m.median_ms
        elif rec.kind == "check" and rec.role in CHECK_PHASES:
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
        checks_threshold = _checks_threshold(noise)
        summary = {**s, "noise_pct": round(noise, 2), "check_threshold_pct": checks_threshold}
        level = batch_level(profiled.get(sid, {}), again.get(sid, {}))
        if level is not None:
            drift, threshold = move_pct(level["level"]), level_threshold(level["spread_pct"], level["n"])
            summary.update(again=level, drift_source=DRIFT_FROM_AGAIN)
        else:
            drift, threshold = (float(max(moves)) if moves else 0.0), checks_threshold
            summary["drift_source"] = DRIFT_FROM_CHECKS
        out.append({**summary, "drift_pct": round(drift, 2), "threshold_pct": round(threshold, 2),
                    "drifted": drift > threshold})
    return out


def reference_levels(reference: Iterable[Mapping[str, Any]], again: Iterable[Mapping[str, Any]],
                     statistic: str = "median_ms") -> dict[str, Any] | None:
    """Each profiling session's level, read on the reference subnets it measured in the profile's batch against
    the same yardstick, those subnets measured again in a batch of their own (rows as in a profile, with `key`
    and `session`): {spread_pct (how far a subnet strays from its own session's level), floor_pct, sessions
    {id: {n, level, band_pct}}}, where `band_pct` is three standard errors of that session's level. Two sessions
    stand at different speeds when their levels are further apart than max(floor_pct, hypot of their bands).
    Sessions with fewer than MIN_SESSION_REFERENCES such subnets are left out; None when none is left."""
    yardstick = {r["key"]: r.get(statistic) for r in again}
    by_session: dict[str, dict[str, Any]] = {}
    for row in reference:
        if row.get("session") and row.get("key") in yardstick:
            by_session.setdefault(row["session"], {})[row["key"]] = row.get(statistic)
    levels, residuals = {}, []
    for sid, mine in by_session.items():
        level = batch_level(mine, yardstick, MIN_SESSION_REFERENCES)
        if level is None:
            continue
        levels[sid] = level
        residuals += [float(np.log(float(yardstick[k]) / float(v) / level["level"])) for k, v in mine.items()
                      if _usable(v) and _usable(yardstick[k])]
    if not levels:
        return None
    spread = 100.0 * 1.4826 * float(np.median(np.abs(residuals)))
    return {"spread_pct": round(spread, 2), "floor_pct": LEVEL_FLOOR_PCT,
            "sessions": {sid: {"n": v["n"], "level": v["level"], "band_pct": level_threshold(spread, v["n"], floor=0.0)}
                         for sid, v in levels.items()}}


def _checks_threshold(noise_pct: Any) -> float:
    """The threshold for moves of the check subnets between check batches of three: 3x their spread, at least
    DRIFT_FLOOR_PCT."""
    noise = float(noise_pct) if _usable(noise_pct) else 0.0
    return round(max(DRIFT_FLOOR_PCT, NOISE_FACTOR * noise), 2)


def _usable(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value))) and float(value) > 0
    except (TypeError, ValueError):
        return False


# what a device's state changing between the profile and a later session must exceed to be named
FREQ_CHANGE_PCT = 10.0
TEMP_CHANGE_C = 10.0


def device_conditions(states: Iterable[Mapping[str, Any]], governor: Any = None) -> dict[str, Any]:
    """The device's conditions over a session, from the states its runner recorded around measurements
    (`state_before` / `state_after`: per-core `cpu_freq_mhz`, `temperature_c` per thermal zone) and its CPU
    governor: {governor, cpu_freq_mhz (median over records of the mean over cores), temperature_c (the highest
    reading)}; what the device does not report is left out."""
    freqs, temps = [], []
    for state in states:
        if not isinstance(state, Mapping):
            continue
        cores = [float(f) for f in state.get("cpu_freq_mhz") or [] if _usable(f)]
        if cores:
            freqs.append(float(np.mean(cores)))
        zones = state.get("temperature_c")
        if isinstance(zones, Mapping):
            temps += [float(t) for t in zones.values() if isinstance(t, (int, float)) and np.isfinite(t)]
    out: dict[str, Any] = {}
    if isinstance(governor, str) and governor:
        out["governor"] = governor
    if freqs:
        out["cpu_freq_mhz"] = round(float(np.median(freqs)), 1)
    if temps:
        out["temperature_c"] = round(max(temps), 1)
    return out


def conditions_changed(profiled: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{what: [profiled, now]} for each condition both sessions recorded that differs: another governor, a
    mean CPU frequency FREQ_CHANGE_PCT or more apart, a highest temperature TEMP_CHANGE_C or more apart."""
    changed: dict[str, list[Any]] = {}
    if profiled.get("governor") and now.get("governor") and profiled["governor"] != now["governor"]:
        changed["governor"] = [profiled["governor"], now["governor"]]
    before, after = profiled.get("cpu_freq_mhz"), now.get("cpu_freq_mhz")
    if _usable(before) and _usable(after) and abs(after / before - 1.0) * 100.0 >= FREQ_CHANGE_PCT:
        changed["cpu_freq_mhz"] = [before, after]
    before, after = profiled.get("temperature_c"), now.get("temperature_c")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) and abs(after - before) >= TEMP_CHANGE_C:
        changed["temperature_c"] = [before, after]
    return changed


# the settings that change what a model measures; a later session that differs in one is not like for like
MEASURE_FIELDS = ("runtime", "threads", "warmup", "runs", "min_seconds", "rounds", "pin_cores", "use_gpu",
                  "fresh_session")
# the part of them that says how long and in how many sessions a model is timed; a later session takes these from
# the profile (the rest says which device and runtime, and stays the device's own)
TIMING_FIELDS = {"warmup": (int, 0), "runs": (int, 1), "min_seconds": (float, 0.0), "rounds": (int, 1),
                 "fresh_session": (bool, None)}


def profiled_settings(profile: Mapping[str, Any], settings: Any) -> Any:
    """`settings` (BenchmarkSettings) timing models as `profile` did: its warm-up, runs, time floor, rounds and
    fresh sessions, where the profile recorded them as usable values (anything else keeps `settings`' own)."""
    theirs = profile.get("settings") if isinstance(profile.get("settings"), Mapping) else {}
    taken: dict[str, Any] = {}
    for name, (kind, least) in TIMING_FIELDS.items():
        value = theirs.get(name)
        if kind is bool:
            if isinstance(value, bool):
                taken[name] = value
            continue
        if value is None and name == "min_seconds":
            taken[name] = 0.0
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            continue
        if kind is int and value != int(value):
            continue
        if value >= least:
            taken[name] = kind(value)
    return replace(settings, **taken)


@dataclass
class SessionCheck:
    """The reference checks of a device's profile, to re-measure in a later session under its own settings:
    `archs` are the check subnets, `baseline_ms` their level in the profile's sessions (in `statistic`).
    `threshold_pct` is the move of their level, read in a big batch, beyond which the device is not in its
    profiled state (`threshold_source` says from what noise); `check_threshold_pct` the wider one for levels
    read in the session's check batches of three."""

    profile: Path
    runtime: str
    sessions: list[str]
    statistic: str
    threshold_pct: float
    archs: list[Arch]
    baseline_ms: dict[str, float]
    settings_differ: dict[str, list[Any]]
    check_threshold_pct: float = DRIFT_FLOOR_PCT
    threshold_source: str = DRIFT_FROM_CHECKS
    conditions: dict[str, Any] = field(default_factory=dict)  # the device's conditions while profiled
    # the profile's other reference subnets measured twice: they ride in the front's batch only (not in the check
    # batches at the start and end), so the session's level is read from about 20 subnets, not 3
    riders: list[Arch] = field(default_factory=list)
    level_spread_pct: float | None = None  # one subnet's scatter between two big batches (the threshold's noise)

    def compare(self, start: Mapping[str, float], end: Mapping[str, float],
                with_front: Mapping[str, float] | None = None,
                conditions: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What front.json records of the session: per check subnet its profiled level and the levels at the
        session's start and end, and `with_front_ms` where it was also measured in the front's own batch (its
        rounds interleaved with the front's models: the same moments, so the same load); `ratio`, the median over
        the subnets of (level now / profiled level), is how much longer the device takes now (0.9: 10% faster),
        taken from the front's batch where measured there, else from the mean of start and end; `shifted` when
        that move exceeds the threshold (`threshold_pct`: the profile's big-batch noise when every ratio came
        from the front's batch, else the check batches' wider one), `drifted` when the session itself moved
        beyond the check batches' threshold between its start and end. `with_front` may hold the riders too
        (measured in the front's batch only): the level is then a median over about 20 subnets. `conditions`
        (`device_conditions` of this session) are set beside the profile's, and `conditions_changed` names
        what moved."""
        checks, ratios, moves = {}, [], []
        with_front = with_front or {}
        from_front = True
        for key, base in self.baseline_ms.items():
            now = [v for v in (start.get(key), end.get(key)) if _usable(v)]
            checks[key] = {"profile_ms": base, "start_ms": start.get(key), "end_ms": end.get(key)}
            if len(now) == 2:
                moves.append(100.0 * (max(now) / min(now) - 1.0))
            if _usable(with_front.get(key)):
                checks[key]["with_front_ms"] = with_front[key]
                ratios.append(float(with_front[key]) / base)
            elif now:
                ratios.append(float(np.mean(now)) / base)
                from_front = False
        ratio = float(np.median(ratios)) if ratios else None
        shift = 100.0 * (ratio - 1.0) if ratio is not None else None
        drift = max(moves, default=0.0)
        threshold, source = self.threshold_pct, self.threshold_source
        if from_front and ratios and self.level_spread_pct is not None:
            threshold = level_threshold(self.level_spread_pct, len(ratios))  # as many as were measured
        if not from_front and self.check_threshold_pct > threshold:
            threshold, source = self.check_threshold_pct, DRIFT_FROM_CHECKS
        return {"profile": str(self.profile), "sessions": self.sessions, "statistic": self.statistic,
                "checks": checks, "measured": len(ratios),
                "ratio": round(ratio, 4) if ratio is not None else None,
                "shift_pct": round(shift, 2) if shift is not None else None, "drift_pct": round(drift, 2),
                "threshold_pct": threshold, "threshold_source": source,
                "check_threshold_pct": self.check_threshold_pct,
                "shifted": bool(ratio is not None and move_pct(ratio) > threshold),
                "drifted": drift > self.check_threshold_pct, "settings_differ": self.settings_differ,
                "conditions": {"profile": self.conditions, "now": dict(conditions or {})},
                "conditions_changed": conditions_changed(self.conditions, conditions or {})}


def plan_session_check(profile: dict[str, Any], profile_file: Path, records: Iterable[StoredMeasurement],
                       space: SearchSpace, settings: Any, statistic: str = "median_ms") -> SessionCheck | None:
    """The check of a later session measuring with `settings` against `profile` (loaded from `profile_file`,
    the device's profile for this space and runtime): None when the profile measured no reference checks or
    describes other networks. The check subnets and their levels come from the device's measurement store (the records
    of the profile's sessions; a level from the batch of reference subnets measured again where there is one,
    divided by that batch's level against the profile's own), the thresholds from the profile's own noise: its
    reference subnets in two batches where it has them."""
    if network_config(profile["space"]) != network_config(space.config()):
        return None  # a profile of other networks says nothing about these
    summaries = [s for s in profile.get("sessions") or [] if isinstance(s, dict)]
    ids = {s.get("id") for s in summaries}
    levels: dict[str, list[float]] = {}
    again: dict[str, list[float]] = {}
    again_levels = {s.get("id"): float(s["again"]["level"]) for s in summaries
                    if isinstance(s.get("again"), dict) and _usable(s["again"].get("level"))}
    archs: dict[str, Arch] = {}
    states: list[Any] = []
    for rec in records:
        m = rec.measurement
        if (rec.kind != "check" or rec.role not in (*CHECK_PHASES, AGAIN_PHASE) or not rec.ok
                or rec.session not in ids or rec.space != space.name
                or rec.precision != profile.get("precision") or m.runtime != profile.get("runtime")):
            continue
        states += [m.state_before, m.state_after]
        value = getattr(m, statistic, None)
        if not _usable(value):
            continue
        try:
            archs.setdefault(rec.key, space.validate(rec.spec))
        except SpaceError:  # a check subnet this space does not hold is left out
            continue
        if rec.role == AGAIN_PHASE:
            # at the speed of the profile's own batch, which the predictor learned from: a second batch that ran
            # in a slow phase (its level, the references' median ratio to the profile's batch, is then above 1)
            # would otherwise take that phase for the profiled state
            # the newest second batch counts, as in the profile (an earlier one off the level was measured again)
            again[rec.key] = [float(value) / again_levels.get(rec.session, 1.0)]
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
    checks = max([_checks_threshold(s.get("noise_pct")) for s in summaries] + [DRIFT_FLOOR_PCT])
    keys = sorted(levels)
    twice = batch_level({r["key"]: r.get(statistic) for r in profile.get("reference") or []},
                        {r["key"]: r.get(statistic) for r in profile.get("reference_again") or []})
    riders: list[str] = []
    if twice is not None and all(k in again for k in keys):
        # the other subnets of the second batch ride in the front's batch too: a level read from ~20
        riders = sorted(k for k in again if k not in levels)
        threshold, source = level_threshold(twice["spread_pct"], len(keys) + len(riders)), DRIFT_FROM_AGAIN
    else:
        threshold, source = checks, DRIFT_FROM_CHECKS
    baseline = {k: float(np.median(levels[k])) for k in keys} | {k: again[k][0] for k in riders}
    return SessionCheck(profile_file, str(profile.get("runtime")), sorted(ids), statistic, round(threshold, 2),
                        [archs[k] for k in keys], baseline, differ, round(checks, 2), source,
                        device_conditions(states, (profile.get("fingerprint") or {}).get("governor")),
                        [archs[k] for k in riders], twice["spread_pct"] if source == DRIFT_FROM_AGAIN else None)


def _normal(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value
