"""The profile measures its reference subnets once more in a batch of their own, and `fit` calibrates the
prediction intervals on those (a later session strays from the profile by more than the profile's own subnets
differ among themselves). Real onnxruntime runs on this CPU, the shipped demo supernet."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hwnas import workflows
from hwnas.cli.app import main
from hwnas.devices import open_device
from hwnas.devices.inventory import add_device, load_inventory
from hwnas.predictors.base import conformal_halfwidth
from hwnas.predictors.fitting import AGAIN_SOURCE, MIN_AGAIN, describe_noise, fit_from_profile, fit_report
from hwnas.profiling import load_profile, profile_device, reference_archs
from hwnas.profiling.drift import (
    AGAIN_PHASE,
    CHECK_PHASES,
    DRIFT_FLOOR_PCT,
    LEVEL_FLOOR_PCT,
    batch_level,
    check_archs,
    level_threshold,
    move_pct,
    plan_session_check,
)
from hwnas.profiling.store import MeasurementStore
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
from hwnas.workflows.optimize import _fit_whole_subnets
from hwnas.workspace import Workspace

QUICK = {"runs": 3, "warmup": 1, "rounds": 1}


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """The demo supernet profiled on this CPU with the standard 20 reference subnets and 30 calibration ones (enough
    for a finite 95% interval from cross-validation)."""
    ws = Workspace.init(tmp_path_factory.mktemp("ws"))
    add_device(ws, "cpu", transport="local", runtime="onnxruntime", threads=1)
    space = load_checkpoint(demo_checkpoint_path()).space
    path = workflows.profile("cpu", space, workspace=ws, operators=False, calibration=30, jobs=1, **QUICK).path
    return ws, path


def test_the_reference_subnets_are_measured_again_in_a_batch_of_their_own(profiled):
    ws, path = profiled
    profile = load_profile(path)
    first = {r["key"]: r for r in profile["reference"]}
    again = {r["key"]: r for r in profile["reference_again"]}
    assert len(first) == 20 and set(again) == set(first)
    records = MeasurementStore.for_device(ws, "cpu").records()
    arch_times = [r.measurement.timestamp for r in records if r.kind == "arch"]
    again_records = [r for r in records if r.kind == "check" and r.role == AGAIN_PHASE]
    assert min(r.measurement.timestamp for r in again_records) > max(arch_times)  # after the profile's own batch
    # the same batch holds the check subnets (their level for later sessions), references or not
    checks = {r.key for r in records if r.kind == "check" and r.role in CHECK_PHASES}
    # one batch, or two where the first stood off the profile's level (measured once more)
    assert {r.key for r in again_records} == set(first) | checks
    assert len(again_records) in (len(set(first) | checks), 2 * len(set(first) | checks))
    for key, row in again.items():
        assert row["arch"] == first[key]["arch"] and row["median_ms"] > 0
    # the references again are no session checks: a session's checks are its 3 check subnets per phase
    summary = profile["sessions"][-1]
    assert set(summary["checks"]) == set(CHECK_PHASES) and all(len(v) == 3 for v in summary["checks"].values())
    # the session's level against that batch, what `fit` compares sessions by
    (level,) = profile["reference_levels"]["sessions"].values()
    assert level["n"] == 20 and level["level"] == summary["again"]["level"]


def _again_scores(predictor, rows):
    y = np.array([r["median_ms"] for r in rows])
    return np.sort(np.abs(np.log(y / predictor.predict([r["arch"] for r in rows]))))


def test_fit_calibrates_the_intervals_on_the_wider_of_the_second_batch_and_cross_validation(profiled):
    _, path = profiled
    profile = load_profile(path)
    within = fit_from_profile("gbm", {**profile, "reference_again": []}, path)
    assert within.conformal_["source"] == "cross-validation" and np.isfinite(within.interval_halfwidth(0.95))
    predictor = fit_from_profile("gbm", profile, path)
    again = conformal_halfwidth(_again_scores(predictor, profile["reference_again"]), 0.95)
    assert again == pytest.approx(_again_scores(predictor, profile["reference_again"])[-1])  # 20 scores: the largest
    assert predictor.interval_halfwidth(0.95) == pytest.approx(max(again, within.interval_halfwidth(0.95)), rel=1e-4)
    assert predictor.conformal_["source"] == (AGAIN_SOURCE if again >= within.interval_halfwidth(0.95)
                                              else "cross-validation")
    report = fit_report(predictor, profile)  # what `hwnas fit` prints says which
    assert report.to_dict()["interval_source"] == predictor.conformal_["source"]
    assert any(f"(calibrated on {predictor.conformal_['source']})" in line for line in report.lines())


def test_a_second_batch_that_strays_widens_the_interval_and_one_that_agrees_does_not(profiled):
    _, path = profiled
    profile = load_profile(path)
    within = fit_from_profile("gbm", {**profile, "reference_again": []}, path).interval_halfwidth(0.95)
    base = fit_from_profile("gbm", {**profile, "reference_again": []}, path)
    rows = profile["reference_again"]
    exact = [{**r, "median_ms": float(base.predict([r["arch"]])[0])} for r in rows]
    agrees = fit_from_profile("gbm", {**profile, "reference_again": exact}, path)
    assert agrees.conformal_["source"] == "cross-validation" and agrees.interval_halfwidth(0.95) == within
    factor = float(np.exp(2 * within))  # every subnet off by twice the interval within the profile
    strays = [{**r, "median_ms": m["median_ms"] * (factor if i % 2 else 1 / factor)} for i, (r, m) in
              enumerate(zip(rows, exact, strict=True))]
    wide = fit_from_profile("gbm", {**profile, "reference_again": strays}, path)
    assert wide.conformal_["source"] == AGAIN_SOURCE and wide.conformal_["n"] == 20
    assert wide.interval_halfwidth(0.95) == pytest.approx(2 * within, rel=1e-3)


def test_too_few_references_again_leave_the_cross_validation_intervals(profiled):
    _, path = profiled
    profile = load_profile(path)
    profile["reference_again"] = profile["reference_again"][:MIN_AGAIN - 1]
    predictor = fit_from_profile("gbm", profile, path)
    assert predictor.conformal_["source"] == "cross-validation"
    # few-shot learns from the references themselves: their second measurement is not held out for it
    base = fit_from_profile("gbm", load_profile(path), path)
    few = fit_from_profile("few-shot", load_profile(path), path, base=base)
    assert few.conformal_["source"] != AGAIN_SOURCE


def test_a_later_session_is_judged_on_the_noise_of_the_reference_subnets_measured_twice(profiled):
    ws, path = profiled
    profile = load_profile(path)
    space = load_checkpoint(demo_checkpoint_path()).space
    settings = load_inventory(ws)["cpu"].settings(**QUICK)
    check = plan_session_check(profile, path, MeasurementStore.for_device(ws, "cpu").records(), space, settings)
    twice = batch_level({r["key"]: r["median_ms"] for r in profile["reference"]},
                        {r["key"]: r["median_ms"] for r in profile["reference_again"]})
    assert twice["n"] == 20
    # the check subnets and the other reference subnets ride in the front's batch: the level of the ~20 read
    # there is noise within 3 standard errors of their median ratio
    assert len(check.archs) == 3 and {a.key for a in check.riders} | {a.key for a in check.archs} >= set(
        r["key"] for r in profile["reference_again"])
    n = len(check.archs) + len(check.riders)
    assert check.threshold_source == "reference subnets measured again"
    assert check.threshold_pct == level_threshold(twice["spread_pct"], n) >= LEVEL_FLOOR_PCT
    assert check.level_spread_pct == twice["spread_pct"]
    # the check batches of three are noisier: their own (wider or equal) threshold judges moves within a session
    assert check.check_threshold_pct == pytest.approx(max(max(s["check_threshold_pct"] for s in profile["sessions"]),
                                                          DRIFT_FLOOR_PCT), abs=0.05)  # from the rounded spread
    # the check subnets' profiled level: their second batch, at the speed of the profile's own batch (divided by
    # the references' level between the two), so a second batch caught in a slow phase is not taken for the norm
    records = MeasurementStore.for_device(ws, "cpu").records()
    again_ms = {r.key: r.measurement.median_ms for r in records if r.kind == "check" and r.role == AGAIN_PHASE}
    (summary,) = profile["sessions"]
    for key, value in check.baseline_ms.items():
        assert value == pytest.approx(again_ms[key] / summary["again"]["level"])
    slow = {**profile, "sessions": [{**summary, "again": {**summary["again"], "level": 1.5}}]}
    slowed = plan_session_check(slow, path, records, space, settings)
    for key, value in slowed.baseline_ms.items():
        assert value == pytest.approx(again_ms[key] / 1.5)
    base = check.baseline_ms
    slower = 1.0 + (check.threshold_pct + 2.0) / 100  # just beyond the threshold
    moved = check.compare(base, base, {k: v * slower for k, v in base.items()})
    assert moved["shifted"] and moved["ratio"] == pytest.approx(slower, rel=1e-3) and not moved["drifted"]
    within = 1.0 + (check.threshold_pct - 2.0) / 100
    assert not check.compare(base, base, {k: v * within for k, v in base.items()})["shifted"]
    # read from the check batches alone (the front's batch did not hold them), the wider threshold applies
    alone = check.compare({k: v * slower for k, v in base.items()}, {k: v * slower for k, v in base.items()})
    assert alone["threshold_pct"] == max(check.threshold_pct, check.check_threshold_pct)
    assert alone["shifted"] == (100 * (slower - 1) > alone["threshold_pct"])


def test_hwnas_profile_says_whether_the_device_held_its_speed(profiled, capsys):
    ws, _ = profiled
    add_device(ws, "cpu-b", transport="local", runtime="onnxruntime", threads=1)  # the subnets' files are cached
    with pytest.raises(SystemExit) as done:
        main(["profile", "cpu-b", "--supernet", str(demo_checkpoint_path()), "--no-operators", "--calibration", "0",
              "--runs", "3", "--warmup", "1", "--rounds", "1", "-w", str(ws.root)])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    path = next((ws.root / "profiles" / "cpu-b").glob("*.json"))
    (summary,) = load_profile(path)["sessions"]
    assert summary["drift_source"] == "reference subnets measured again" and summary["again"]["n"] == 20
    line = (f"profiling session {summary['id']}: its 20 reference subnets measured again after the profile's batch "
            f"ran {summary['again']['level']:.2f}x their latency in it (noise allows {summary['threshold_pct']:.0f}%)")
    assert line in out
    noisy = describe_noise(summary) is not None  # its references strayed beyond 5% (a busy host, 3 runs each)
    assert ("`hwnas fit` will warn" in out) == (summary["drifted"] or noisy)
    assert (", steady" in out) != summary["drifted"]
    assert (", steady, but its 20 reference subnets strayed" in out) == (noisy and not summary["drifted"])


class _SlowFirstBatch:
    """This CPU, with the first batch that `picked` (a test on the batch's set of keys) selects read `factor` times
    slower (a slow phase of the host over that batch); every other batch as measured. `batches` keeps what each
    picked batch yielded ({key: median_ms})."""

    def __init__(self, device, picked, factor=3.0):
        self.device, self.picked, self.factor, self.batches = device, picked, factor, []

    def __getattr__(self, name):
        return getattr(self.device, name)

    def benchmark(self, models, settings):
        picked = self.picked({m.key for m in models})
        if picked:
            self.batches.append({})
        for m in self.device.benchmark(models, settings):
            if picked and len(self.batches) == 1:
                m = dataclasses.replace(m, **{f: getattr(m, f) * self.factor for f in
                                              ("median_ms", "mean_ms", "min_ms", "p90_ms", "std_ms")})
            if picked:
                self.batches[-1][m.key] = m.median_ms
            yield m


def test_a_second_batch_caught_in_a_slow_phase_is_measured_once_more(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    add_device(ws, "cpu", transport="local", runtime="onnxruntime", threads=1)
    space = load_checkpoint(demo_checkpoint_path()).space
    keys = {a.key for a in reference_archs(space, 20)} | {a.key for a in check_archs(space, 20)}
    with open_device("cpu", ws) as dev:
        slow = _SlowFirstBatch(dev, lambda batch: batch == keys)  # the reference subnets measured again
        path = profile_device(slow, space, ws, settings=dev.config.settings(**QUICK), ops=[], calibration=0, jobs=1)
    assert len(slow.batches) == 2  # the slowed batch, then once more
    records = MeasurementStore.for_device(ws, "cpu").records()
    again = [r for r in records if r.kind == "check" and r.role == AGAIN_PHASE]
    assert len(again) == 2 * len(keys)
    first = {r.key: r.measurement.median_ms for r in again[:len(keys)]}
    newest = {r.key: r.measurement.median_ms for r in again[len(keys):]}
    profile = load_profile(path)
    main = {r["key"]: r["median_ms"] for r in profile["reference"]}
    assert batch_level(main, first)["level"] > 1.5  # what the slow phase made of it (3x, whatever the load)
    # the profile, its session's verdict and fit's interval go by the newest batch
    assert {r["key"]: r["median_ms"] for r in profile["reference_again"]} == {k: newest[k] for k in main}
    (summary,) = profile["sessions"]
    assert summary["again"]["level"] == batch_level(main, newest)["level"]
    assert summary["drifted"] == (move_pct(summary["again"]["level"]) > summary["threshold_pct"])


def test_optimize_says_when_the_profile_it_fitted_on_drifted(profiled, tmp_path):
    _, path = profiled
    profile = load_profile(path)
    (summary,) = profile["sessions"]
    drifted = {**summary, "again": {**summary["again"], "level": 1.49}, "drift_pct": 49.0, "drifted": True}
    copy = tmp_path / path.name
    copy.write_text(json.dumps({**profile, "sessions": [drifted]}))
    note = _fit_whole_subnets(copy, tmp_path / "gbm.json", seed=0)
    assert "warning: profiling session" in note and "ran 1.49x their latency" in note
    assert "speed changed during the profile" in note
    assert ("warning" not in _fit_whole_subnets(path, tmp_path / "gbm2.json", seed=0) or summary["drifted"]
            or describe_noise(summary))


def test_deploy_reads_the_session_from_every_reference_subnet_riding_in_the_fronts_batch(profiled):
    ws, path = profiled
    workflows.fit("cpu", "gbm", workspace=ws)
    run = workflows.search(demo_checkpoint_path(), ["cpu"], workspace=ws, evals=3, limit=50, algorithm="random",
                           out=ws.runs_dir / "r").run.path
    settings = load_inventory(ws)["cpu"].settings(**QUICK)
    result = workflows.deploy(run, "cpu", formats=["onnx"], workspace=ws, max_models=2, settings=settings)
    check = json.loads((run / "front.json").read_text())["deployed"]["cpu"]["session_check"]
    profile = load_profile(path)
    planned = plan_session_check(profile, path, MeasurementStore.for_device(ws, "cpu").records(),
                                 load_checkpoint(demo_checkpoint_path()).space, settings)
    starts = {a.key for a in planned.archs}
    # the 3 check subnets at the start and end, and with them every reference subnet measured twice in the
    # front's own batch: the level is a median over about 20 subnets, its threshold as narrow as that allows
    again = {r["key"] for r in profile["reference_again"]}
    assert set(check["checks"]) == starts | again and len(check["checks"]) >= 20
    assert check["measured"] == len(check["checks"])
    for key, row in check["checks"].items():
        assert row["with_front_ms"] > 0 and (row["start_ms"] is not None) == (key in starts)
    ratios = [r["with_front_ms"] / r["profile_ms"] for r in check["checks"].values()]
    assert check["ratio"] == pytest.approx(float(np.median(ratios)), rel=1e-3)
    twice = batch_level({r["key"]: r["median_ms"] for r in profile["reference"]},
                        {r["key"]: r["median_ms"] for r in profile["reference_again"]})
    assert check["threshold_pct"] == level_threshold(twice["spread_pct"], check["measured"])
    # the front's error scaled to the session by that level
    measured = [r for r in result.rows if (r.get("measured") or {}).get("latency_ms[cpu]")]
    assert len(check["front_error_pct"]["scaled"]) == len(measured) >= 1
    for row, scaled in zip(measured, check["front_error_pct"]["scaled"]):
        p, m = row["values"]["latency_ms[cpu]"], row["measured"]["latency_ms[cpu]"]
        assert scaled == pytest.approx(100 * (p * check["ratio"] - m) / m, abs=0.01)
    assert f"{check['measured']} reference subnets ran" in result.report.read_text()


def test_a_front_batch_caught_in_a_slow_phase_is_measured_once_more(profiled, capsys):
    from hwnas.search.report import session_summary
    from hwnas.workflows.deploy import deploy_front

    ws, path = profiled
    workflows.fit("cpu", "gbm", workspace=ws)
    run = workflows.search(demo_checkpoint_path(), ["cpu"], workspace=ws, evals=3, limit=50, algorithm="random",
                           out=ws.runs_dir / "slow").run.path
    profile = load_profile(path)
    riders = {r["key"] for r in profile["reference_again"]}
    with open_device("cpu", ws) as dev:
        slow = _SlowFirstBatch(dev, lambda batch: riders < batch)  # the front's batch: references and more
        rows = deploy_front(run, slow, ["onnx"], settings=dev.config.settings(**QUICK), workspace=ws, max_models=2)
    # the slowed batch, then once more; never a third time, whatever the second reads
    assert len(slow.batches) == 2
    check = json.loads((run / "front.json").read_text())["deployed"]["cpu"]["session_check"]
    # the first batch's level, read from what it measured (3x slower than this CPU was, whatever the load), and
    # beyond the threshold: what made deploy measure again
    first, newest = slow.batches
    profiled = {k: row["profile_ms"] for k, row in check["checks"].items()}
    assert check["first_batch"]["ratio"] == pytest.approx(float(np.median([first[k] / profiled[k] for k in profiled])),
                                                          rel=1e-3)
    assert move_pct(check["first_batch"]["ratio"]) > check["first_batch"]["threshold_pct"]
    # the newest batch counts: the front's measured latency and the session's level both come from it
    assert check["ratio"] == pytest.approx(float(np.median([newest[k] / profiled[k] for k in profiled])), rel=1e-3)
    measured = {r["key"]: r["measured"]["latency_ms[cpu]"] for r in rows if (r.get("measured") or {}).get(
        "latency_ms[cpu]")}
    assert measured and all(newest[k] == pytest.approx(v) for k, v in measured.items())
    assert all(row["with_front_ms"] == pytest.approx(newest[k]) for k, row in check["checks"].items())
    assert f"measured twice: the front's first batch ran at {check['first_batch']['ratio']:.2f}x" in \
        session_summary("cpu", check)
