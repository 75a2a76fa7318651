"""A search's run folder: settings.json, evaluated.jsonl (appended as each expensive evaluation happens, so a
killed search resumes from it), diagnostics.jsonl (the algorithm's per-batch notes), front.json, front.csv and
hypervolume.json. Every rewrite is atomic.

Every file of a run folder has one schema (pydantic, below), checked when it is read: a damaged file is refused
with one line naming the file, the field and what is allowed, never a traceback deep inside deploy or resume."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from hwnas.errors import HwnasError, SearchError
from hwnas.files import atomic_write_text
from hwnas.search.evaluator import EvaluationRecord, Evaluator
from hwnas.space import SearchSpace

__all__ = ["RunFolder", "RESUME_KEYS", "BUDGET_FIELDS", "read_jsonl", "budget_checks", "measured_device",
           "RunSettings", "FrontDocument", "EvaluatedLine", "HypervolumeFile", "read_hypervolume"]

# settings that must match for a run folder to be resumed (the rest may change, e.g. --evals)
RESUME_KEYS = ("space", "objectives", "constraints", "algorithm", "seed", "supernet_sha256", "data", "reuse",
               "prior")
# the budget checks of a front row (front.json), each {device: true/false}; front.csv has a column per device,
# e.g. within_budget[pi4]: on the point prediction, on the upper end of its interval, on the deployed measurement
BUDGET_FIELDS = ("within_budget", "within_budget_upper", "within_budget_measured")


# -- the schemas of the files a run folder holds ---------------------------------------------------------------


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Number = Annotated[float, AfterValidator(_finite)]  # strict: ints are numbers too; bools and text are not
Count = Annotated[int, Strict(), Field(ge=0)]
Text = Annotated[str, Strict()]


class _Open(BaseModel):
    """Known fields typed, unknown ones kept (later versions add settings; a resume merges them)."""

    model_config = ConfigDict(extra="allow", strict=True)


class _ConstraintEntry(_Open):
    """A constraint as `Constraint.describe` writes it."""

    objective: Text
    upper: Number | None = None
    lower: Number | None = None
    unit: Text | None = None


class RunSettings(_Open):
    """settings.json: what the search was run with (and resumes by)."""

    space: dict[str, Any]
    objectives: list[dict[str, Any]] | None = None
    constraints: list[_ConstraintEntry] | None = None
    algorithm: Text | None = None
    seed: int | None = None
    budget: Count | None = None
    supernet: Text | None = None
    supernet_sha256: Text | None = None
    data: Text | None = None
    limit: Annotated[int, Strict(), Field(ge=1)] | None = None
    bn_calibration_images: Count | None = None
    devices: list[Text] | None = None
    runtimes: dict[str, Text] | None = None
    latency_statistics: dict[str, Text | None] | None = None
    latency_budgets_ms: dict[str, Annotated[float, AfterValidator(_finite), Field(gt=0)]] | None = None
    budget_margin: dict[str, Text] | None = None  # per device: what its budget is held on (say, an interval's end)
    workspace: Text | None = None
    reuse: list[Text] | None = None
    prior: list[Text] | None = None


class FrontRow(_Open):
    key: Text
    arch: dict[str, Any] | Text
    eval: Count = 0
    values: dict[str, Number]
    predicted: dict[str, Number | None] | None = None
    measured: dict[str, Number | None] | None = None
    models: dict[str, Text] | None = None
    reused_from: Text | None = None
    within_budget: dict[str, bool] | None = None
    within_budget_upper: dict[str, bool] | None = None
    within_budget_measured: dict[str, bool] | None = None
    # after deploy, per device: the predictor's 95% interval [lo, hi] (hi None: unbounded) around the prediction,
    # and whether the measured latency fell inside it
    interval_95: dict[str, list[Number | None]] | None = None
    within_interval_measured: dict[str, bool] | None = None


class _Described(_Open):
    name: Text


class FrontDocument(_Open):
    """front.json: the objectives, the constraints, how many evaluations were spent, and the front's rows."""

    objectives: list[_Described]
    constraints: list[_ConstraintEntry]
    evaluations: Count
    front: list[FrontRow]
    deployed: dict[str, dict[str, Any]] | None = None


class EvaluatedLine(_Open):
    """One line of evaluated.jsonl: an evaluated arch and its objective values."""

    arch: dict[str, Any] | Text
    values: dict[str, Number]
    eval: Count = 0
    time_s: Annotated[float, AfterValidator(_finite), Field(ge=0)] = 0.0
    extra: dict[str, Any] | None = None
    key: Text | None = None


class _Normalization(_Open):
    lower: list[Number]
    upper: list[Number]
    reference: list[Number] | None = None


class _HypervolumePoint(_Open):
    evals: Count
    hypervolume: Number


class HypervolumeFile(_Open):
    """hypervolume.json: the normalisation box and the hypervolume after each evaluation."""

    normalization: _Normalization
    objectives: list[Text]
    history: list[_HypervolumePoint]

    @model_validator(mode="after")
    def _one_bound_per_objective(self) -> HypervolumeFile:
        norm, n = self.normalization, len(self.objectives)
        for name in ("lower", "upper", "reference"):
            bounds = getattr(norm, name)
            if bounds is not None and len(bounds) != n:
                raise ValueError(f"normalization.{name} has {len(bounds)} values for {n} objectives")
        return self


def _problem(exc: ValidationError) -> str:
    """The first problem of a validation error: `field a.b: what is allowed`."""
    error = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in error["loc"]) or "(the document)"
    return f"field {loc}: {str(error['msg']).removeprefix('Value error, ')}"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SearchError(f"{path} is not UTF-8 text; restore it from a backup, or run the search again into "
                          "another folder") from None


def _parse(text: str) -> Any:
    """JSON text -> value; ValueError for text that is not JSON (also nested too deeply)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _load(path: Path, schema: type[BaseModel]) -> dict[str, Any]:
    """A JSON document of the run folder, checked against its schema (the dict as written)."""
    try:
        doc = _parse(_read_text(path))
    except ValueError as exc:
        raise SearchError(f"{path} is not valid JSON ({exc}); restore it, or run the search again into another "
                          "folder") from None
    try:
        schema.model_validate(doc)
    except ValidationError as exc:
        raise SearchError(f"{path}: {_problem(exc)}; restore the file, or run the search again into another "
                          "folder") from None
    return doc


def read_hypervolume(path: Path) -> dict[str, Any] | None:
    """hypervolume.json checked against its schema (None when there is none)."""
    return _load(path, HypervolumeFile) if path.is_file() else None


class _RunFile:
    """A file of the run folder, read as an attribute: `run.front_csv` is `run.path / "front.csv"`."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, run: RunFolder | None, owner: type | None = None) -> Any:
        return self if run is None else run.path / self.name


class RunFolder:
    """Files of one search run. `append(record)` writes one line and flushes it to disk."""

    settings_path = _RunFile("settings.json")
    evaluated_path = _RunFile("evaluated.jsonl")
    front_json = _RunFile("front.json")
    front_csv = _RunFile("front.csv")
    hv_path = _RunFile("hypervolume.json")
    plot_path = _RunFile("pareto.png")
    report_path = _RunFile("report.html")
    diagnostics_path = _RunFile("diagnostics.jsonl")

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -------------------------------------------------------------- settings
    def read_settings(self) -> dict[str, Any]:
        if not self.settings_path.is_file():
            raise SearchError(f"{self.path} is not a search run folder (no settings.json); "
                              "run `hwnas search ... --out` to make one")
        return _load(self.settings_path, RunSettings)

    def start(self, settings: dict[str, Any]) -> bool:
        """Create the folder, or check that an existing one was made with the same settings. Returns True
        when it resumes an earlier run."""
        if self.settings_path.is_file():
            old = self.read_settings()
            diff = [k for k in RESUME_KEYS if old.get(k) != settings.get(k)]
            if diff:
                raise SearchError(f"{self.path} holds a search with other settings ({', '.join(diff)}); "
                                  "choose another --out folder, or repeat the first command to resume it")
            merged = {**old, **settings}
            atomic_write_text(self.settings_path, json.dumps(merged, indent=2) + "\n")
            return True
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.settings_path, json.dumps(settings, indent=2) + "\n")
        return False

    # ------------------------------------------------------------ evaluations
    def append(self, record: EvaluationRecord) -> None:
        line = json.dumps(record.to_dict(), sort_keys=True) + "\n"
        with open(self.evaluated_path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def load_records(self, space: SearchSpace) -> list[EvaluationRecord]:
        """Records of evaluated.jsonl; a torn last line (a kill mid-write) is skipped."""
        if not self.evaluated_path.is_file():
            return []
        out = []
        lines = _read_text(self.evaluated_path).splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = _parse(line)
                EvaluatedLine.model_validate(data)
                out.append(EvaluationRecord.from_dict(data, space))
            except (ValidationError, HwnasError, ValueError) as exc:
                if n < len(lines):  # only a torn *last* line (a kill mid-write) is skipped
                    why = _problem(exc) if isinstance(exc, ValidationError) else str(exc).splitlines()[0][:200]
                    raise SearchError(f"{self.evaluated_path} line {n} is unreadable ({why}); "
                                      "delete that line to resume") from None
        return out

    # ------------------------------------------------------------ diagnostics
    def read_diagnostics(self) -> list[dict[str, Any]]:
        """The per-batch diagnostics of diagnostics.jsonl (the accelerated loop's: how well its surrogates
        ranked each batch, what the batch was spent on); unreadable lines (a torn last write) and entries that
        are not a batch's (an object with an integer `round`) are skipped: they only inform, so a damaged line
        costs its own entry, not the resume."""
        return [d for d in read_jsonl(self.diagnostics_path) if isinstance(d, dict)
                and isinstance(d.get("round"), int) and not isinstance(d.get("round"), bool)]

    def diagnostics_writer(self) -> Callable[[dict[str, Any]], None]:
        """A callback for `Evaluator.on_note` that appends each entry to diagnostics.jsonl, skipping rounds the
        file already holds: a resumed search retraces its earlier rounds and notes them again."""
        written = {d.get("round") for d in self.read_diagnostics()}

        def write(entry: dict[str, Any]) -> None:
            if entry.get("round") is not None and entry.get("round") in written:
                return
            written.add(entry.get("round"))
            with open(self.diagnostics_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
                handle.flush()

        return write

    # --------------------------------------------------------------- results
    def write_results(self, evaluator: Evaluator, extra: dict[str, dict[str, Any]] | None = None) -> list[dict]:
        """front.json, front.csv and hypervolume.json from the evaluator. `extra` adds fields per arch key
        (e.g. predicted latency per device). Returns the front rows."""
        front = evaluator.front()
        rows = []
        for rec in sorted(front, key=lambda r: tuple(evaluator.F([r])[0])):
            row = {"key": rec.key, "arch": rec.arch.to_dict(), "eval": rec.index, "values": dict(rec.values)}
            if "reused_from" in rec.extra:  # eval 0: measured by the run named, taken without an evaluation
                row["reused_from"] = rec.extra["reused_from"]
            row.update((extra or {}).get(rec.key, {}))
            rows.append(row)
        doc = {"objectives": [o.describe() for o in evaluator.objectives],
               "constraints": [c.describe() for c in evaluator.constraints],
               "evaluations": evaluator.spent, "front": rows}
        self.write_front(doc)
        if evaluator.normalization is not None:
            hv = {"normalization": evaluator.normalization.to_dict(),
                  "objectives": [o.name for o in evaluator.objectives],
                  "note": "minimisation space: 'max' objectives negated, then (F - lower) / (upper - lower)",
                  "history": [{"evals": n, "hypervolume": round(h, 6)} for n, h in evaluator.hv_history]}
            atomic_write_text(self.hv_path, json.dumps(hv, indent=1) + "\n")
        return rows

    def read_front(self) -> dict[str, Any]:
        if not self.front_json.is_file():
            raise SearchError(f"{self.path} has no front.json; run `hwnas search --out {self.path}` first")
        return _load(self.front_json, FrontDocument)

    def write_front(self, doc: dict[str, Any]) -> None:
        """front.json and front.csv; with latency budgets in the settings, each row gets its budget checks
        (`budget_checks`) first."""
        budgets = self.latency_budgets()
        for row in doc["front"]:
            for name in BUDGET_FIELDS:
                row.pop(name, None)
            row.update(budget_checks(row, budgets))
        atomic_write_text(self.front_json, json.dumps(doc, indent=2) + "\n")
        atomic_write_text(self.front_csv, front_csv_text(doc["front"]))

    def latency_budgets(self) -> dict[str, float]:
        """{device: ms}: the run's latency budgets (settings "latency_budgets_ms"; none when it has no settings)."""
        try:
            budgets = self.read_settings().get("latency_budgets_ms") or {}
        except (SearchError, OSError, ValueError):
            return {}
        return {str(d): float(ms) for d, ms in budgets.items() if isinstance(ms, (int, float)) and ms > 0} \
            if isinstance(budgets, dict) else {}


def read_jsonl(path: Path, schema: type[BaseModel] | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a .jsonl file, one a line (none if the file is missing); unreadable lines (a torn last
    write), and with `schema` the lines that do not fit it, are skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = _parse(line)
            if schema is not None:
                schema.model_validate(value)
        except (ValueError, ValidationError):
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def measured_device(name: str) -> tuple[str, str] | None:
    """("pi4", "pi4,tflite") for a measured column `latency_ms[pi4,tflite]` (device, then what was measured:
    `deploy` suffixes formats other than the device's own); None for other names."""
    if not (name.startswith("latency_ms[") and name.endswith("]")):
        return None
    inner = name[len("latency_ms["):-1]
    return inner.split(",")[0], inner


def budget_checks(row: dict[str, Any], budgets: dict[str, float]) -> dict[str, dict[str, bool]]:
    """Whether a front row keeps each latency budget ({device: ms}): `within_budget` on the point prediction
    (`latency_ms[<device>]`), `within_budget_upper` on the upper end of its interval where the row has
    `latency_ms_upper[<device>]`, `within_budget_measured` on each latency measured after deploy (keyed like the
    measured column: `pi4`, `pi4,tflite`). Empty dicts are left out."""
    values = {**(row.get("predicted") or {}), **row.get("values", {})}
    out: dict[str, dict[str, bool]] = {name: {} for name in BUDGET_FIELDS}
    for device, ms in budgets.items():
        point = values.get(f"latency_ms[{device}]")
        if isinstance(point, (int, float)):
            out["within_budget"][device] = bool(point <= ms)
        upper = values.get(f"latency_ms_upper[{device}]")
        if isinstance(upper, (int, float)):
            out["within_budget_upper"][device] = bool(upper <= ms)
    for name, value in (row.get("measured") or {}).items():
        found = measured_device(name)
        if found and found[0] in budgets and isinstance(value, (int, float)):
            out["within_budget_measured"][found[1]] = bool(value <= budgets[found[0]])
    return {name: checks for name, checks in out.items() if checks}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"key": row["key"], "arch": json.dumps(row["arch"], separators=(",", ":"))}
    if row.get("reused_from"):
        out["reused_from"] = row["reused_from"]
    for name, value in row.get("values", {}).items():
        out[name] = value
    for name, value in (row.get("predicted") or {}).items():
        out[f"predicted_{name}"] = value
    for name, value in (row.get("measured") or {}).items():
        out[f"measured_{name}"] = value
    for name, value in (row.get("models") or {}).items():
        out[f"model_{name}"] = value
    for field in (*BUDGET_FIELDS, "within_interval_measured"):
        for device, ok in (row.get(field) or {}).items():
            out[f"{field}[{device}]"] = "true" if ok else "false"
    for device, (lo, hi) in (row.get("interval_95") or {}).items():
        out[f"interval_95_lo[{device}]"], out[f"interval_95_hi[{device}]"] = lo, hi if hi is not None else "inf"
    return out


def front_csv_text(rows: Sequence[dict[str, Any]]) -> str:
    flat = [_flat(r) for r in rows]
    columns: list[str] = []
    for r in flat:
        columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or ["key", "arch"], lineterminator="\n")
    writer.writeheader()
    for r in flat:
        writer.writerow({c: (f"{v:.6g}" if isinstance(v, float) else v) for c, v in r.items()})
    return buf.getvalue()
