"""`hwnas fit --measurements FILE.csv`: a predictor from whole-subnet measurements made elsewhere (DyNAS-T / HELP
style CSV), with its held-out report; a bad row is named in one line and nothing is written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hwnas.cli.app import main
from hwnas.predictors import load_predictor
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
from hwnas.workflows import init_workspace


def _run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


def test_fit_from_a_measurements_csv_reports_held_out_error(tmp_path, capsys):
    ws, _ = init_workspace(tmp_path / "ws")
    ckpt = demo_checkpoint_path()
    space = load_checkpoint(ckpt).space
    archs = space.sample(np.random.default_rng(0), 40)
    path = tmp_path / "measured.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "latency_ms"])
        for a in archs:
            writer.writerow([json.dumps(a.to_dict()), 0.05 + 0.01 * space.flops(a)])
    code, out, err = _run(["fit", "local-cpu-ort", "--measurements", str(path), "--supernet", str(ckpt),
                           "-w", str(ws.root), "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["trained_on"] == 40 and doc["held_out"]["n"] == 8 and doc["held_out"]["metrics"]["spearman"] > 0.8
    predictor = load_predictor(doc["predictor"], space=space)
    assert predictor.meta_["runtime"] == "onnxruntime" and predictor.meta_["device"] == "local-cpu-ort"

    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text() + '{"ks": [1]},0.3\n')
    target = tmp_path / "never.json"
    code, _, err = _run(["fit", "local-cpu-ort", "--measurements", str(bad), "--supernet", str(ckpt),
                         "-w", str(ws.root), "--out", str(target)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "row 42 field arch" in err and not target.exists()
