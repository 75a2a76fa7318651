"""The search report (report.html) and the front files' budget columns: the hypervolume on a 0-100% scale,
MMACs named as such, the settings as a readable table, the latency predictor's held-out scatter plot, model sizes,
and which front models keep their latency budget (predicted, on the interval's upper end, measured)."""

import csv
import json
import re

import numpy as np
import pytest

from hwnas.objective import Constraint
from hwnas.search import Normalization
from hwnas.search.report import hypervolume_share, settings_table, write_report
from hwnas.search.runfolder import RunFolder, budget_checks
from hwnas.search.session import run_search
from hwnas.workspace import Workspace

LAT = "latency_ms[raspi4]"


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _section(page, title):
    """The HTML from the <h2> named `title` to the next <h2> (or the end)."""
    start = page.index(f"<h2>{title}")
    end = page.find("<h2>", start + 4)
    return page[start:end if end > 0 else None]


@pytest.fixture
def budget_run(tmp_path, nb201_table, nb201_problem):
    """A 30-evaluation NAS-Bench-201 run with a latency budget on the Raspberry Pi 4 at the table's median."""
    objectives, norm, _ = nb201_problem
    budget = float(np.median(nb201_table.data["cifar10_raspi4_latency_ms"]))
    out = tmp_path / "run"
    run_search(nb201_table.space, objectives, out, budget=30, algorithm="random", seed=3, normalization=norm,
               constraints=[Constraint(objectives[1], upper=budget)],
               settings={"latency_budgets_ms": {"raspi4": budget}})
    return RunFolder(out), budget


def test_hypervolume_is_a_share_of_its_box_and_never_over_100_percent(tmp_path, nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    # bounds from a narrow sample (as the default normalisation takes them): the front goes past the latency bound
    lat = nb201_table.data["cifar10_raspi4_latency_ms"]
    narrow = Normalization((norm.lower[0], float(np.median(lat))), norm.upper, (1.0, 1.0))
    out = tmp_path / "run"
    run_search(nb201_table.space, objectives, out, budget=40, algorithm="random", seed=2, normalization=narrow)
    stored = json.loads((out / "hypervolume.json").read_text())["history"][-1]["hypervolume"]
    assert stored > 1.0  # what the report used to print as "Hypervolume 1.0xxx"
    page = write_report(RunFolder(out)).read_text()
    shares = re.findall(r"Hypervolume ([\d.]+)%", page)
    assert len(shares) == 1 and 0 < float(shares[0]) <= 100
    assert "reference box" in page and "past the normalisation's bound on latency_ms[raspi4]" in page
    assert f"Hypervolume {stored:.4f}" not in page


def test_hypervolume_share_is_100_percent_for_one_model_best_on_everything():
    doc = {"objectives": [{"name": "top1", "direction": "max", "unit": "%"},
                          {"name": LAT, "direction": "min", "unit": "ms"}],
           "evaluations": 1, "front": [{"values": {"top1": 100.0, LAT: 1.0}}]}
    hv = {"objectives": ["top1", LAT], "history": [{"evals": 1, "hypervolume": 1.0}],
          "normalization": {"lower": [-100.0, 1.0], "upper": [0.0, 5.0], "reference": [1.0, 1.0]}}
    found = hypervolume_share(doc, hv)
    assert found["share"] == pytest.approx(1.0)
    assert found["best"] == [100.0, 1.0] and found["reference"] == [0.0, 5.0]  # in the objectives' own units
    doc["front"][0]["values"] = {"top1": 50.0, LAT: 3.0}  # half of each range: a quarter of the box
    assert hypervolume_share(doc, hv)["share"] == pytest.approx(0.25)


def test_front_table_names_multiply_accumulates_mmacs_and_gives_params(budget_run, nb201_table):
    run, _ = budget_run
    page = write_report(run).read_text()
    front = _section(page, "Front")
    assert "MFLOPs" not in page and "<th>MMACs</th>" in front and "<th>params (M)</th>" in front
    first = run.read_front()["front"][0]
    arch = nb201_table.space.validate(first["arch"])
    cells = re.findall(r"<td>([^<]*)</td>", front.split("</tr>")[1])
    assert f"{nb201_table.space.flops(arch):.1f}" in cells and f"{nb201_table.space.params(arch):.3f}" in cells


def test_settings_are_a_table_without_the_workspace_s_absolute_paths(tmp_path, budget_run):
    run, _ = budget_run
    ws = Workspace.init(tmp_path / "ws")
    settings = run.read_settings()
    settings.update({"workspace": str(ws.root), "supernet": str(ws.root / "supernets" / "net.pt"),
                     "reuse": [str(ws.root / "runs" / "first")], "resolutions": list(range(128, 228, 4))})
    run.settings_path.write_text(json.dumps(settings))
    page = write_report(run).read_text()
    table = _section(page, "Settings")
    assert str(ws.root) not in table and str(tmp_path) not in table
    assert "supernets/net.pt" in table and "runs/first" in table
    assert "{" not in table and '"' not in table.replace('class="', "")  # no raw JSON
    assert "128, 132, 136" in table and "(25 in all)" in table and "228" not in table
    rows = dict(settings_table(settings))
    assert rows["workspace"].startswith("ws/") and rows["objectives"].startswith("top1 (max")
    assert next(iter(dict(settings_table(settings)))) == "workspace"  # the folder the paths are relative to


def test_front_csv_and_json_say_which_models_keep_the_budget(budget_run):
    run, budget = budget_run
    rows = _csv(run.front_csv)
    assert rows and all(r["within_budget[raspi4]"] == ("true" if float(r[LAT]) <= budget else "false")
                        for r in rows)
    doc = run.read_front()
    assert all(r["within_budget"] == {"raspi4": True} for r in doc["front"])
    # after deploy (which rewrites the front through write_front): measured latency against the budget
    doc["front"][0]["measured"] = {LAT: budget * 1.5, "latency_ms[raspi4,tflite]": budget * 0.5}
    run.write_front(doc)
    rows = _csv(run.front_csv)
    assert rows[0]["within_budget_measured[raspi4]"] == "false"
    assert rows[0]["within_budget_measured[raspi4,tflite]"] == "true"
    assert rows[1]["within_budget_measured[raspi4]"] == ""  # not measured
    assert run.read_front()["front"][0]["within_budget_measured"] == {"raspi4": False, "raspi4,tflite": True}
    page = write_report(run).read_text()
    front = _section(page, "Front")
    assert front.count('<tr class="over">') == 1 and "raspi4: <b>over</b>" in front
    assert "1 of 2 deployed measurements within" in front


def test_budget_checks_hold_the_point_prediction_and_the_interval_s_upper_end():
    row = {"values": {"top1": 70.0, "latency_ms[pi]": 9.0, "latency_ms_upper[pi]": 12.0, "latency_ms[cpu]": 3.0}}
    assert budget_checks(row, {"pi": 10.0}) == {"within_budget": {"pi": True}, "within_budget_upper": {"pi": False}}
    assert budget_checks(row, {"pi": 8.0, "cpu": 5.0}) == {"within_budget": {"pi": False, "cpu": True},
                                                          "within_budget_upper": {"pi": False}}
    assert budget_checks(row, {}) == {}


def test_a_run_without_budgets_gets_no_budget_columns(tmp_path, nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    run_search(nb201_table.space, objectives, tmp_path, budget=5, algorithm="random", normalization=norm)
    assert not any(c.startswith("within_budget") for c in _csv(tmp_path / "front.csv")[0])
    front = _section((tmp_path / "report.html").read_text(), "Front")
    assert "<th>budget</th>" not in front and "Latency budgets" not in front


def _profile_and_predictor(ws, table, n=40):
    """A profile of `n` measured NAS-Bench-201 subnets on `raspi4` (latency from the table), the first half for
    training (calibration) and the rest held out (reference), and a gbm predictor fitted on it."""
    from hwnas.predictors.fitting import fit_from_profile
    from hwnas.profiling.profile import load_profile

    archs = table.archs[:n]
    ms = table.lookup(archs, "cifar10_raspi4_latency_ms")
    rows = [{"key": a.key, "arch": a.to_dict(), "median_ms": float(v), "min_ms": float(v) * 0.95, "n": 10}
            for a, v in zip(archs, ms, strict=True)]
    profile = {"format": "hwnas-profile", "format_version": 1, "device": "raspi4", "space": table.space.config(),
               "runtime": "onnxruntime", "precision": "fp32", "threads": 1, "operators": {},
               "calibration": rows[: n // 2], "reference": rows[n // 2:]}
    path = ws.profile_dir("raspi4") / "nasbench201-onnxruntime-fp32.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile))
    loaded = load_profile(path)  # a profile as hwnas reads it
    predictor = fit_from_profile("gbm", loaded, profile_path=path, allow_drift=True, min_samples_trees=10,
                                 n_estimators=20)
    predictor.save(ws.predictor_path("raspi4", "nasbench201", "onnxruntime"))


def test_report_shows_the_latency_predictor_s_held_out_scatter(tmp_path, budget_run, nb201_table):
    run, _ = budget_run
    ws = Workspace.init(tmp_path / "ws")
    settings = run.read_settings()
    settings.update({"workspace": str(ws.root), "devices": ["raspi4"], "runtimes": {"raspi4": "onnxruntime"}})
    run.settings_path.write_text(json.dumps(settings))
    missing = _section(write_report(run).read_text(), "Latency predictors")
    assert "no predictor file" in missing and "<img" not in missing
    _profile_and_predictor(ws, nb201_table)
    section = _section(write_report(run).read_text(), "Latency predictors")
    assert section.count('<img alt="raspi4: predicted against measured latency" src="data:image/png;base64,') == 1
    assert "on 20 measured subnets it was not fitted on: MAPE" in section
    assert "predictors/raspi4-nasbench201-onnxruntime.json" in section and str(ws.root) not in section


def test_a_run_with_no_predictor_says_so_in_one_sentence(budget_run):
    run, _ = budget_run
    section = _section(write_report(run).read_text(), "Latency predictors")
    assert "used no latency predictor" in section and "<img" not in section


def test_report_gives_each_deployed_model_s_file_size(budget_run):
    run, _ = budget_run
    doc = run.read_front()
    model = run.path / "models" / doc["front"][0]["key"] / "model.onnx"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"\0" * 2500)
    doc["front"][0]["models"] = {"onnx-fp32": str(model.relative_to(run.path))}
    run.write_front(doc)
    front = _section(write_report(run).read_text(), "Front")
    assert f"<code>models/{doc['front'][0]['key']}/model.onnx</code> 2.5 kB" in front


def test_search_with_a_budget_then_deploy_marks_measured_against_the_budget(setup, cli, tmp_path):
    """The real path: `hwnas search --latency-ms` then `hwnas deploy`: front.csv gets the budget columns, the report
    the file size of each exported model and measured latency against the budget."""
    ws, ckpt, _ = setup
    out = tmp_path / "run"
    code, _, err = cli(["search", "--space", "ofa-mbv3", "--supernet", str(ckpt), "--data", "mnist5k", "--device",
                        "cpu", "--limit", "50", "--out", str(out), "-w", str(ws.root), "--evals", "3",
                        "--algorithm", "random", "--latency-ms", "cpu=1000"])
    assert code == 0, err
    rows = _csv(out / "front.csv")
    assert all(r["within_budget[cpu]"] == "true" and r["within_budget_upper[cpu]"] == "true" for r in rows)
    code, _, err = cli(["deploy", str(out), "--device", "cpu", "--format", "onnx", "-w", str(ws.root)])
    assert code == 0, err
    rows = _csv(out / "front.csv")
    assert all(r["within_budget_measured[cpu]"] == "true" for r in rows)  # a CPU measures these well under 1 s
    page = (out / "report.html").read_text()
    front = _section(page, "Front")
    sizes = re.findall(r"model\.onnx</code> ([\d.]+) (kB|MB)", front)
    assert len(sizes) == len(rows)
    first = out / rows[0]["model_onnx-fp32"]
    shown = float(sizes[0][0]) * (1e3 if sizes[0][1] == "kB" else 1e6)
    assert shown == pytest.approx(first.stat().st_size, rel=0.01)
    assert f"{len(rows)} of {len(rows)} deployed measurements within" in front
    assert str(ws.root) not in _section(page, "Settings")
