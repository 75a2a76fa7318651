"""Everything the CLI does is one Python call into `hwnas.workflows`: profile -> fit -> predict -> search ->
deploy on this CPU with the shipped demo supernet, each returning a typed result; progress comes as one event
type; deploy --int8 never calibrates on noise."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hwnas import workflows
from hwnas.devices.inventory import add_device
from hwnas.errors import DataError, InventoryError, SearchError
from hwnas.progress import ProgressEvent
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
from hwnas.workspace import Workspace


@pytest.fixture(scope="module")
def python_path(tmp_path_factory):
    """The whole path in Python on a new workspace; returns what each call gave and every progress event."""
    ws = Workspace.init(tmp_path_factory.mktemp("ws"))
    add_device(ws, "cpu", transport="local", runtime="onnxruntime", threads=1)
    ckpt = demo_checkpoint_path()
    space = load_checkpoint(ckpt).space
    events: list[ProgressEvent] = []
    profiled = workflows.profile("cpu", space, workspace=ws, operators=False, calibration=12, reference=0, runs=3,
                                 warmup=1, rounds=1, jobs=1, progress=events.append)
    fitted = workflows.fit("cpu", "gbm", workspace=ws)
    _, _, predicted = workflows.predict("cpu", space.sample(np.random.default_rng(5), 3), workspace=ws)
    outcome = workflows.search(ckpt, ["cpu"], workspace=ws, evals=3, limit=50, algorithm="random",
                               out=ws.runs_dir / "r", progress=events.append)
    deployed = workflows.deploy(outcome.run.path, "cpu", formats=["onnx"], workspace=ws, max_models=2,
                                progress=events.append)
    return ws, profiled, fitted, predicted, outcome, deployed, events


def test_profile_fit_predict_search_deploy_are_one_call_each(python_path):
    ws, profiled, fitted, predicted, outcome, deployed, _ = python_path
    assert profiled.path.is_file() and profiled.archs == 12 and profiled.operators == 0
    assert fitted.path == ws.predictor_path("cpu", fitted.space, "onnxruntime") and fitted.path.is_file()
    assert len(fitted.trained_on) == 12
    assert len(predicted) == 3 and all(p.latency_ms > 0 for p in predicted)
    assert all(p.lo_ms is not None and p.lo_ms <= p.latency_ms <= p.hi_ms for p in predicted)
    assert outcome.evaluator.spent == 3 and outcome.front
    assert json.loads((outcome.run.path / "settings.json").read_text())["devices"] == ["cpu"]
    measured = [r for r in deployed.rows if (r.get("measured") or {}).get("latency_ms[cpu]")]
    assert 1 <= len(measured) <= 2
    for row in measured:
        assert (deployed.run.path / row["models"]["onnx-fp32"]).is_file()
    assert deployed.report.is_file()


def test_progress_comes_as_one_event_type_from_every_stage(python_path):
    *_, events = python_path
    assert all(isinstance(e, ProgressEvent) for e in events)
    stages = {e.stage for e in events}
    assert {"archs", "search", "export", "measure"} <= stages
    last = {e.stage: e for e in events}
    assert last["search"].done == last["search"].total == 3
    assert last["archs"].done == last["archs"].total == 12


def test_deploy_int8_refuses_to_calibrate_on_noise(python_path, tmp_path):
    _, _, _, _, outcome, _, _ = python_path
    run = tmp_path / "run"
    shutil.copytree(outcome.run.path, run, ignore=shutil.ignore_patterns("models"))
    settings = json.loads((run / "settings.json").read_text())
    settings["data"] = str(tmp_path / "gone.npz")
    (run / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(DataError, match="deploy without --int8"):
        workflows.deploy(run, "cpu", formats=["onnx"], int8=True, workspace=outcome.run.path.parents[1])
    assert not (run / "models").exists()


def test_search_checks_cheap_inputs_before_loading_anything(tmp_path):
    ws = Workspace.init(tmp_path)
    with pytest.raises(SearchError, match="not searched"):
        workflows.search(tmp_path / "missing.pt", ["cpu"], workspace=ws, budgets={"pixel": 30})
    with pytest.raises(SearchError, match="positive number"):
        workflows.search(tmp_path / "missing.pt", ["cpu"], workspace=ws, budgets={"cpu": -3})
    with pytest.raises(InventoryError, match="no device 'cpu'"):
        workflows.search(tmp_path / "missing.pt", ["cpu"], workspace=ws)


def test_a_budget_is_held_on_the_upper_end_of_the_interval_or_says_why_not():
    from hwnas.objective import FunctionObjective
    from hwnas.predictors import create_predictor
    from hwnas.workflows.search import budget_constraint

    space = load_checkpoint(demo_checkpoint_path()).space
    archs = space.sample(np.random.default_rng(0), 60)
    y = np.array([0.05 + 0.01 * space.flops(a) for a in archs]) * np.random.default_rng(1).lognormal(0, 0.05, 60)
    predictor = create_predictor("gbm", space=space, n_estimators=30).fit(archs, y)
    point = FunctionObjective("latency_ms[cpu]", lambda a: predictor.predict(list(a)))
    constraint, why = budget_constraint(predictor, "cpu", point, 1.0, 0.95)
    assert constraint.name == "latency_ms_upper[cpu]" and "95% interval" in why
    probe = space.sample(np.random.default_rng(2), 20)
    assert np.all(constraint.objective.evaluate(probe) > point.evaluate(probe))  # a margin, never below
    constraint, why = budget_constraint(predictor, "cpu", point, 1.0, None)
    assert constraint.objective is point and why.startswith("none")
    del predictor.conformal_  # a file fitted before intervals existed
    constraint, why = budget_constraint(predictor, "cpu", point, 1.0, 0.95)
    assert constraint.objective is point and "no interval" in why
