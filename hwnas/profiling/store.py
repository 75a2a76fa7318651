"""The measurement store: one append-only JSON-lines log per device, fsync'd after every record.

Why JSON lines and not SQLite: a record is appended with one write() on a file opened O_APPEND and then
fsync'd, so a crash loses at most the record being written, and a torn last line is detected and skipped;
the log is itself human-readable, diffs cleanly when a workspace is committed, and needs no WAL/SHM side
files. Each device has its own log (`profiles/<device>/measurements.jsonl`) and an exclusive lock file, so
two processes profiling two devices never touch the same file, and a second process profiling the same
device is refused with a clear error instead of interleaving with the first.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from hwnas.devices.base import Measurement
from hwnas.errors import ProfilingError
from hwnas.workspace import Workspace, atomic_write_text

__all__ = ["MeasurementStore", "StoredMeasurement", "StoreLine", "STORE_FILE", "STORE_VERSION"]

STORE_FILE = "measurements.jsonl"
STORE_VERSION = 1
CSV_FIELDS = ("kind", "role", "key", "space", "precision", "runtime", "runtime_version", "threads", "status",
              "median_ms", "mean_ms", "std_ms", "min_ms", "p90_ms", "n", "warmup", "runs", "model_sha256",
              "timestamp", "error")


class _MeasurementLine(BaseModel):
    """The measurement of a store line: the fields a Measurement needs, typed (strict: no text for numbers)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model_sha256: str
    key: str
    device: str
    runtime: str
    runtime_version: str
    threads: Annotated[int, Field(ge=0)]
    warmup: Annotated[int, Field(ge=0)]
    runs: Annotated[int, Field(ge=0)]
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    p90_ms: float
    n: Annotated[int, Field(ge=0)]
    state_before: dict[str, Any] = {}
    state_after: dict[str, Any] = {}
    timestamp: Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)] = 0.0
    status: str = "ok"
    error: str | None = None


class StoreLine(BaseModel):
    """The schema of one line of measurements.jsonl; a line that does not fit is counted as unreadable."""

    model_config = ConfigDict(extra="allow", strict=True)

    v: Annotated[int, Strict(), Field(ge=0, le=STORE_VERSION)] = 0
    kind: Literal["op", "arch", "check"]
    key: str
    space: str
    precision: str
    role: str = ""
    spec: dict[str, Any] | None = None
    session: str | None = None
    measurement: _MeasurementLine


@dataclass
class StoredMeasurement:
    """One line of the log: what was measured (an operator or a whole arch) and the Measurement."""

    kind: str  # "op", "arch", or "check" (a reference subnet re-measured to detect drift)
    key: str
    space: str
    precision: str
    measurement: Measurement
    role: str = ""  # for archs: "calibration", "reference" or "extra"
    spec: dict[str, Any] = field(default_factory=dict)  # the OpSpec or the arch dict
    session: str = ""  # the profiling session that measured it (see hwnas.profiling.drift)

    @property
    def runtime(self) -> str:
        return self.measurement.runtime

    @property
    def ok(self) -> bool:
        return self.measurement.ok

    def match_key(self) -> tuple[str, str, str, str, str, int]:
        """Two records with equal match keys measured the same thing under the same conditions."""
        m = self.measurement
        space = self.space if self.kind == "arch" else ""  # an operator is the same in every space
        return (self.kind, space, self.key, m.runtime, self.precision, int(m.threads))

    def to_dict(self) -> dict[str, Any]:
        return {"v": STORE_VERSION, "kind": self.kind, "key": self.key, "space": self.space,
                "precision": self.precision, "role": self.role, "spec": self.spec,
                "measurement": self.measurement.to_dict(), **({"session": self.session} if self.session else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredMeasurement:
        return cls(kind=data["kind"], key=data["key"], space=data["space"], precision=data["precision"],
                   role=data.get("role", ""), spec=data.get("spec") or {}, session=str(data.get("session") or ""),
                   measurement=Measurement.from_dict(data["measurement"]))


class MeasurementStore:
    """The log of one device. `with store.lock():` while profiling; `append()` is durable on return."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.bad_lines = 0

    @classmethod
    def for_device(cls, workspace: Workspace, device: str) -> MeasurementStore:
        return cls(workspace.profile_dir(device) / STORE_FILE)

    # ----------------------------------------------------------- locking
    def lock(self) -> _StoreLock:
        """An exclusive, non-blocking lock on this device's log (released when the process dies)."""
        return _StoreLock(self)

    # ----------------------------------------------------------- writing
    def append(self, record: StoredMeasurement) -> None:
        """Append one record and fsync it. A torn line left by a crash is fenced off by a newline first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record.to_dict(), separators=(",", ":"), sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as handle:
                    handle.seek(size - 1)
                    if handle.read(1) != b"\n":
                        line = "\n" + line
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    # ----------------------------------------------------------- reading
    def __iter__(self) -> Iterator[StoredMeasurement]:
        return iter(self.records())

    def records(self) -> list[StoredMeasurement]:
        """Every readable record in order; unreadable lines (a torn last write) are counted in `bad_lines`."""
        self.bad_lines = 0
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    StoreLine.model_validate(data)
                    out.append(StoredMeasurement.from_dict(data))
                except (ValueError, ValidationError, RecursionError):  # torn, damaged, or of a later version
                    self.bad_lines += 1
        return out

    def latest(self, kind: str | None = None, runtime: str | None = None, precision: str | None = None,
               threads: int | None = None, space: str | None = None) -> dict[str, StoredMeasurement]:
        """The newest successful record per key among those matching the filters."""
        found: dict[str, StoredMeasurement] = {}
        for rec in self.records():
            m = rec.measurement
            if not rec.ok or (kind and rec.kind != kind) or (runtime and m.runtime != runtime):
                continue
            if (precision and rec.precision != precision) or (threads is not None and m.threads != threads):
                continue
            if space and rec.kind == "arch" and rec.space != space:
                continue
            found[rec.key] = rec
        return found

    # ----------------------------------------------------------- export
    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for rec in self.records():
            row = {**rec.measurement.to_dict(), "kind": rec.kind, "role": rec.role, "key": rec.key,
                   "space": rec.space, "precision": rec.precision}
            row["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.get("timestamp") or 0))
            writer.writerow(row)
        return buffer.getvalue()

    def export_csv(self, path: str | Path) -> Path:
        """Write the whole log as CSV (one row per measurement), atomically."""
        atomic_write_text(path, self.to_csv())
        return Path(path)


class _StoreLock:
    def __init__(self, store: MeasurementStore):
        self.store = store
        self.handle: Any = None

    def __enter__(self) -> MeasurementStore:
        path = self.store.path.with_name(self.store.path.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a+")
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise ProfilingError(f"{self.store.path.parent.name} is being profiled by {holder}; wait for it to "
                                 "finish (or stop it) and re-run: measured operators are kept") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}")
        self.handle.flush()
        return self.store

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
