"""Target devices: transports (local, ssh, adb), the on-device runner and the device inventory.

`open_device(name)` reads `devices/<name>.toml` of the workspace and returns a Device (a context manager).
"""

from __future__ import annotations

from hwnas.devices.base import BenchmarkModel, BenchmarkSettings, Device, Measurement, sha256_file
from hwnas.devices.inventory import DeviceConfig, add_device, load_device_config, load_inventory
from hwnas.errors import InventoryError
from hwnas.registry import Registry
from hwnas.workspace import Workspace

__all__ = [
    "BenchmarkModel", "BenchmarkSettings", "Device", "Measurement", "sha256_file", "DeviceConfig", "add_device",
    "load_inventory", "load_device_config", "open_device", "device_from_config", "register_transport",
    "list_transports",
]

_TRANSPORTS: Registry[Device] = Registry("transport", InventoryError)
register_transport = _TRANSPORTS.register


def list_transports() -> list[str]:
    return _TRANSPORTS.names()


@register_transport("local")
def _local(config: DeviceConfig) -> Device:
    from hwnas.devices.local import LocalDevice

    return LocalDevice(config)


@register_transport("ssh")
def _ssh(config: DeviceConfig, trust_new_host: bool = False) -> Device:
    from hwnas.devices.ssh import SshDevice

    return SshDevice(config, trust_new_host=trust_new_host)


@register_transport("adb")
def _adb(config: DeviceConfig) -> Device:
    from hwnas.devices.adb import AdbDevice

    return AdbDevice(config)


def device_from_config(config: DeviceConfig, **options: object) -> Device:
    """A Device for an inventory entry (not connected yet: use it as a context manager)."""
    return _TRANSPORTS.create(config.transport, config=config, **options)


def open_device(name: str, workspace: Workspace | None = None, **options: object) -> Device:
    """The device `devices/<name>.toml` of `workspace` (default: Workspace.find())."""
    from hwnas.devices.inventory import device_file
    from hwnas.devices.runner_host import RunnerDevice, owner_token

    ws = workspace or Workspace.find()
    path = device_file(ws, name)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in ws.devices_dir.glob("*.toml"))) or "none"
        raise InventoryError(f"no device {name!r} in {ws.devices_dir} (known: {known}); add it with "
                             f"`hwnas device add {name} --local|--ssh USER@HOST|--adb SERIAL`")
    device = device_from_config(load_device_config(path), **options)
    if isinstance(device, RunnerDevice):
        device.owner = owner_token(name, ws.root)
    return device
