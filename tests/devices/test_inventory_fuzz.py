"""Property tests of the device file: thousands of generated malformed files and values always end in one clean
InventoryError (never another exception), and every string `add_device` accepts loads back unchanged."""

from __future__ import annotations

import datetime
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas.devices import DeviceConfig, add_device, load_device_config
from hwnas.devices.inventory import DeviceFile, toml_string
from hwnas.errors import InventoryError
from hwnas.workspace import Workspace

FIELDS = sorted(DeviceFile.model_fields)
STRING_FIELDS = ["host", "user", "key", "serial", "python", "remote_dir", "known_hosts", "benchmark_binary", "adb",
                 "description"]
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def toml_text(value) -> str:
    """Any value TOML can hold, as TOML text (inline tables and arrays included)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_text(v)}" for k, v in value.items()) + "}"
    return toml_string(value)


scalars = (st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.floats() | st.text(max_size=20)
           | st.datetimes() | st.dates() | st.sampled_from(["local", "ssh", "adb", "tflite", "-x", "~/a", "/abs", ""]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3), max_leaves=8)
keys = st.sampled_from(FIELDS) | st.sampled_from(["password", "threds", "extra", "name"]) | st.text(min_size=1,
                                                                                                      max_size=8)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def load_or_inventory_error(path: Path) -> DeviceConfig | None:
    try:
        return load_device_config(path)
    except InventoryError as exc:
        message = str(exc)
        assert message and "\n" not in message and str(path) in message
        return None


@FUZZ
@given(data=st.dictionaries(keys, values, max_size=6))
def test_generated_device_files_load_or_fail_with_one_clean_line(folder, data):
    path = folder / "dev.toml"
    path.write_text("".join(f"{toml_string(k)} = {toml_text(v)}\n" for k, v in data.items()), encoding="utf-8")
    config = load_or_inventory_error(path)
    if config is not None:  # what loads is what the schema allows
        assert config.transport in ("local", "ssh", "adb") and isinstance(config.gpu, bool)
        assert all(isinstance(getattr(config, f), float) and math.isfinite(getattr(config, f))
                   for f in ("connect_timeout_s", "reconnect_timeout_s", "lock_timeout_s"))
        assert config.pin_cores is None or all(isinstance(c, int) and c >= 0 for c in config.pin_cores)


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_as_a_device_file_never_raise_anything_else(folder, raw):
    path = folder / "raw.toml"
    path.write_bytes(raw)
    load_or_inventory_error(path)


@FUZZ
@given(field=st.sampled_from(FIELDS), value=values)
def test_any_value_for_any_field_from_python_is_accepted_or_refused_cleanly(field, value):
    base = {"host": "h"} if field != "host" else {}
    try:
        DeviceConfig(name="dev", transport="ssh", **{**base, field: value}) if field != "transport" else \
            DeviceConfig(name="dev", host="h", serial="s", transport=value)
    except InventoryError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("device dev: ")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(STRING_FIELDS), text=st.text(max_size=40))
def test_every_string_add_device_accepts_loads_back_unchanged(tmp_path, field, text):
    ws = Workspace.init(tmp_path / "ws") if not (tmp_path / "ws").exists() else Workspace(tmp_path / "ws")
    base = {"transport": "ssh", "host": "h", "serial": "s"} if field != "serial" else {"transport": "adb"}
    if field == "host":
        base = {"transport": "ssh"}
    try:
        written = add_device(ws, "dev", overwrite=True, **{**base, field: text})
    except InventoryError:
        return
    loaded = load_device_config(ws.devices_dir / "dev.toml")
    assert getattr(loaded, field) == getattr(written, field) == (text or getattr(written, field))
