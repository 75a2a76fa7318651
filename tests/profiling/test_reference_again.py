"""The profile measures its reference subnets once more in a batch of their own, and `fit` calibrates the
prediction intervals on those (a later session strays from the profile by more than the profile's own subnets
differ among themselves). Real onnxruntime runs on this CPU, the shipped demo supernet."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas import workflows
from hwnas.devices.inventory import add_device
from hwnas.predictors.base import conformal_halfwidth
from hwnas.predictors.fitting import AGAIN_SOURCE, MIN_AGAIN, fit_from_profile, fit_report
from hwnas.profiling import load_profile
from hwnas.profiling.drift import AGAIN_PHASE, CHECK_PHASES
from hwnas.profiling.store import MeasurementStore
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
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
    assert {r.key for r in again_records} == set(first) | checks and len(again_records) == len(set(first) | checks)
    for key, row in again.items():
        assert row["arch"] == first[key]["arch"] and row["median_ms"] > 0
    # the references again are no session checks: a session's checks are its 3 check subnets per phase
    summary = profile["sessions"][-1]
    assert set(summary["checks"]) == set(CHECK_PHASES) and all(len(v) == 3 for v in summary["checks"].values())


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
