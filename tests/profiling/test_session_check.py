"""A deploy session is checked against the device's profile: the profile's reference-check subnets are measured
again at the deploy's start and end, and front.json, the CLI and the report say how fast the device ran against
its profile, whether the measurement settings differ, and the front's error as predicted and scaled to the
session. Real onnxruntime runs on this CPU, the shipped demo supernet."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hwnas import workflows
from hwnas.cli.app import main
from hwnas.devices.inventory import add_device, load_inventory
from hwnas.devices.runner import device_state, fingerprint
from hwnas.profiling.drift import CHECK_PHASES, conditions_changed, device_conditions
from hwnas.profiling.store import MeasurementStore
from hwnas.search.report import settings_summary
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
from hwnas.workspace import Workspace

QUICK = {"runs": 3, "warmup": 1, "rounds": 1}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A workspace whose device `cpu` was profiled (3 reference checks per phase) and searched on; a second
    device `cpu2` that was never profiled."""
    ws = Workspace.init(tmp_path_factory.mktemp("ws"))
    for name in ("cpu", "cpu2"):
        add_device(ws, name, transport="local", runtime="onnxruntime", threads=1)
    ckpt = demo_checkpoint_path()
    space = load_checkpoint(ckpt).space
    workflows.profile("cpu", space, workspace=ws, operators=False, calibration=10, reference=3, jobs=1, **QUICK)
    workflows.fit("cpu", "gbm", workspace=ws)
    outcome = workflows.search(ckpt, ["cpu"], workspace=ws, evals=3, limit=50, algorithm="random",
                               out=ws.runs_dir / "r")
    return ws, outcome.run.path


def _deploy(ws, run, device="cpu", **settings):
    dest = ws.root / f"runs/{device}-{len(list((ws.root / 'runs').iterdir()))}"
    shutil.copytree(run, dest)
    config = load_inventory(ws)[device]
    result = workflows.deploy(dest, device, formats=["onnx"], workspace=ws, max_models=2,
                              settings=config.settings(**settings) if settings else None)
    return result, json.loads((dest / "front.json").read_text())["deployed"][device]


def _check_levels(ws, statistic="median_ms"):
    """The profile's level of each check subnet: from the batch of reference subnets measured again after the
    profile where it is in it, else from the check batches."""
    levels: dict[str, list[float]] = {}
    again: dict[str, list[float]] = {}
    for rec in MeasurementStore.for_device(ws, "cpu").records():
        if rec.kind == "check":
            (levels if rec.role in CHECK_PHASES else again).setdefault(rec.key, []).append(
                getattr(rec.measurement, statistic))
    return {k: float(np.median(again.get(k, v))) for k, v in levels.items()}


def test_deploy_remeasures_the_profiles_reference_checks_under_the_same_settings(searched):
    ws, run = searched
    result, deployed = _deploy(ws, run, **QUICK)
    check = deployed["session_check"]
    levels = _check_levels(ws)
    assert len(levels) == 3 and set(check["checks"]) == set(levels)
    assert check["measured"] == 3
    for key, row in check["checks"].items():
        assert row["profile_ms"] == pytest.approx(levels[key])
        assert row["start_ms"] > 0 and row["end_ms"] > 0 and row["with_front_ms"] > 0
    # the level is taken from the front's own batch (the checks ride along there): the front's conditions
    ratios = [r["with_front_ms"] / r["profile_ms"] for r in check["checks"].values()]
    assert check["ratio"] == pytest.approx(float(np.median(ratios)), rel=1e-3)
    assert check["settings_differ"] == {}  # measured like the profile, and it says so by naming nothing
    # the front's error as predicted and scaled to the session, row by row
    measured = [r for r in result.rows if (r.get("measured") or {}).get("latency_ms[cpu]")]
    errors = check["front_error_pct"]
    assert len(errors["predicted"]) == len(errors["scaled"]) == len(measured) >= 1
    for row, raw, scaled in zip(measured, errors["predicted"], errors["scaled"]):
        p, m = row["values"]["latency_ms[cpu]"], row["measured"]["latency_ms[cpu]"]
        assert raw == pytest.approx(100 * (p - m) / m, abs=0.01)
        assert scaled == pytest.approx(100 * (p * check["ratio"] - m) / m, abs=0.01)
    assert "Reference check, cpu: the profile" in result.report.read_text()
    # the check subnets measured along are not front rows
    assert not set(check["checks"]) & {r["key"] for r in result.rows}


def test_other_measurement_settings_are_named(searched):
    ws, run = searched
    config = load_inventory(ws)["cpu"]
    dest = ws.root / "runs/given-settings"
    shutil.copytree(run, dest)
    # the device's own settings given explicitly (50 runs, 10 warm-up, 3 rounds), against a profile of 3 x 1 x 1
    workflows.deploy(dest, "cpu", formats=["onnx"], workspace=ws, max_models=1, settings=config.settings())
    deployed = json.loads((dest / "front.json").read_text())["deployed"]["cpu"]
    differ = deployed["session_check"]["settings_differ"]
    assert differ["runs"] == [3, 50] and differ["rounds"] == [1, 3] and differ["warmup"] == [1, 10]
    assert deployed["settings"]["from"] == "given" and deployed["settings"]["runs"] == 50
    assert settings_summary(json.loads((dest / "front.json").read_text()), "cpu") == (
        "cpu: timed with the settings given: 50 runs over 3 rounds, 10 warm-up runs before each")


def test_deploy_times_models_as_the_profile_did(searched, tmp_path):
    """No settings given: the device measures with its profile's runs, rounds and warm-up (3 x 1 x 1 here, where
    the device's own are 50 x 3 x 10), every model and check subnet alike; a device without a profile of this
    space measures with its own."""
    ws, run = searched
    result, deployed = _deploy(ws, run)
    assert deployed["session_check"]["settings_differ"] == {}
    assert deployed["settings"] == {"warmup": 1, "runs": 3, "min_seconds": 0.0, "rounds": 1, "fresh_session": False,
                                    "from": "profile"}
    line = "cpu: timed as its profile did: 3 runs over 1 round, 1 warm-up run before each"
    assert settings_summary(result.run.read_front(), "cpu") == line and line in result.report.read_text()
    measured = [r for r in result.rows if (r.get("measured") or {}).get("latency_ms[cpu]")]
    assert measured
    for row in measured:  # the sidecar counts the timed samples: 3, not the device's 50
        sidecar = json.loads((result.run.path / row["models"]["onnx-fp32"]).with_name("model.json").read_text())
        assert sidecar["deployed"]["cpu/onnx-fp32"]["runs"] == 3
    # the profile's settings are read, not trusted: unusable values keep the device's own
    profile_file = next((ws.root / "profiles" / "cpu").glob("*.json"))
    saved = profile_file.read_text()
    try:
        doc = json.loads(saved)
        doc["settings"].update(runs="many", rounds=0, warmup=2.5, min_seconds=float("nan"), fresh_session=1)
        profile_file.write_text(json.dumps(doc))
        _, deployed = _deploy(ws, run)
    finally:
        profile_file.write_text(saved)
    assert deployed["settings"] == {"warmup": 10, "runs": 50, "min_seconds": 0.0, "rounds": 3, "fresh_session": False,
                                    "from": "profile"}
    other_result, other = _deploy(ws, run, device="cpu2")  # never profiled
    assert other["settings"]["from"] == "device" and other["settings"]["runs"] == 50
    assert settings_summary(other_result.run.read_front(), "cpu2").startswith(
        "cpu2: timed with its own settings (it has no profile of this space): 50 runs over 3 rounds")


PROFILED_STATE = {"cpu_freq_mhz": [1500.0, 1500.0], "temperature_c": {"zone0:cpu": 45.0}}


def test_a_device_running_at_another_speed_than_profiled_is_flagged(searched, tmp_path, capsys):
    ws, run = searched
    store = MeasurementStore.for_device(ws, "cpu").path
    profile = next((ws.root / "profiles" / "cpu").glob("*.json"))
    saved, saved_profile = store.read_text(), profile.read_text()
    lines = []
    for line in saved.splitlines():  # as if the device had been 4x slower while it was profiled, at 1.5 GHz, 45 °C
        rec = json.loads(line)
        if rec.get("kind") == "check":
            for field in ("median_ms", "mean_ms", "min_ms", "p90_ms", "std_ms"):
                rec["measurement"][field] *= 4
            rec["measurement"]["state_before"] = PROFILED_STATE
        lines.append(json.dumps(rec))
    store.write_text("\n".join(lines) + "\n")
    data = json.loads(saved_profile)
    data["fingerprint"]["governor"] = "ondemand"
    profile.write_text(json.dumps(data))
    try:
        dest = tmp_path / "run"
        shutil.copytree(run, dest)
        try:
            main(["deploy", str(dest), "--device", "cpu", "--format", "onnx", "-w", str(ws.root)])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    finally:
        store.write_text(saved)
        profile.write_text(saved_profile)
    out = " ".join(capsys.readouterr().out.split())
    check = json.loads((dest / "front.json").read_text())["deployed"]["cpu"]["session_check"]
    assert code == 0
    assert check["ratio"] < 0.5 and check["shifted"] is True
    assert "not in the state it was profiled in" in out
    # the device's conditions while profiled against now (what this machine reports: on a VM often nothing)
    profiled = check["conditions"]["profile"]
    assert profiled == {"governor": "ondemand", "cpu_freq_mhz": 1500.0, "temperature_c": 45.0}
    here = device_conditions([device_state()], fingerprint().get("governor"))
    assert set(check["conditions"]["now"]) == set(here)
    assert check["conditions_changed"] == conditions_changed(profiled, check["conditions"]["now"])
    assert ("the device changed since it was profiled" in out) == bool(check["conditions_changed"])


def test_a_device_without_a_profile_is_deployed_unchecked(searched):
    ws, run = searched
    _, deployed = _deploy(ws, run, device="cpu2")
    assert "session_check" not in deployed and deployed["runtime"] == "onnxruntime"
