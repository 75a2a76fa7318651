"""Measurement you can check: reference checks per session, drift flagged, drifted or disagreeing sessions not
mixed silently by fit."""

from __future__ import annotations

import pytest

from hwnas.devices.base import Measurement
from hwnas.errors import PredictorError
from hwnas.predictors.fitting import session_warnings
from hwnas.profiling.drift import session_summaries
from hwnas.profiling.store import StoredMeasurement


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
