"""Measurement you can check: reference checks per session, drift flagged, drifted or disagreeing sessions not
mixed silently by fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwnas.devices.base import Measurement
from hwnas.errors import PredictorError
from hwnas.predictors.fitting import NOISY_SPREAD_PCT, describe_noise, session_warnings
from hwnas.profiling.drift import (
    AGAIN_PHASE,
    DRIFT_FLOOR_PCT,
    LEVEL_FLOOR_PCT,
    batch_level,
    conditions_changed,
    device_conditions,
    level_threshold,
    reference_levels,
    session_summaries,
)
from hwnas.profiling.store import StoredMeasurement
from hwnas.search.report import session_summary


def _check(session: str, phase: str, key: str, ms: float, t: float, std: float = 0.01) -> StoredMeasurement:
    m = Measurement(model_sha256="x", key=key, device="d", runtime="onnxruntime", runtime_version="1", threads=1,
                    warmup=1, runs=5, median_ms=ms, mean_ms=ms, std_ms=std * ms, min_ms=ms, p90_ms=ms, n=5,
                    timestamp=t, status="ok", error="")
    return StoredMeasurement(kind="check", key=key, space="s", precision="fp32", measurement=m, role=phase,
                             session=session)


def _session(sid: str, t0: float, levels: dict[str, float]) -> list[StoredMeasurement]:
    return [_check(sid, phase, key, ms * levels[phase], t0 + i) for i, phase in enumerate(("start", "middle", "end"))
            for key, ms in (("a", 1.0), ("b", 5.0))]


def test_a_steady_session_is_not_flagged_and_a_moving_one_is():
    steady = _session("s1", 0, {"start": 1.0, "middle": 1.02, "end": 0.99})
    moving = _session("s2", 100, {"start": 1.0, "middle": 1.4, "end": 1.8})
    summaries = session_summaries(steady + moving)
    assert [s["id"] for s in summaries] == ["s1", "s2"]
    assert not summaries[0]["drifted"] and summaries[0]["drift_pct"] == pytest.approx(3.03, abs=0.01)
    assert summaries[1]["drifted"] and summaries[1]["drift_pct"] == pytest.approx(80.0)


def test_noisy_references_raise_the_threshold():
    noisy = [_check("s", p, "a", ms, i, std=0.2) for i, (p, ms) in enumerate((("start", 1.0), ("end", 1.3)))]
    (summary,) = session_summaries(noisy)
    assert summary["threshold_pct"] == pytest.approx(60.0) and not summary["drifted"]


def _profile(sessions, row_sessions):
    rows = [{"key": f"k{i}", "arch": {}, "median_ms": 1.0, "session": s} for i, s in enumerate(row_sessions)]
    return {"sessions": sessions, "calibration": rows}


def test_fit_refuses_to_mix_sessions_two_times_apart_unless_allowed():
    first = session_summaries(_session("s1", 0, {"start": 1.0, "middle": 1.0, "end": 1.0}))
    second = session_summaries(_session("s2", 100, {"start": 2.0, "middle": 2.0, "end": 2.0}))
    profile = _profile(first + second, ["s1", "s2"])
    with pytest.raises(PredictorError, match="2 profiling sessions.*100% apart.*--allow-drift") as err:
        session_warnings(profile)
    assert "\n" not in str(err.value)
    warnings = session_warnings(profile, allow_drift=True)
    assert any("100% apart" in w for w in warnings)


def test_one_drifted_session_alone_is_a_warning_not_an_error():
    summaries = session_summaries(_session("s1", 0, {"start": 1.0, "middle": 1.5, "end": 2.0}))
    warnings = session_warnings(_profile(summaries, ["s1", "s1"]))
    assert len(warnings) == 1 and "drifted" in warnings[0]


def test_a_profile_without_checks_warns_that_drift_is_unchecked():
    assert "no reference checks" in session_warnings(_profile([], ["", ""]))[0]


def test_store_round_trips_the_session():
    rec = _check("s9", "end", "a", 1.0, 0)
    assert StoredMeasurement.from_dict(rec.to_dict()).session == "s9"


# the reference subnets measured in the profile's batch and again in a batch of their own: the level that matters


def _batches(sid: str, t0: float, level: float, n: int = 20, seed: int = 0, scatter: float = 0.02):
    """`n` reference subnets measured in the profile's batch (arch records) and again (check records of phase
    `again`) at `level` times their latency, each ratio scattered by `scatter` (log std)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ms = 1.0 + i
        first = _check(sid, "reference", f"r{i}", ms, t0 + i)
        out.append(dataclasses.replace(first, kind="arch"))
        out.append(_check(sid, AGAIN_PHASE, f"r{i}", ms * level * float(np.exp(rng.normal(0, scatter))), t0 + 50 + i))
    return out


def test_batch_level_is_the_median_ratio_and_its_spread_robust():
    first = {f"k{i}": 1.0 + i for i in range(10)}
    ratios = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.03, 0.97, 1.0, 3.0]  # one subnet caught in a slow phase
    level = batch_level(first, {k: v * r for (k, v), r in zip(first.items(), ratios)})
    logs = np.log(ratios)
    assert level["n"] == 10 and level["level"] == pytest.approx(float(np.exp(np.median(logs))), abs=1e-4)
    assert level["spread_pct"] == pytest.approx(100 * 1.4826 * np.median(np.abs(logs - np.median(logs))), abs=0.01)
    assert level["spread_pct"] < 3.0  # the outlier does not widen it (its std would be 33%)
    assert batch_level(dict(list(first.items())[:7]), first) is None  # too few subnets to read a level
    # three standard errors of the median, at least the floor
    assert level_threshold(10.0, 4) == pytest.approx(3 * 1.2533 * 10 / 2, abs=0.01)
    assert level_threshold(1.0, 20) == LEVEL_FLOOR_PCT
    assert level_threshold(10.0, 4, 4) == pytest.approx(3 * 1.2533 * 10 * np.sqrt(0.5), abs=0.01)


def test_a_session_is_judged_on_its_references_measured_again_not_on_its_check_batches():
    # the check batches of three moved 75% (one slow phase of the host over a whole batch of three), while the
    # 20 reference subnets measured again stood where the profile's batch had them: not drift
    calm = _session("s1", 0, {"start": 1.0, "middle": 1.75, "end": 1.0}) + _batches("s1", 10, 1.004)
    (summary,) = session_summaries(calm)
    assert summary["drift_source"] == "reference subnets measured again" and not summary["drifted"]
    assert summary["again"]["n"] == 20 and summary["again"]["level"] == pytest.approx(1.004, abs=0.01)
    assert summary["threshold_pct"] == LEVEL_FLOOR_PCT and summary["check_threshold_pct"] == DRIFT_FLOOR_PCT
    # the device 8% slower in the second batch: the checks saw nothing (a few %), the references do
    moved = _session("s2", 0, {"start": 1.0, "middle": 1.01, "end": 1.03}) + _batches("s2", 10, 1.08)
    (summary,) = session_summaries(moved)
    assert summary["drifted"] and summary["drift_pct"] == pytest.approx(8.0, abs=1.5)
    warnings = session_warnings(_profile([summary], ["s2"]))
    assert len(warnings) == 1 and "measured again" in warnings[0] and "speed changed" in warnings[0]
    # fewer than 8 references in both batches: the check batches decide, as before
    (few,) = session_summaries(_session("s3", 0, {"start": 1.0, "middle": 1.75, "end": 1.0})
                               + _batches("s3", 10, 1.0, n=5))
    assert few["drift_source"] == "check subnets at start, middle and end" and few["drifted"]


def test_a_noisy_session_is_a_warning_even_when_its_level_held():
    # the references measured again at the profile's level, but each strays ~11% from it: every measurement of
    # that session (and a predictor fitted on them) is that noisy; at 2% scatter nothing is said
    (noisy,) = session_summaries(_session("s1", 0, {p: 1.0 for p in ("start", "middle", "end")})
                                 + _batches("s1", 10, 1.0, scatter=0.11))
    assert not noisy["drifted"] and noisy["again"]["spread_pct"] > NOISY_SPREAD_PCT
    text = describe_noise(noisy)
    assert f"{noisy['again']['spread_pct']:.1f}%" in text and "no better than that" in text
    (warning,) = session_warnings(_profile([noisy], ["s1"]))
    assert "was noisy" in warning and "re-profile on a quiet device" in warning
    (quiet,) = session_summaries(_session("s2", 0, {p: 1.0 for p in ("start", "middle", "end")})
                                 + _batches("s2", 10, 1.0, scatter=0.02))
    assert describe_noise(quiet) is None and session_warnings(_profile([quiet], ["s2"])) == []
    assert describe_noise({"again": {"n": 20, "spread_pct": "x"}}) is None  # unreadable: nothing claimed


def _two_session_profile(level2: float, checks2: float):
    """A profile whose 20 reference subnets were measured 10 in session s1 and 10 in s2 (s2's at `level2` times
    s1's), and all 20 again in one batch of their own; s2's check subnets at `checks2` times s1's."""
    first = session_summaries(_session("s1", 0, {"start": 1.0, "middle": 1.0, "end": 1.0}))
    second = session_summaries(_session("s2", 100, {p: checks2 for p in ("start", "middle", "end")}))
    rng = np.random.default_rng(1)
    refs = [{"key": f"r{i}", "arch": {}, "median_ms": (1.0 + i) * (level2 if i % 2 else 1.0),
             "session": "s2" if i % 2 else "s1"} for i in range(20)]
    again = [{"key": f"r{i}", "arch": {}, "median_ms": (1.0 + i) * float(np.exp(rng.normal(0, 0.02)))}
             for i in range(20)]
    return {**_profile(first + second, ["s1", "s2"]), "reference": refs, "reference_again": again,
            "reference_levels": reference_levels(refs, again)}


def test_fit_reads_two_sessions_levels_against_the_references_measured_again():
    # s2's subnets measured 12% slower than s1's, against the same second batch: refused (the check batches of
    # three happened to agree)
    with pytest.raises(PredictorError, match=r"2 profiling sessions.*1[12]% apart") as err:
        session_warnings(_two_session_profile(1.12, 1.0))
    assert "\n" not in str(err.value)
    # the same subnets at one level, the check batches of three 100% apart (a slow phase over one of them): mixed
    profile = _two_session_profile(1.0, 2.0)
    assert session_warnings(profile) == []
    levels = profile["reference_levels"]
    assert set(levels["sessions"]) == {"s1", "s2"} and all(v["n"] == 10 for v in levels["sessions"].values())
    assert levels["spread_pct"] < 4.0  # each subnet's scatter about its own session's level (2% drawn)
    # without a level for every session used, the check subnets decide, as before
    with pytest.raises(PredictorError, match="100% apart"):
        session_warnings({**profile, "reference_levels": None})


def test_device_conditions_summarise_frequency_temperature_and_governor():
    states = [{"cpu_freq_mhz": [1500.0, 1400.0], "temperature_c": {"cpu": 51.0, "gpu": 48.0}},
              {"cpu_freq_mhz": [1000.0, 1000.0], "temperature_c": {"cpu": 55.5}},
              {"cpu_freq_mhz": [1600.0, 1600.0]}, {}, None]
    got = device_conditions(states, "ondemand")
    assert got == {"governor": "ondemand", "cpu_freq_mhz": 1450.0, "temperature_c": 55.5}  # median of core means
    assert device_conditions([{}, {}], None) == {}  # a device that reports nothing (this VM)


def test_a_change_of_governor_frequency_or_temperature_is_named_and_a_small_one_is_not():
    profiled = {"governor": "ondemand", "cpu_freq_mhz": 1500.0, "temperature_c": 50.0}
    assert conditions_changed(profiled, {"governor": "ondemand", "cpu_freq_mhz": 1400.0, "temperature_c": 59.0}) == {}
    changed = conditions_changed(profiled, {"governor": "powersave", "cpu_freq_mhz": 600.0, "temperature_c": 72.0})
    assert changed == {"governor": ["ondemand", "powersave"], "cpu_freq_mhz": [1500.0, 600.0],
                       "temperature_c": [50.0, 72.0]}
    assert conditions_changed(profiled, {}) == {}  # not recorded now is not a change
    line = session_summary("pi4", {"measured": 3, "ratio": 1.3, "shift_pct": 30.0, "threshold_pct": 5.0,
                                   "shifted": True, "conditions_changed": changed})
    assert ("the device changed since it was profiled: CPU 1500.0 MHz -> 600.0 MHz, governor ondemand -> powersave, "
            "temperature 50.0 °C -> 72.0 °C") in line
