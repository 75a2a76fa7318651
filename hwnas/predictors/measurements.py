"""Whole-subnet measurements from a CSV file (DyNAS-T / HELP style): one row per subnet, an arch column holding
the arch as JSON (or a Python dict literal, as DyNAS-T writes it) and a latency column in ms.

Every bad row is reported (file, row, field) before anything is fitted; good rows come back as the same dicts a
profile's measured subnets are, so `fit_measurements` and the held-out report treat them alike.
"""

from __future__ import annotations

import ast
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import InvalidArchError, PredictorError
from hwnas.predictors.base import MAX_LATENCY_MS, Predictor, resolve_space
from hwnas.predictors.registry import create_predictor
from hwnas.predictors.report import HeldOutReport, held_out_report

__all__ = ["ARCH_COLUMNS", "LATENCY_COLUMNS", "read_measurements_csv", "fit_measurements"]

ARCH_COLUMNS = ("arch", "config", "subnet", "Sub-network", "arch_str")
LATENCY_COLUMNS = ("latency_ms", "median_ms", "Latency (ms)", "latency")
MAX_REPORTED = 20


def _pick(header: list[str], wanted: tuple[str, ...], given: str | None, what: str, path: Path) -> str:
    if given is not None:
        if given not in header:
            raise PredictorError(f"{path}: no column {given!r} (columns: {', '.join(header)})")
        return given
    for name in wanted:
        if name in header:
            return name
    raise PredictorError(f"{path}: no {what} column; name one of {', '.join(wanted)} or pass its name "
                         f"(columns: {', '.join(header)})")


def _parse_arch(text: str) -> Any:
    text = text.strip()
    if not text.startswith(("{", "[")):
        return text  # an arch string or key (NAS-Bench-201 strings)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)  # DyNAS-T writes Python dict reprs; literal_eval runs no code


def _ofa_lists(value: Any) -> Any:
    """DyNAS-T writes OFA's resolution as a one-element list (`'r': [224]`) and a `wid` of None: normalise."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if not (k == "wid" and v is None)}
        if isinstance(value.get("r"), list) and len(value["r"]) == 1:
            value["r"] = value["r"][0]
    return value


def read_measurements_csv(path: str | Path, space: Any, arch_column: str | None = None,
                          latency_column: str | None = None) -> list[dict[str, Any]]:
    """Rows {key, arch, median_ms, role: "file", row} from a CSV of (arch, latency ms). A PredictorError lists
    every bad row, one line each: `FILE row N field COLUMN: what is wrong` (at most 20, then a count)."""
    path = Path(path)
    sp = resolve_space(space)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PredictorError(f"measurements file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictorError(f"measurements file {path} cannot be read as UTF-8 text ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = list(reader.fieldnames or [])
    if not header:
        raise PredictorError(f"measurements file {path} is empty; it needs a header with an arch and a latency column")
    arch_col = _pick(header, ARCH_COLUMNS, arch_column, "arch", path)
    lat_col = _pick(header, LATENCY_COLUMNS, latency_column, "latency (ms)", path)
    rows, errors = [], []
    try:
        for number, raw in enumerate(reader, start=2):  # row 1 is the header
            try:
                arch = sp.validate(_ofa_lists(_parse_arch(raw.get(arch_col) or "")))
            except (InvalidArchError, ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
                errors.append(f"{path} row {number} field {arch_col}: {str(exc).splitlines()[0][:200]}")
                continue
            value = (raw.get(lat_col) or "").strip()
            try:
                ms = float(value)
            except ValueError:
                ms = math.nan
            if not math.isfinite(ms) or ms <= 0 or ms > MAX_LATENCY_MS:
                errors.append(f"{path} row {number} field {lat_col}: {value!r} is not a latency in ms "
                              f"(0 < ms <= {MAX_LATENCY_MS:g})")
                continue
            rows.append({"key": arch.key, "arch": arch.to_dict(), "median_ms": ms, "role": "file", "row": number})
    except csv.Error as exc:
        errors.append(f"{path} row {reader.line_num}: not valid CSV ({exc})")
    if errors:
        more = f"\n... and {len(errors) - MAX_REPORTED} more bad rows" if len(errors) > MAX_REPORTED else ""
        raise PredictorError(f"{path}: {len(errors)} bad row(s); fix or remove them:\n"
                             + "\n".join(errors[:MAX_REPORTED]) + more)
    if not rows:
        raise PredictorError(f"measurements file {path} has no rows")
    return rows


def fit_measurements(name: str, rows: list[dict[str, Any]], space: Any, held_out: float = 0.2, seed: int = 0,
                     coverage: float = 0.95, **options: Any) -> tuple[Predictor, HeldOutReport]:
    """Fit predictor `name` on measured rows, holding out a random `held_out` share (at least 1 row) for the
    report; then refit on every row (the report describes the model fitted on the rest; the final model's
    intervals come from its own cross-validation residuals). Returns (predictor fitted on all rows, report)."""
    if not 0 <= held_out < 1:
        raise PredictorError(f"held_out must be a share in [0, 1), got {held_out!r}")
    n = len(rows)
    n_test = max(1, int(round(held_out * n))) if held_out > 0 and n >= 5 else 0
    order = np.random.default_rng(seed).permutation(n)
    if not n_test:
        raise PredictorError(f"{n} measured subnets are too few to hold any out for a report; measure at least 5")
    test, train = order[:n_test], order[n_test:]
    archs = [r["arch"] for r in rows]
    y = np.array([r["median_ms"] for r in rows], dtype=float)
    probe = create_predictor(name, space=space, **options).fit([archs[i] for i in train], y[train])
    report = held_out_report(probe, [archs[i] for i in test], y[test], coverage)
    predictor = create_predictor(name, space=space, **options).fit(archs, y)
    predictor.meta_ = {**predictor.__dict__.get("meta_", {}), "trained_on": [r["key"] for r in rows],
                       "statistic": "median_ms", "held_out_report": report.to_dict()}
    return predictor, report
