"""The device inventory: one TOML file per target device in a workspace's `devices/` folder.

Files hold only where and how to reach a device (never a password or passphrase: use an SSH agent, a key
file, or the HWNAS_SSH_PASSPHRASE environment variable).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli (a dependency there)
    import tomli as tomllib

from hwnas.devices.base import RUNTIMES, BenchmarkSettings
from hwnas.errors import InventoryError
from hwnas.workspace import Workspace, atomic_write_text

__all__ = ["DeviceConfig", "load_inventory", "load_device_config", "add_device", "TRANSPORTS", "validate_name"]

TRANSPORTS = ("local", "ssh", "adb")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SECRET_WORDS = ("password", "passphrase", "secret", "token")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InventoryError(
            f"bad device name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class DeviceConfig:
    """How to reach one device and how to measure on it (defaults for BenchmarkSettings)."""

    name: str
    transport: str = "local"
    host: str | None = None
    user: str | None = None
    port: int | None = None
    key: str | None = None  # path to a private key file (never its content)
    serial: str | None = None  # adb serial, or host:port for adb over TCP
    runtime: str = "tflite"
    threads: int = 1
    gpu: bool = False
    python: str | None = None  # interpreter on the device (default: python3; local: this interpreter)
    remote_dir: str | None = None  # cache folder on the device (ssh: ~/.cache/hwnas; adb: /data/local/tmp/hwnas)
    known_hosts: str | None = None  # ssh: known_hosts file (default ~/.ssh/known_hosts)
    connect_timeout_s: float = 10.0
    reconnect_timeout_s: float = 120.0
    benchmark_binary: str | None = None  # adb: local path of TFLite's benchmark_model for the phone's ABI
    adb: str = "adb"  # adb client binary
    pin_cores: tuple[int, ...] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.transport not in TRANSPORTS:
            raise InventoryError(f"device {self.name}: unknown transport {self.transport!r}; choose one of "
                                 f"{', '.join(TRANSPORTS)}")
        if self.runtime not in RUNTIMES:
            raise InventoryError(f"device {self.name}: unknown runtime {self.runtime!r}; choose one of "
                                 f"{', '.join(RUNTIMES)}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise InventoryError(f"device {self.name}: threads must be a positive integer, got {self.threads!r}")
        if self.transport == "ssh" and not self.host:
            raise InventoryError(f"device {self.name}: ssh needs a host; set host = \"...\" in its TOML")
        if self.transport == "adb" and not self.serial:
            raise InventoryError(f"device {self.name}: adb needs a serial; set serial = \"...\" in its TOML")
        if self.pin_cores is not None:
            object.__setattr__(self, "pin_cores", tuple(int(c) for c in self.pin_cores))
        if self.port is not None and not (0 < int(self.port) < 65536):
            raise InventoryError(f"device {self.name}: port {self.port} is out of range")

    def settings(self, **overrides: Any) -> BenchmarkSettings:
        """BenchmarkSettings with this device's runtime, threads, GPU and pinning; overrides win (None: ignored)."""
        base = BenchmarkSettings(runtime=self.runtime, threads=self.threads, use_gpu=self.gpu,
                                 pin_cores=self.pin_cores)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def target(self) -> str:
        if self.transport == "ssh":
            user = f"{self.user}@" if self.user else ""
            port = f":{self.port}" if self.port else ""
            return f"{user}{self.host}{port}"
        if self.transport == "adb":
            return f"adb:{self.serial}"
        return "local"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("name", "extra"):
                continue
            value = getattr(self, f.name)
            if value is None or value == f.default:
                continue
            data[f.name] = list(value) if isinstance(value, tuple) else value
        data = {"transport": self.transport, **data}
        return data

    def to_toml(self) -> str:
        lines = [f"# hwnas device {self.name}: written by `hwnas device add`; no secrets belong here"]
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any], source: str = "") -> DeviceConfig:
        where = source or name
        secrets = [k for k in data if any(w in k.lower() for w in SECRET_WORDS)]
        if secrets:
            raise InventoryError(f"{where}: remove {', '.join(secrets)}; secrets never go in the inventory (use an "
                                 f"SSH agent, a key file, or the HWNAS_SSH_PASSPHRASE environment variable)")
        known = {f.name for f in fields(cls)} - {"name", "extra"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InventoryError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        try:
            return cls(name=name, **data)
        except TypeError as exc:
            raise InventoryError(f"{where}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # a JSON string without ASCII escaping is a valid TOML basic string (same escapes)
    return json.dumps(str(value), ensure_ascii=False)


def load_device_config(path: str | Path) -> DeviceConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError(f"no device file {path}; add one with `hwnas device add {path.stem} ...`") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path} is not valid TOML ({exc}); fix or re-create it with `hwnas device add`") from None
    return DeviceConfig.from_dict(path.stem, data, str(path))


def load_inventory(workspace: Workspace | None = None) -> dict[str, DeviceConfig]:
    """All devices of a workspace (default: Workspace.find()), by name."""
    ws = workspace or Workspace.find()
    if not ws.devices_dir.is_dir():
        return {}
    configs = {}
    for path in sorted(ws.devices_dir.glob("*.toml")):
        configs[path.stem] = load_device_config(path)
    return configs


def add_device(workspace: Workspace | None, name: str, *, overwrite: bool = False, **options: Any) -> DeviceConfig:
    """Write devices/<name>.toml atomically and return its config. Options are DeviceConfig fields."""
    ws = workspace or Workspace.find()
    validate_name(name)
    config = DeviceConfig.from_dict(name, {k: v for k, v in options.items() if v is not None})
    path = ws.devices_dir / f"{name}.toml"
    if path.exists() and not overwrite:
        raise InventoryError(f"device {name} already exists ({path}); pass --force to replace it")
    atomic_write_text(path, config.to_toml())
    return config
