"""`hwnas search` and `hwnas deploy` end to end on a small supernet, and their errors for bad inputs."""

import csv
import json

import pytest


def _search(ws, ckpt, out, *extra):
    return ["search", "--space", "ofa-mbv3", "--supernet", str(ckpt), "--data", "mnist5k", "--device", "cpu",
            "--limit", "100", "--out", str(out), "-w", str(ws.root), *extra]


def _search_on_a_copy_of_cpu(setup, cli, out, device, change):
    """Register `device` (this CPU again) with a copy of `cpu`'s predictor after `change(predictor, space)`,
    then run a 4-evaluation random search for it into `out`."""
    from hwnas.devices.inventory import add_device
    from hwnas.predictors import load_predictor
    from hwnas.supernet import load_checkpoint

    ws, ckpt, _ = setup
    space = load_checkpoint(ckpt).space
    add_device(ws, device, transport="local", runtime="onnxruntime", threads=1)
    predictor = load_predictor(ws.predictors_dir / "cpu-ofa-mbv3-onnxruntime.json", space=space)
    change(predictor, space)
    predictor.save(ws.predictors_dir / f"{device}-ofa-mbv3-onnxruntime.json")
    argv = _search(ws, ckpt, out, "--evals", "4", "--algorithm", "random")
    argv[argv.index("cpu")] = device
    code, _, err = cli(argv)
    assert code == 0, err


def test_search_then_deploy_puts_measured_next_to_predicted(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    out = tmp_path / "run"
    code, stdout, err = cli(_search(ws, ckpt, out, "--evals", "6", "--algorithm", "random"))
    assert code == 0, err
    assert len((out / "evaluated.jsonl").read_text().splitlines()) == 6
    front = json.loads((out / "front.json").read_text())["front"]
    assert front and all(0 <= r["values"]["top1"] <= 100 for r in front)
    code, stdout, err = cli(["deploy", str(out), "--device", "cpu", "--format", "onnx", "-w", str(ws.root)])
    assert code == 0, err
    with open(out / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert all(float(r["measured_latency_ms[cpu]"]) > 0 for r in rows)
    assert all(float(r["latency_ms[cpu]"]) > 0 for r in rows)  # the predicted latency beside it
    sidecar = json.loads((out / rows[0]["model_onnx-fp32"]).with_name("model.json").read_text())
    # what an app needs to feed the model: the searched data's normalisation and class names
    assert sidecar["labels"] == [str(d) for d in range(10)] and sidecar["normalization"]["mean"]
    entry = sidecar["deployed"]["cpu/onnx-fp32"]
    assert entry["measured_ms"] > 0 and entry["predicted_ms"] == pytest.approx(float(rows[0]["latency_ms[cpu]"]),
                                                                               rel=1e-4)
    # the predictor was fitted on medians (the default), so the median is what is measured
    assert entry["statistic"] == "median_ms" and entry["measured_ms"] == entry["median_ms"] >= entry["min_ms"]
    report = (out / "report.html").read_text()
    assert "measured latency_ms[cpu]" in report and "predicted latency_ms[cpu]" in report


def test_deploy_says_which_models_measured_outside_their_prediction_interval(setup, cli, tmp_path):
    import numpy as np

    def widen(predictor, space):  # held-out errors up to e^6: every real measurement lands inside the interval
        archs = space.sample(np.random.default_rng(5), 40)
        predictor.conformalize(archs, predictor.predict(archs) * np.exp(np.linspace(-6, 6, 40)))

    ws = setup[0]
    out = tmp_path / "run"
    _search_on_a_copy_of_cpu(setup, cli, out, "cpu-wide", widen)
    doc = json.loads((out / "front.json").read_text())
    name = "latency_ms[cpu-wide]"
    doc["front"][0]["values"][name] = 1e-9  # a prediction no model can measure inside of
    (out / "front.json").write_text(json.dumps(doc))
    code, stdout, err = cli(["deploy", str(out), "--device", "cpu-wide", "--format", "onnx", "-w", str(ws.root)])
    assert code == 0, err
    front = json.loads((out / "front.json").read_text())["front"]
    for i, row in enumerate(front):
        lo, hi = row["interval_95"]["cpu-wide"]
        predicted, measured = row["values"][name], row["measured"][name]
        assert lo < predicted < hi and hi / lo > 100
        assert row["within_interval_measured"]["cpu-wide"] is (i > 0)
        sidecar = json.loads((out / row["models"]["onnx-fp32"]).with_name("model.json").read_text())
        entry = sidecar["deployed"]["cpu-wide/onnx-fp32"]
        assert entry["interval_95_ms"] == [lo, hi] and entry["in_interval"] is (lo <= measured <= hi) is (i > 0)
    assert f"cpu-wide: {len(front) - 1} of {len(front)} deployed models measured inside" in stdout
    assert "outside: front row 1\n" in stdout
    with open(out / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["within_interval_measured[cpu-wide]"] for r in rows] == ["false"] + ["true"] * (len(rows) - 1)
    assert float(rows[0]["interval_95_hi[cpu-wide]"]) < float(rows[0]["measured_latency_ms[cpu-wide]"])
    report = (out / "report.html").read_text()
    assert report.count("outside 95% interval") == 1 and "measured inside their predictor" in report


def test_deploy_measures_the_statistic_the_predictor_was_fitted_on(setup, cli, tmp_path):
    ws = setup[0]
    out = tmp_path / "run"
    # a device whose predictor was fitted on each model's fastest run (`hwnas fit --statistic min_ms`)
    _search_on_a_copy_of_cpu(setup, cli, out, "cpu-min", lambda p, _: p.meta_.update(statistic="min_ms"))
    code, _, err = cli(["deploy", str(out), "--device", "cpu-min", "--format", "onnx", "-w", str(ws.root)])
    assert code == 0, err
    doc = json.loads((out / "front.json").read_text())
    assert doc["deployed"]["cpu-min"]["statistic"] == "min_ms"
    with open(out / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        entry = json.loads((out / row["model_onnx-fp32"]).with_name("model.json").read_text())["deployed"][
            "cpu-min/onnx-fp32"]
        assert entry["statistic"] == "min_ms" and entry["measured_ms"] == entry["min_ms"] <= entry["median_ms"]
        assert float(row["measured_latency_ms[cpu-min]"]) == pytest.approx(entry["min_ms"], rel=1e-4)
    assert "minimum latency over its timed runs" in (out / "report.html").read_text()


def test_unknown_device_is_one_line(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    argv = _search(ws, ckpt, tmp_path / "r", "--evals", "2")
    argv[argv.index("cpu")] = "pixel99"
    code, _, err = cli(argv)
    assert code == 1 and "no device 'pixel99'" in err and err.count("\n") == 1


def test_budget_no_subnet_meets_reports_the_fastest(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    code, _, err = cli(_search(ws, ckpt, tmp_path / "r", "--evals", "2", "--latency-ms", "cpu=0.0001"))
    # the budget is held on the upper end of the predictor's 95% interval (a margin), and the message says so
    assert code == 1 and "no subnet meets latency_ms_upper[cpu] <= 0.0001" in err and "closest found" in err


def test_empty_dataset_is_refused(setup, cli, tmp_path):
    ws, ckpt, empty = setup
    argv = _search(ws, ckpt, tmp_path / "r", "--evals", "2")
    argv[argv.index("mnist5k")] = str(empty)
    code, _, err = cli(argv)
    assert code == 1 and "error:" in err and ("empty" in err or "no " in err)


def test_supernet_of_another_space_is_refused(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    argv = _search(ws, ckpt, tmp_path / "r", "--evals", "2")
    argv[argv.index("ofa-mbv3")] = "nasbench201"
    code, _, err = cli(argv)
    assert code == 1 and "supernet of space 'ofa-mbv3', not 'nasbench201'" in err


def test_search_for_a_second_device_reuses_the_first_runs_top1(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    first = tmp_path / "cpu"
    code, _, err = cli(_search(ws, ckpt, first, "--evals", "6", "--algorithm", "random"))
    assert code == 0, err
    measured = {json.loads(line)["key"]: json.loads(line)["values"]["top1"]
                for line in (first / "evaluated.jsonl").read_text().splitlines()}
    second = tmp_path / "cpu2"
    argv = _search(ws, ckpt, second, "--evals", "3", "--reuse", str(first))
    argv[argv.index("cpu")] = "cpu2"
    code, _, err = cli(argv)
    assert code == 0, err
    assert f"reused: 6 top-1 evaluations from {first}" in err.splitlines(), err
    own = [json.loads(line) for line in (second / "evaluated.jsonl").read_text().splitlines()]
    assert len(own) == 3 and not {r["key"] for r in own} & set(measured)
    doc = json.loads((second / "front.json").read_text())
    assert doc["evaluations"] == 3
    for row in doc["front"]:
        if row["eval"] == 0:  # reused: the first run's top-1, latency predicted for cpu2
            assert row["reused_from"] == str(first) and row["values"]["top1"] == measured[row["key"]]
            assert row["values"]["latency_ms[cpu2]"] > 0
    n_reused = sum(row["eval"] == 0 for row in doc["front"])
    assert n_reused >= 1  # 6 reused against 3 new: the front holds some
    assert f"{n_reused} of the front's models were evaluated by an earlier run" in (second / "report.html").read_text()
    # a run whose top-1 was measured otherwise does not carry over
    argv = _search(ws, ckpt, tmp_path / "other", "--evals", "2", "--reuse", str(first))
    argv[argv.index("100")] = "50"
    code, _, err = cli(argv)
    assert code == 1 and "--reuse" in err and "another limit (100, here 50)" in err and err.count("\n") == 1
    assert not (tmp_path / "other").exists()  # refused before anything is written


def test_prior_from_a_run_on_other_data_feeds_the_loop_without_counting_as_results(setup, cli, tmp_path,
                                                                                     monkeypatch):
    from hwnas.search.prior import PriorModel

    ws, ckpt, _ = setup
    related = tmp_path / "related"  # top-1 on 50 images: another measurement of top-1, not this search's
    argv = _search(ws, ckpt, related, "--evals", "12", "--algorithm", "random")
    argv[argv.index("100")] = "50"
    code, _, err = cli(argv)
    assert code == 0, err
    asked = []
    predict = PriorModel.predict
    monkeypatch.setattr(PriorModel, "predict", lambda self, archs: asked.append(len(archs)) or predict(self, archs))
    out = tmp_path / "run"
    code, _, err = cli(_search(ws, ckpt, out, "--evals", "22", "--prior", str(related)))
    assert code == 0, err
    assert asked  # the loop's top-1 surrogate consulted the prior
    settings = json.loads((out / "settings.json").read_text())
    assert settings["prior"] == [str(related.resolve())] and settings["prior_archs"] == 12
    doc = json.loads((out / "front.json").read_text())
    assert doc["evaluations"] == 22 and len((out / "evaluated.jsonl").read_text().splitlines()) == 22
    assert all(row["eval"] > 0 and "reused_from" not in row for row in doc["front"])
    # resuming without the prior would search differently: refused, nothing changed
    before = (out / "evaluated.jsonl").read_text()
    code, _, err = cli(_search(ws, ckpt, out, "--evals", "22"))
    assert code == 1 and "other settings (prior)" in err and err.count("\n") == 1
    assert (out / "evaluated.jsonl").read_text() == before


def test_prior_errors_are_one_line_and_write_nothing(setup, cli, tmp_path):
    ws, ckpt, _ = setup
    few = tmp_path / "few"
    argv = _search(ws, ckpt, few, "--evals", "3", "--algorithm", "random")
    argv[argv.index("100")] = "50"
    assert cli(argv)[0] == 0
    cases = [
        (["--prior", str(few)], "3 evaluated archs", "at least 10"),
        (["--prior", str(few), "--algorithm", "random"], "--algorithm random cannot use it", "accelerated or nsga2"),
        (["--prior", str(tmp_path / "nowhere")], "not a search run folder", "hwnas search"),
    ]
    same = tmp_path / "same"
    assert cli(_search(ws, ckpt, same, "--evals", "3", "--algorithm", "random"))[0] == 0
    cases.append((["--prior", str(same)], "measured top-1 exactly as this one does", "--reuse"))
    for extra, what, fix in cases:
        out = tmp_path / "r"
        code, _, err = cli(_search(ws, ckpt, out, "--evals", "2", *extra))
        assert code == 1 and what in err and fix in err and err.count("\n") == 1, (extra, err)
        assert not out.exists()
