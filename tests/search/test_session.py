"""A search into a run folder: files written, evaluations logged as they happen, resume, Ctrl-C, report."""

import csv
import json

import pytest

from hwnas.errors import SearchError
from hwnas.objective import Constraint, FunctionObjective
from hwnas.search.feasibility import BudgetInfeasible
from hwnas.search.session import run_search


def _interrupting(objective, after):
    calls = []

    def fn(archs):
        calls.extend(archs)
        if len(calls) > after:
            raise KeyboardInterrupt
        return objective.evaluate(archs)

    return FunctionObjective(objective.name, fn, objective.direction, objective.expensive), calls


def test_search_writes_the_run_folder(tmp_path, nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    out = tmp_path / "run"
    outcome = run_search(nb201_table.space, objectives, out, budget=40, algorithm="nsga2", seed=1,
                         normalization=norm, settings={"note": "test"},
                         extra=lambda r: {"predicted": {"latency_ms[raspi4]": r.values["latency_ms[raspi4]"] * 1.1}})
    lines = (out / "evaluated.jsonl").read_text().splitlines()
    assert len(lines) == 40 and json.loads(lines[0])["eval"] == 1
    front = json.loads((out / "front.json").read_text())
    assert len(front["front"]) == len(outcome.front) >= 2
    with open(out / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["key"] for r in rows] == [r["key"] for r in front["front"]]
    assert {"arch", "top1", "latency_ms[raspi4]", "predicted_latency_ms[raspi4]"} <= set(rows[0])
    hv = json.loads((out / "hypervolume.json").read_text())
    assert hv["normalization"]["reference"] == [1.0, 1.0] and len(hv["history"]) == 40
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and front["front"][0]["key"] in html
    assert (out / "pareto.png").stat().st_size > 1000
    settings = json.loads((out / "settings.json").read_text())
    assert settings["note"] == "test" and settings["algorithm"] == "nsga2"


def test_interrupted_search_keeps_its_evaluations_and_resumes(tmp_path, nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    out = tmp_path / "run"
    broken, calls = _interrupting(objectives[0], after=25)
    with pytest.raises(KeyboardInterrupt):
        run_search(nb201_table.space, [broken, objectives[1]], out, budget=60, algorithm="random", seed=4,
                   normalization=norm)
    kept = (out / "evaluated.jsonl").read_text().splitlines()
    assert len(kept) == 25 and (out / "front.json").is_file()
    counted, calls2 = _interrupting(objectives[0], after=10**9)
    outcome = run_search(nb201_table.space, [counted, objectives[1]], out, budget=60, algorithm="random", seed=4,
                         normalization=norm)
    assert outcome.resumed == 25 and len(calls2) == 35  # only the missing ones are evaluated
    keys = [json.loads(line)["key"] for line in (out / "evaluated.jsonl").read_text().splitlines()]
    assert len(keys) == 60 == len(set(keys))
    fresh = run_search(nb201_table.space, objectives, tmp_path / "fresh", budget=60, algorithm="random", seed=4,
                       normalization=norm)
    assert [r.key for r in fresh.evaluator.records] == keys  # resuming changed nothing


def test_a_run_folder_refuses_other_settings(tmp_path, nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    run_search(nb201_table.space, objectives, tmp_path, budget=10, algorithm="random", normalization=norm)
    with pytest.raises(SearchError, match="other settings"):
        run_search(nb201_table.space, objectives, tmp_path, budget=10, algorithm="nsga2", normalization=norm)


def test_impossible_latency_budget_fails_before_any_evaluation(tmp_path, nb201_table):
    t = nb201_table
    acc = t.objective("cifar10_test_acc", direction="max", name="top1", missing="worst")
    lat = t.objective("cifar10_raspi4_latency_ms", name="latency_ms[raspi4]", expensive=False, missing="worst")
    with pytest.raises(BudgetInfeasible, match="closest found"):
        run_search(t.space, [acc, lat], tmp_path / "run", budget=10, constraints=[Constraint(lat, upper=0.01)])
    assert not (tmp_path / "run" / "evaluated.jsonl").exists()


def test_constrained_front_holds_only_feasible_models(tmp_path, nb201_table):
    t = nb201_table
    acc = t.objective("cifar10_test_acc", direction="max", name="top1", missing="worst")
    lat = t.objective("cifar10_raspi4_latency_ms", name="latency_ms[raspi4]", expensive=False, missing="worst")
    outcome = run_search(t.space, [acc, lat], tmp_path / "run", budget=40, algorithm="nsga2",
                         constraints=[Constraint(lat, upper=30.0)])
    assert outcome.front and all(r["values"]["latency_ms[raspi4]"] <= 30.0 for r in outcome.front)


def test_reused_records_spend_no_budget_and_are_never_evaluated_again(tmp_path, nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    first = run_search(nb201_table.space, objectives, tmp_path / "a", budget=30, algorithm="random", seed=2,
                       normalization=norm)
    # the second search measures top-1 again only for archs the first did not: latency is recomputed from its
    # objective, top-1 is taken from the records (changed here, so that taking it is visible)
    given = {r.key: r.values["top1"] - 50.0 for r in first.evaluator.records}
    reused = [type(r)(r.arch, {"top1": given[r.key]}, r.index, r.time_s, {"reused_from": "a"})
              for r in first.evaluator.records]
    counted, calls = _interrupting(objectives[0], after=10**9)
    latency = FunctionObjective(objectives[1].name, objectives[1].evaluate, objectives[1].direction)  # cheap here
    outcome = run_search(nb201_table.space, [counted, latency], tmp_path / "b", budget=25,
                         algorithm="accelerated", seed=2, normalization=norm, reuse=reused)
    ev = outcome.evaluator
    assert outcome.reused == 30 and ev.spent == 25 and len(ev.records) == 55
    assert not {a.key for a in calls} & set(given)  # no reused arch evaluated again
    lines = (tmp_path / "b" / "evaluated.jsonl").read_text().splitlines()
    assert [json.loads(line)["eval"] for line in lines] == list(range(1, 26))  # only its own, numbered from 1
    for rec in ev.records[:30]:
        assert rec.index == 0 and rec.values["top1"] == given[rec.key]
        assert rec.values["latency_ms[raspi4]"] == objectives[1].evaluate([rec.arch])[0]
    rows = json.loads((tmp_path / "b" / "front.json").read_text())["front"]
    assert all((r["eval"] == 0) == (r.get("reused_from") == "a") for r in rows)
    with pytest.raises(SearchError, match="has no top1"):
        run_search(nb201_table.space, [objectives[0], latency], tmp_path / "c", budget=5, algorithm="random", seed=2,
                   normalization=norm, reuse=[type(r)(r.arch, {"other": 1.0}, 0) for r in reused[:1]])
