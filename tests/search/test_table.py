"""Tabular objectives: CSV tables joined on the arch key, looked up, normalised, filtered."""

import numpy as np
import pytest

from hwnas.errors import SearchError
from hwnas.search.tabular import Table
from hwnas.space import create


def _write(path, header, rows):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def small_tables(tmp_path):
    acc = _write(tmp_path / "acc.csv", "arch_vector,acc", ["3-3-3-3-3-3,94.0", "1-1-1-1-1-1,60.0", "2-2-2-2-2-2,85.5"])
    lat = _write(tmp_path / "lat.csv", "arch_vector,lat_ms,note",
                 ["1-1-1-1-1-1,1.5,a", "3-3-3-3-3-3,40.0,b", "4-4-4-4-4-4,9.0,c"])
    return acc, lat


def test_from_csv_joins_files_on_the_key(small_tables):
    table = Table.from_csv(list(small_tables), key="arch_vector", columns=["acc", "lat_ms"])
    assert len(table) == 2  # only archs present in both files
    space = create("nasbench201")
    archs = [space.validate("333333"), space.validate("111111")]
    assert list(table.lookup(archs, "acc")) == [94.0, 60.0]
    assert list(table.lookup(archs, "lat_ms")) == [40.0, 1.5]


def test_from_csv_takes_numeric_columns_and_renames(small_tables):
    acc, lat = small_tables
    assert Table.from_csv(lat, key="arch_vector").columns == ["lat_ms"]  # "note" is not numeric
    t = Table.from_csv(acc, key="arch_vector", columns={"top1": "acc"})
    assert t.columns == ["top1"]


def test_objective_normalises_and_keeps_direction(small_tables):
    acc, _ = small_tables
    table = Table.from_csv(acc, key="arch_vector")
    obj = table.objective("acc", direction="max", normalize=True)
    assert obj.direction == "max" and obj.expensive
    values = obj.evaluate([table.space.validate(s) for s in ("333333", "111111", "222222")])
    assert np.allclose(values, [1.0, 0.0, (85.5 - 60) / 34])


def test_missing_archs_raise_or_score_worst(small_tables):
    acc, _ = small_tables
    table = Table.from_csv(acc, key="arch_vector")
    outside = table.space.validate("000000")
    with pytest.raises(SearchError, match="not in the table"):
        table.objective("acc").evaluate([outside])
    assert table.objective("acc", direction="max", missing="worst").evaluate([outside])[0] == 60.0
    assert table.objective("acc", direction="min", missing="worst").evaluate([outside])[0] == 94.0


def test_bad_key_or_column_says_what_exists(small_tables):
    acc, _ = small_tables
    with pytest.raises(SearchError, match="no key column"):
        Table.from_csv(acc, key="arch_str")
    with pytest.raises(SearchError, match="not in"):
        Table.from_csv(acc, key="arch_vector", columns=["latency"])
    with pytest.raises(SearchError, match="does not exist"):
        Table.from_csv(acc.parent / "nope.csv")


def test_nasbench201_table_excludes_degenerate_archs(nb201_table):
    assert len(nb201_table) == 15625 - 341
    assert not any(nb201_table.space.is_degenerate(a) for a in nb201_table.archs[:500])
    lo, hi = nb201_table.bounds("cifar10_test_acc")
    assert hi == pytest.approx(94.37, abs=0.01)
