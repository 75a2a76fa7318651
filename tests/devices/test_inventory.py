"""The device inventory: devices/<name>.toml files, validation, and no secrets."""

import sys

import pytest

from hwnas.devices import DeviceConfig, add_device, load_inventory, open_device
from hwnas.devices.local import LocalDevice
from hwnas.errors import InventoryError
from hwnas.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace.init(tmp_path / "ws")


def test_add_device_round_trips_through_toml(ws):
    add_device(ws, "pi4", transport="ssh", host="10.0.0.7", user="pi", port=2222, key="~/.ssh/id_pi",
               runtime="onnxruntime", threads=4, pin_cores=(2, 3))
    config = load_inventory(ws)["pi4"]
    assert (config.host, config.user, config.port, config.threads, config.pin_cores) == ("10.0.0.7", "pi", 2222, 4,
                                                                                          (2, 3))
    assert config.target == "pi@10.0.0.7:2222"
    settings = config.settings(runs=7, warmup=None)
    assert (settings.runtime, settings.threads, settings.runs, settings.warmup) == ("onnxruntime", 4, 7, 10)
    assert settings.pin_cores == (2, 3)


def test_strings_with_quotes_and_newlines_survive_toml(ws):
    text = 'a "quoted" \\ back\nslash'
    add_device(ws, "odd", transport="local", description=text)
    assert load_inventory(ws)["odd"].description == text


@pytest.mark.parametrize("name", ["a b", "x;rm -rf", "$(touch p)", "`id`", "../up", "q'uote", 'd"q', ""])
def test_names_with_shell_or_path_characters_are_refused(ws, name):
    with pytest.raises(InventoryError):
        add_device(ws, name, transport="local")
    assert list(ws.devices_dir.iterdir()) == []


def test_secrets_are_refused_in_files(ws):
    (ws.devices_dir / "leaky.toml").write_text('transport = "ssh"\nhost = "h"\npassword = "hunter2"\n')
    with pytest.raises(InventoryError, match="secrets never go in the inventory"):
        load_inventory(ws)
    with pytest.raises(InventoryError):
        add_device(ws, "leaky2", transport="ssh", host="h", passphrase="hunter2")
    assert not (ws.devices_dir / "leaky2.toml").exists()


def test_bad_files_name_the_problem(ws):
    (ws.devices_dir / "typo.toml").write_text('transport = "local"\nthreds = 2\n')
    with pytest.raises(InventoryError, match="threds"):
        load_inventory(ws)
    with pytest.raises(InventoryError, match="runtime"):
        DeviceConfig(name="x", runtime="tensorrt-magic")
    with pytest.raises(InventoryError, match="host"):
        DeviceConfig(name="x", transport="ssh")


def test_existing_device_is_not_overwritten_without_force(ws):
    add_device(ws, "dev", transport="local", threads=2)
    with pytest.raises(InventoryError, match="already exists"):
        add_device(ws, "dev", transport="local", threads=3)
    add_device(ws, "dev", transport="local", threads=3, overwrite=True)
    assert load_inventory(ws)["dev"].threads == 3
    assert [p.name for p in ws.devices_dir.iterdir()] == ["dev.toml"]  # no temporary files left


def test_open_device_reads_the_workspace(ws):
    add_device(ws, "here", transport="local", runtime="onnxruntime")
    device = open_device("here", ws)
    assert isinstance(device, LocalDevice) and device.config.runtime == "onnxruntime"
    with pytest.raises(InventoryError, match="hwnas device add nope"):
        open_device("nope", ws)


def test_shipped_inventory_has_the_local_targets():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    inventory = load_inventory(Workspace(root))
    assert inventory["local-cpu"].runtime == "tflite" and inventory["local-cpu"].threads == 1
    assert inventory["local-cpu-ort"].runtime == "onnxruntime" and inventory["local-cpu-ort"].threads == 1


def test_toml_parser_is_the_standard_library_one_from_python_3_11():
    import importlib

    import hwnas.devices.inventory as inventory

    expected = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    assert inventory.tomllib is importlib.import_module(expected)


def test_python_3_10_reads_device_files_with_tomli(ws, monkeypatch):
    """On 3.10 there is no tomllib: the inventory must bind tomli (declared for < 3.11) and parse with it."""
    import importlib.util
    import types

    import hwnas.devices.inventory

    real = importlib.import_module("tomllib") if sys.version_info >= (3, 11) else importlib.import_module("tomli")
    calls = []
    tomli = types.ModuleType("tomli")
    tomli.TOMLDecodeError = real.TOMLDecodeError
    tomli.loads = lambda text: calls.append(text) or real.loads(text)
    monkeypatch.setitem(sys.modules, "tomli", tomli)
    monkeypatch.setitem(sys.modules, "tomllib", None)  # importing tomllib now fails, as on 3.10
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    spec = importlib.util.spec_from_file_location("inventory_on_3_10", hwnas.devices.inventory.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)

    assert module.tomllib is tomli
    path = ws.devices_dir / "pi.toml"
    path.write_text('transport = "ssh"\nhost = "10.0.0.7"\nthreads = 2\n')
    config = module.load_device_config(path)
    assert (config.host, config.threads) == ("10.0.0.7", 2) and len(calls) == 1
    path.write_text("transport = ")
    with pytest.raises(InventoryError, match="not valid TOML"):
        module.load_device_config(path)
