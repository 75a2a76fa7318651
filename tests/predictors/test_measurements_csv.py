"""Whole-subnet measurements from a CSV file: DyNAS-T / HELP style rows load, bad rows are named one per line,
and the fit comes with a held-out report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.errors import PredictorError
from hwnas.predictors.measurements import fit_measurements, read_measurements_csv


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_json_and_dynast_style_rows_load(tmp_path, ofa):
    a, b = ofa.sample(np.random.default_rng(0), 2)
    dynast = {**b.to_dict(), "r": [b.to_dict()["r"]], "wid": None}
    path = _write(tmp_path / "m.csv", ["arch,latency_ms", '"' + json.dumps(a.to_dict()).replace('"', '""') + '",3.5',
                                       '"' + repr(dynast) + '",4.25'])
    rows = read_measurements_csv(path, ofa)
    assert [r["key"] for r in rows] == [a.key, b.key] and [r["median_ms"] for r in rows] == [3.5, 4.25]
    path2 = _write(tmp_path / "d.csv", ['Sub-network,Latency (ms)', '"' + repr(dynast) + '",4.25'])
    assert read_measurements_csv(path2, ofa)[0]["key"] == b.key


def test_every_bad_row_is_one_line_naming_file_row_and_field(tmp_path, ofa):
    a = ofa.sample(np.random.default_rng(1), 1)[0]
    good = '"' + json.dumps(a.to_dict()).replace('"', '""') + '"'
    bad_arch = '"' + json.dumps({**a.to_dict(), "r": 999}).replace('"', '""') + '"'
    path = _write(tmp_path / "m.csv", ["arch,latency_ms", f"{good},-50", f"{good},nan", f"{bad_arch},3",
                                       f"{good},1e308", "__import__('os'),3", f"{good},2.0"])
    with pytest.raises(PredictorError) as err:
        read_measurements_csv(path, ofa)
    lines = str(err.value).splitlines()
    assert "5 bad row(s)" in lines[0]
    assert [ln.split(" field ")[0] for ln in lines[1:]] == [f"{path} row {n}" for n in (2, 3, 4, 5, 6)]
    assert "field latency_ms" in lines[1] and "field arch" in lines[3]


def test_missing_columns_say_which_names_work(tmp_path, ofa):
    path = _write(tmp_path / "m.csv", ["foo,bar", "1,2"])
    with pytest.raises(PredictorError, match="no arch column"):
        read_measurements_csv(path, ofa)


def test_fit_measurements_reports_held_out_error_and_coverage(tmp_path, nb201):
    archs, latency, _ = nb201
    idx = np.random.default_rng(2).permutation(len(archs))[:120]
    lines = ["arch_str,latency_ms"] + [f"{archs[i].to_dict()['arch_str']},{float(latency['raspi4'][i])!r}" for i in idx]
    rows = read_measurements_csv(_write(tmp_path / "nb.csv", lines), "nasbench201")
    predictor, report = fit_measurements("gbm", rows, "nasbench201", held_out=0.25)
    assert report.n == 30 and report.metrics["spearman"] > 0.8
    assert report.covered is not None and 0 < report.covered <= 1
    assert predictor.n_fit_ == 120 and len(report.lines()) >= 2
