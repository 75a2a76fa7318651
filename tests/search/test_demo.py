"""`hwnas demo --quick`: profile this CPU, fit, search the shipped demo supernet, deploy, measure, report."""

import csv
import json

import pytest

from hwnas.cli.app import main


def test_demo_quick_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    with pytest.raises(SystemExit) as info:
        main(["demo", "--quick", "--out", str(out)])
    captured = capsys.readouterr()
    assert (info.value.code or 0) == 0, captured.err
    run = out / "runs" / "demo-quick"
    assert str(out.resolve()) in captured.out.replace("\n", "")
    assert (out / "predictors" / "local-cpu-ort-ofa-mbv3-onnxruntime.json").is_file()
    assert len((run / "evaluated.jsonl").read_text().splitlines()) == 12
    with open(run / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    deployed = [r for r in rows if r.get("measured_latency_ms[local-cpu-ort]")]
    assert deployed and len(deployed) == min(2, len(rows))
    for r in deployed:
        assert float(r["measured_latency_ms[local-cpu-ort]"]) > 0
        assert float(r["measured_latency_ms[local-cpu-ort,tflite]"]) > 0
        assert (run / r["model_tflite-fp32"]).is_file() and (run / r["model_onnx-fp32"]).is_file()
    front = json.loads((run / "front.json").read_text())
    assert "local-cpu-ort" in front["deployed"]
    report = (run / "report.html").read_text()
    assert "measured latency_ms[local-cpu-ort]" in report and "data:image/png;base64," in report
