"""Bad inputs give a clear error and overwrite nothing: newer, corrupt or truncated files, wrong spaces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.errors import InvalidArchError, PredictorError
from hwnas.predictors import FORMAT_VERSION, create_predictor, load_predictor


@pytest.fixture()
def saved(tmp_path, ofa, ofa_table):
    predictor = create_predictor("lut", space=ofa, table=ofa_table).fit()
    return predictor, predictor.save(tmp_path / "lut.json")


def test_newer_format_is_refused_and_not_overwritten(saved):
    predictor, path = saved
    data = json.loads(path.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    with pytest.raises(PredictorError, match="newer"):
        load_predictor(path)
    with pytest.raises(PredictorError, match="not overwriting"):
        predictor.save(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_file_is_a_clear_error(saved, cut):
    _, path = saved
    text = path.read_text()
    path.write_text(text[: int(len(text) * cut)])
    with pytest.raises(PredictorError, match="corrupt or truncated"):
        load_predictor(path)


def test_not_a_predictor_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(PredictorError, match="not an hwnas predictor"):
        load_predictor(path)
    with pytest.raises(PredictorError, match="does not exist"):
        load_predictor(tmp_path / "missing.json")


def test_malformed_state_is_a_clear_error(saved):
    _, path = saved
    data = json.loads(path.read_text())
    del data["state"]["table_ms"]
    path.write_text(json.dumps(data))
    with pytest.raises(PredictorError, match="malformed"):
        load_predictor(path)


def test_file_for_another_space_is_refused(saved):
    _, path = saved
    with pytest.raises(PredictorError, match="fitted for space 'ofa-mbv3'"):
        load_predictor(path, space="nasbench201")
    with pytest.raises(PredictorError, match="other options"):
        load_predictor(path, space={"name": "ofa-mbv3", "width_mult": 1.2})


def test_arch_from_the_wrong_space_names_the_field(saved):
    predictor, _ = saved
    with pytest.raises(InvalidArchError):
        predictor.predict([{"arch_str": "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"}])
    with pytest.raises(InvalidArchError, match="'r'"):
        predictor.predict([{"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 999}])


def test_unfitted_and_mismatched_fits_are_clear(ofa, ofa_table):
    predictor = create_predictor("lut-calibrated", space=ofa, table=ofa_table)
    archs = ofa.sample(np.random.default_rng(0), 3)
    with pytest.raises(PredictorError, match="not fitted"):
        predictor.predict(archs)
    with pytest.raises(PredictorError, match="3 archs but 2 values"):
        predictor.fit(archs, [1.0, 2.0])
    with pytest.raises(PredictorError, match="positive"):
        predictor.fit(archs, [1.0, -2.0, 3.0])
    with pytest.raises(PredictorError, match="bad options"):
        create_predictor("lut", space=ofa, tabel={})
