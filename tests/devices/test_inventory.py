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


@pytest.mark.parametrize(("line", "field"), [
    ('gpu = "no"', "gpu"), ('port = "abc"', "port"), ('pin_cores = "ab"', "pin_cores"),
    ("pin_cores = [-1]", "pin_cores"),
    ('connect_timeout_s = "x"', "connect_timeout_s"), ("connect_timeout_s = nan", "connect_timeout_s"),
    ("reconnect_timeout_s = -5", "reconnect_timeout_s"), ("host = 123", "host"), ("threads = true", "threads"),
    ("threads = 2.0", "threads"), ("port = 70000", "port"), ("description = 1979-05-27", "description"),
    ("runtime = [\"tflite\"]", "runtime"), ("lock_timeout_s = inf", "lock_timeout_s"), ('python = "-c"', "python"),
])
def test_wrongly_typed_values_are_one_line_naming_file_field_and_allowed_values(ws, line, field):
    path = ws.devices_dir / "pi.toml"
    path.write_text(f'transport = "ssh"\nhost = "10.0.0.7"\n{line}\n'.replace('host = "10.0.0.7"\nhost', "host"))
    with pytest.raises(InventoryError) as info:
        load_inventory(ws)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and f"{field} must be" in message and "\n" not in message


def test_a_file_that_is_not_utf8_is_one_line(ws):
    (ws.devices_dir / "latin.toml").write_bytes(b'transport = "local"\ndescription = "caf\xe9"\n')
    with pytest.raises(InventoryError, match="latin.toml is not UTF-8"):
        load_inventory(ws)


def test_one_bad_file_does_not_break_the_listing(ws):
    add_device(ws, "good", transport="local")
    (ws.devices_dir / "bad.toml").write_text('gpu = "no"\n')
    (ws.devices_dir / "broken.toml").write_bytes(b"\xff\xfe")
    errors: dict[str, str] = {}
    assert list(load_inventory(ws, errors=errors)) == ["good"]
    assert sorted(errors) == ["bad.toml", "broken.toml"] and "gpu must be true or false" in errors["bad.toml"]
    with pytest.raises(InventoryError):
        load_inventory(ws)  # without `errors`, the first bad file raises as before


@pytest.mark.parametrize("text", ["del\x7fhere", "nul\x00", "esc\x1b[31m", "c1\x85", "tab\tand\r\nlines", 'q"\\'])
def test_every_control_character_add_device_writes_loads_back(ws, text):
    add_device(ws, "odd", transport="local", description=text)
    assert load_inventory(ws)["odd"].description == text


def test_remote_dir_that_reads_as_an_option_is_refused_and_nothing_runs(ws, tmp_path):
    marker = tmp_path / "PWNED"
    payload = f"-cimport os;open({str(marker)!r},'w')#"
    for transport, extra in (("ssh", {"host": "127.0.0.1"}), ("adb", {"serial": "x"}), ("local", {})):
        with pytest.raises(InventoryError) as info:
            add_device(ws, "evil", transport=transport, remote_dir=payload, **extra)
        assert "remote_dir must be an absolute path" in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(InventoryError, match="remote_dir"):
            DeviceConfig(name="evil", transport=transport, remote_dir=payload, **extra)
    (ws.devices_dir / "evil.toml").write_text(f'transport = "local"\nremote_dir = "{payload}"\n')
    with pytest.raises(InventoryError, match="remote_dir"):
        open_device("evil", ws)
    assert not marker.exists() and [p.name for p in ws.devices_dir.iterdir()] == ["evil.toml"]


def test_remote_dir_is_absolute_or_home_for_ssh_only(ws):
    assert DeviceConfig(name="a", transport="ssh", host="h", remote_dir="~/cache").remote_dir == "~/cache"
    assert DeviceConfig(name="a", transport="adb", serial="s", remote_dir="/data/x").remote_dir == "/data/x"
    for transport, extra in (("ssh", {"host": "h"}), ("adb", {"serial": "s"})):
        with pytest.raises(InventoryError, match="remote_dir"):
            DeviceConfig(name="a", transport=transport, remote_dir="cache/hwnas", **extra)
    with pytest.raises(InventoryError, match="remote_dir"):
        DeviceConfig(name="a", transport="adb", serial="s", remote_dir="~/x")


def test_every_name_that_becomes_a_path_is_checked(ws):
    from hwnas.devices.inventory import device_file

    assert device_file(ws, "pi4") == ws.devices_dir / "pi4.toml"
    for name in ("../x", "/etc/passwd", "-x", "a/b"):
        with pytest.raises(InventoryError, match="bad device name"):
            device_file(ws, name)
        with pytest.raises(InventoryError, match="bad device name"):
            open_device(name, ws)
    (ws.devices_dir / "bad name.toml").write_text('transport = "local"\n')
    with pytest.raises(InventoryError, match="rename the file"):
        load_inventory(ws)
