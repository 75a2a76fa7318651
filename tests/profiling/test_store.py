"""The measurement store: durable appends, torn lines, one lock per device, CSV export."""

from __future__ import annotations

import csv
import io
import multiprocessing
import time

import pytest

from hwnas.devices import Measurement
from hwnas.errors import ProfilingError
from hwnas.profiling import MeasurementStore, StoredMeasurement
from hwnas.workspace import Workspace


def _record(key: str, median_ms: float = 1.0, kind: str = "op", status: str = "ok") -> StoredMeasurement:
    m = Measurement(model_sha256="0" * 64, key=key, device="d", runtime="onnxruntime", runtime_version="1",
                    threads=1, warmup=1, runs=3, median_ms=median_ms, mean_ms=median_ms, std_ms=0.0,
                    min_ms=median_ms, p90_ms=median_ms, n=3, timestamp=time.time(), status=status)
    return StoredMeasurement(kind=kind, key=key, space="nasbench201", precision="fp32", measurement=m)


def test_appended_records_read_back_in_order(tmp_path):
    store = MeasurementStore(tmp_path / "d" / "measurements.jsonl")
    for i in range(5):
        store.append(_record(f"op{i}", median_ms=i + 1.0))
    records = store.records()
    assert [r.key for r in records] == [f"op{i}" for i in range(5)]
    assert records[3].measurement.median_ms == 4.0 and store.bad_lines == 0


def test_a_torn_last_line_is_skipped_and_fenced_off(tmp_path):
    store = MeasurementStore(tmp_path / "measurements.jsonl")
    store.append(_record("a"))
    with open(store.path, "ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"v": 1, "kind": "op", "key": "b", "meas')
    assert [r.key for r in store.records()] == ["a"] and store.bad_lines == 1
    store.append(_record("c"))
    assert [r.key for r in store.records()] == ["a", "c"] and store.bad_lines == 1


def test_latest_keeps_the_newest_successful_record_per_key(tmp_path):
    store = MeasurementStore(tmp_path / "measurements.jsonl")
    store.append(_record("a", 1.0))
    store.append(_record("a", 2.0))
    store.append(_record("b", 5.0, status="failed"))
    store.append(_record("x", 3.0, kind="arch"))
    latest = store.latest("op", "onnxruntime", "fp32", 1)
    assert set(latest) == {"a"} and latest["a"].measurement.median_ms == 2.0
    assert set(store.latest("op", "tflite")) == set()


def _hold_lock(path: str, ready, release) -> None:
    with MeasurementStore(path).lock():
        ready.set()
        release.wait(30)


def test_a_second_process_cannot_profile_the_same_device(tmp_path):
    path = str(tmp_path / "measurements.jsonl")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(ProfilingError, match="being profiled by pid"):
            with MeasurementStore(path).lock():
                pass
    finally:
        release.set()
        holder.join(30)
    with MeasurementStore(path).lock():  # free again once the holder is gone
        pass


def _append_many(path: str, prefix: str, n: int) -> None:
    store = MeasurementStore(path)
    with store.lock():
        for i in range(n):
            store.append(_record(f"{prefix}{i}"))


def test_two_devices_profiled_at_once_do_not_interfere(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    paths = [str(MeasurementStore.for_device(ws, name).path) for name in ("dev-a", "dev-b")]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(p, name, 200)) for p, name in zip(paths, "ab", strict=True)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for path, prefix in zip(paths, "ab", strict=True):
        store = MeasurementStore(path)
        assert [r.key for r in store.records()] == [f"{prefix}{i}" for i in range(200)] and store.bad_lines == 0


def test_csv_export_has_one_row_per_measurement(tmp_path):
    store = MeasurementStore(tmp_path / "measurements.jsonl")
    for i in range(3):
        store.append(_record(f"op{i}", median_ms=0.5 * (i + 1)))
    out = store.export_csv(tmp_path / "export.csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["key"] for r in rows] == ["op0", "op1", "op2"]
    assert [float(r["median_ms"]) for r in rows] == [0.5, 1.0, 1.5]
