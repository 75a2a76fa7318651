"""`LUTPredictor.from_ofa_yaml`: OFA's published latency lookup tables (one YAML file per resolution, each entry
`{count, mean, std}` with the mean in ms) read as they are, and a subnet's latency predicted as their sum."""

import pytest
import yaml

from hwnas.errors import PredictorError
from hwnas.predictors import LUTPredictor
from hwnas.space import create

# written as OFA's files are: an operator key in OFA's style, then its count, mean (ms) and std
SMALL = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}
LARGE = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}
STEM = "Conv-input:160x160x3-output:80x80x16"
FIRST_BLOCK = "expanded_conv-input:80x80x16-output:80x80x16-expand:16-kernel:3-stride:1-idskip:1-se:0-hs:0"
DOWNSAMPLE = "expanded_conv-input:80x80x16-output:40x40x24-expand:48-kernel:3-stride:2-idskip:0-se:0-hs:0"
LOGITS = "Logits-input:1x1x1280-output:1000"


def _write_ofa_tables(tmp_path, space):
    """One `<r>_lookup_table.yaml` per resolution holding the operators of SMALL (160) or LARGE (224), each
    operator with its own mean (the head's operators, the same at every resolution, stand in both files), plus
    an operator no arch here runs."""
    means: dict[str, float] = {}
    paths = []
    for arch in (SMALL, LARGE):
        lines = []
        for op in space.operators(space.validate(arch)):
            mean = means.setdefault(op.key, round(0.05 * (len(means) + 1), 4))
            lines += [f"{op.key}:", "  count: 1000", f"  mean: {mean}", "  std: 0.002"]
        lines += ["expanded_conv-input:7x7x160-output:7x7x160-expand:960-kernel:7-stride:1-idskip:1-se:1-hs:1:",
                  "  count: 1000", "  mean: 50.0", "  std: 0.1"]
        path = tmp_path / f"{arch['r']}_lookup_table.yaml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def test_from_ofa_yaml_predicts_the_sum_of_the_table_means(tmp_path):
    space = create("ofa-mbv3")
    paths = _write_ofa_tables(tmp_path, space)
    tables = [yaml.safe_load(p.read_text()) for p in paths]
    assert {STEM, FIRST_BLOCK, DOWNSAMPLE, LOGITS} <= set(tables[0])  # OFA's key layout, written out in full
    model = LUTPredictor.from_ofa_yaml(paths)
    for arch, table in zip((SMALL, LARGE), tables):
        keys = [op.key for op in space.operators(space.validate(arch))]
        expected = sum(table[k]["mean"] for k in keys)
        assert model.predict([arch])[0] == pytest.approx(expected, rel=1e-12)
        assert model.components([arch]).sum() == pytest.approx(expected, rel=1e-12)


def test_from_ofa_yaml_reads_one_file_and_names_an_operator_it_lacks(tmp_path):
    space = create("ofa-mbv3")
    small, _ = _write_ofa_tables(tmp_path, space)
    model = LUTPredictor.from_ofa_yaml(small)
    first = model.predict([SMALL])[0]
    text = small.read_text().replace(f"{FIRST_BLOCK}:\n  count: 1000\n  mean: 0.1\n",
                                     f"{FIRST_BLOCK}:\n  count: 1000\n  mean: 2.1\n")
    assert text != small.read_text()
    small.write_text(text)
    assert LUTPredictor.from_ofa_yaml(str(small)).predict([SMALL])[0] == pytest.approx(first + 2.0)
    with pytest.raises(PredictorError, match="operator Conv-input:224x224x3-output:112x112x16 is not in the"):
        model.predict([LARGE])
