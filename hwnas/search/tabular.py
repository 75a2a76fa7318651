"""Tabular objectives: a published per-architecture table (NAS-Bench-201 accuracy, measured device latency)
read into objectives a search can use, so that search algorithms can be measured against a known true front.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import SearchError
from hwnas.objective import FunctionObjective
from hwnas.space import SearchSpace, create

__all__ = ["Table"]


class Table:
    """Rows of numbers keyed by architecture. Build it with `Table.from_csv`; `objective(column, ...)` makes
    an Objective that looks archs up (every lookup counts as an expensive evaluation by default)."""

    def __init__(self, space: SearchSpace, archs: list[Any], data: dict[str, np.ndarray]):
        self.space = space
        self.archs = list(archs)
        self.data = {name: np.asarray(col, dtype=float) for name, col in data.items()}
        self._row = {arch.key: i for i, arch in enumerate(self.archs)}
        if len(self._row) != len(self.archs):
            raise SearchError("the table holds the same architecture on more than one row")
        for name, col in self.data.items():
            if len(col) != len(self.archs):
                raise SearchError(f"column {name!r} has {len(col)} values for {len(self.archs)} rows")

    # ---------------------------------------------------------------- reading
    @classmethod
    def from_csv(cls, path: str | Path | Sequence[str | Path], key: str = "arch_str",
                 columns: Sequence[str] | Mapping[str, str] | None = None,
                 space: str | SearchSpace = "nasbench201") -> Table:
        """Read one CSV file, or several joined on `key` (rows present in all of them).

        `key` names the column holding the arch (anything the space's `validate` reads: an arch string, an
        index, a dict as JSON is not read). `columns` picks the numeric columns: a list of names, or a
        mapping {name in the table: column in the file}; None takes every column that is numeric throughout.
        """
        space = create(space) if isinstance(space, str) else space
        paths = [path] if isinstance(path, (str, Path)) else list(path)
        if not paths:
            raise SearchError("Table.from_csv needs at least one CSV path")
        merged: dict[str, dict[str, str]] | None = None
        order: list[str] = []
        for p in paths:
            rows = _read_rows(Path(p), key)
            if merged is None:
                merged, order = {}, []
                for k, row in rows:
                    if k not in merged:
                        order.append(k)
                    merged.setdefault(k, {}).update(row)
            else:
                present = dict(rows)
                order = [k for k in order if k in present]
                merged = {k: {**merged[k], **present[k]} for k in order}
        assert merged is not None
        if not order:
            raise SearchError(f"no architecture is present in every one of {', '.join(map(str, paths))}")
        first = merged[order[0]]
        if columns is None:
            names = [c for c in first if c != key and all(_is_number(merged[k].get(c)) for k in order)]
            mapping = {c: c for c in names}
        elif isinstance(columns, Mapping):
            mapping = dict(columns)
        else:
            mapping = {c: c for c in columns}
        missing = [c for c in mapping.values() if c not in first]
        if missing:
            raise SearchError(f"column(s) {missing} are not in {', '.join(map(str, paths))}; "
                              f"it has: {', '.join(first)}")
        archs, keep = [], []
        seen: set[str] = set()
        for k in order:
            arch = space.validate(_arch_value(k))
            if arch.key in seen:
                continue
            seen.add(arch.key)
            archs.append(arch)
            keep.append(k)
        data: dict[str, np.ndarray] = {}
        for name, col in mapping.items():
            values = []
            for k in keep:
                text = merged[k].get(col, "")
                values.append(float(text) if _is_number(text) else np.nan)
            data[name] = np.array(values)
        return cls(space, archs, data)

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.archs)

    @property
    def columns(self) -> list[str]:
        return list(self.data)

    def __contains__(self, arch: Any) -> bool:
        try:
            return self.space.validate(arch).key in self._row
        except Exception:
            return False

    def rows(self, archs: Sequence[Any]) -> np.ndarray:
        idx = []
        for a in archs:
            k = self.space.validate(a).key
            if k not in self._row:
                raise SearchError(f"arch {k} is not in the table; search only the archs the table covers")
            idx.append(self._row[k])
        return np.asarray(idx, dtype=int)

    def lookup(self, archs: Sequence[Any], column: str) -> np.ndarray:
        if column not in self.data:
            raise SearchError(f"unknown column {column!r}; the table has: {', '.join(self.data)}")
        return self.data[column][self.rows(archs)]

    def filter(self, keep: np.ndarray | Callable[[Any], bool]) -> Table:
        """A new table with the rows where `keep` (a boolean mask, or a predicate on the arch) is true."""
        mask = np.array([bool(keep(a)) for a in self.archs]) if callable(keep) else np.asarray(keep, dtype=bool)
        archs = [a for a, k in zip(self.archs, mask, strict=False) if k]
        return Table(self.space, archs, {n: c[mask] for n, c in self.data.items()})

    def bounds(self, column: str) -> tuple[float, float]:
        col = self.data[column]
        return float(np.nanmin(col)), float(np.nanmax(col))

    def objective(self, column: str, direction: str = "min", name: str | None = None, normalize: bool = False,
                  expensive: bool = True, unit: str = "", missing: str = "error") -> FunctionObjective:
        """An Objective looking up `column`. With `normalize`, values are min-max scaled to [0, 1] over the
        table, keeping their direction. `missing="worst"` gives archs absent from the table (e.g. rows
        filtered out) the table's worst value instead of raising."""
        if column not in self.data:
            raise SearchError(f"unknown column {column!r}; the table has: {', '.join(self.data)}")
        if missing not in ("error", "worst"):
            raise SearchError(f"missing={missing!r}: choose 'error' or 'worst'")
        lo, hi = self.bounds(column)
        span = hi - lo if hi > lo else 1.0
        worst = hi if direction == "min" else lo

        def fn(archs: Sequence[Any]) -> np.ndarray:
            if missing == "worst":
                keys = [self.space.validate(a).key for a in archs]
                values = np.array([self.data[column][self._row[k]] if k in self._row else worst for k in keys])
            else:
                values = self.lookup(archs, column)
            return (values - lo) / span if normalize else values

        return FunctionObjective(name or column, fn, direction=direction, expensive=expensive,
                                 unit="" if normalize else unit)


def _read_rows(path: Path, key: str) -> list[tuple[str, dict[str, str]]]:
    if not path.is_file():
        raise SearchError(f"table file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or key not in reader.fieldnames:
            raise SearchError(f"{path} has no key column {key!r}; its columns: {', '.join(reader.fieldnames or [])}")
        return [(row[key], row) for row in reader]


def _arch_value(text: str) -> Any:
    text = text.strip()
    return int(text) if text.isdigit() else text


def _is_number(text: Any) -> bool:
    if text is None:
        return False
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
