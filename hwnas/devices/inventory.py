"""The device inventory: one TOML file per target device in a workspace's `devices/` folder.

Files hold only where and how to reach a device (never a password or passphrase: use an SSH agent, a key
file, or the HWNAS_SSH_PASSPHRASE environment variable). A device file has ONE schema (`DeviceFile`, pydantic),
checked in one place (`check_device_fields`) whether the values come from a TOML file, `hwnas device add` or
Python: a wrong type, a value out of range or an unknown field is refused with one line naming the file, the
field and what is allowed.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli (a dependency there)
    import tomli as tomllib

from hwnas.devices.base import RUNTIMES, BenchmarkSettings
from hwnas.errors import InventoryError
from hwnas.workspace import Workspace, atomic_write_text

__all__ = ["DeviceConfig", "DeviceFile", "load_inventory", "load_device_config", "add_device", "TRANSPORTS",
           "validate_name", "device_file", "check_device_fields"]

TRANSPORTS = ("local", "ssh", "adb")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SECRET_WORDS = ("password", "passphrase", "secret", "token")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_name(name: str) -> str:
    """A device name, checked: every place where a device name becomes a path goes through this."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InventoryError(
            f"bad device name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def device_file(workspace: Workspace, name: str) -> Path:
    """`devices/<name>.toml` of a workspace, the name checked first."""
    return workspace.devices_dir / f"{validate_name(name)}.toml"


# -- the schema --------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not text (holds a lone surrogate)") from None
    return value


def _word(value: str) -> str:
    """A host, user or serial: no whitespace or control character, not starting with '-'."""
    if not value or value.startswith("-") or any(c.isspace() for c in value) or CONTROL_RE.search(value):
        raise ValueError("empty, starts with '-', or holds a space or control character")
    return _text(value)


def _path(value: str) -> str:
    """A path or program name: no control character, not starting with '-' (it would read as an option)."""
    if not value or value.startswith("-") or CONTROL_RE.search(value):
        raise ValueError("empty, starts with '-', or holds a control character")
    return _text(value)


Text = Annotated[str, Strict(), AfterValidator(_text)]
Word = Annotated[str, Strict(), AfterValidator(_word)]
PathText = Annotated[str, Strict(), AfterValidator(_path)]
Seconds = Annotated[float, Strict(), Field(gt=0, le=1e6, allow_inf_nan=False)]
Core = Annotated[int, Strict(), Field(ge=0, le=4095)]

# what each field allows, in words: error messages and docs/devices.md say it the same way
ALLOWED = {
    "transport": "one of " + ", ".join(TRANSPORTS),
    "host": "a host name or address (no spaces, not starting with '-')",
    "user": "a user name (no spaces, not starting with '-')",
    "port": "an integer from 1 to 65535",
    "key": "a path to a private key file",
    "serial": "an adb serial or HOST:PORT (no spaces, not starting with '-')",
    "runtime": "one of " + ", ".join(RUNTIMES),
    "threads": "an integer from 1 to 1024",
    "gpu": "true or false",
    "python": "a program on the device (a name or path, not starting with '-')",
    "remote_dir": "an absolute path (ssh also: ~/PATH), no control characters",
    "known_hosts": "a path to a known_hosts file",
    "connect_timeout_s": "seconds, a number above 0 and at most 1e6",
    "reconnect_timeout_s": "seconds, a number above 0 and at most 1e6",
    "lock_timeout_s": "seconds, a number from 0 to 1e6",
    "benchmark_binary": "a local path to benchmark_model (not starting with '-')",
    "adb": "the adb client program (a name or path, not starting with '-')",
    "pin_cores": "a non-empty list of core numbers from 0 to 4095",
    "description": "text",
}


class DeviceFile(BaseModel):
    """The schema of devices/<name>.toml (and of `add_device`'s options): every field, its type and range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transport: Literal[TRANSPORTS] = "local"
    host: Word | None = None
    user: Word | None = None
    port: Annotated[int, Strict(), Field(ge=1, le=65535)] | None = None
    key: PathText | None = None  # path to a private key file (never its content)
    serial: Word | None = None  # adb serial, or host:port for adb over TCP
    runtime: Literal[RUNTIMES] = "tflite"
    threads: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    gpu: Annotated[bool, Strict()] = False
    python: PathText | None = None  # interpreter on the device (default: python3; local: this interpreter)
    remote_dir: PathText | None = None  # cache folder on the device (ssh: ~/.cache/hwnas; adb: /data/local/tmp/hwnas)
    known_hosts: PathText | None = None  # ssh: known_hosts file (default ~/.ssh/known_hosts)
    connect_timeout_s: Seconds = 10.0
    reconnect_timeout_s: Seconds = 120.0
    lock_timeout_s: Annotated[float, Strict(), Field(ge=0, le=1e6, allow_inf_nan=False)] = 3600.0
    benchmark_binary: PathText | None = None  # adb: local path of TFLite's benchmark_model for the phone's ABI
    adb: PathText = "adb"  # adb client binary
    pin_cores: Annotated[list[Core], Field(min_length=1)] | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _transport_needs(self) -> DeviceFile:
        if self.transport == "ssh" and not self.host:
            raise ValueError("host: ssh needs a host; set host = \"...\"")
        if self.transport == "adb" and not self.serial:
            raise ValueError("serial: adb needs a serial; set serial = \"...\"")
        if self.remote_dir is not None:
            home = self.transport == "ssh" and self.remote_dir.startswith("~/")
            if not (self.remote_dir.startswith("/") or home):
                raise ValueError(f"remote_dir: must be {ALLOWED['remote_dir']}, got {self.remote_dir!r}")
        return self


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_device_fields(data: dict[str, Any], where: str) -> dict[str, Any]:
    """The one check of a device's fields (from a file, `add_device` or Python): the values, normalised
    (floats as float, pin_cores as a tuple); InventoryError naming `where`, each bad field and what it allows."""
    secrets = [k for k in data if any(w in str(k).lower() for w in SECRET_WORDS)]
    if secrets:
        raise InventoryError(f"{where}: remove {', '.join(secrets)}; secrets never go in the inventory (use an "
                             f"SSH agent, a key file, or the HWNAS_SSH_PASSPHRASE environment variable)")
    known = set(DeviceFile.model_fields)
    unknown = sorted(str(k) for k in set(data) - known)
    if unknown:
        raise InventoryError(f"{where}: unknown field(s) {', '.join(_shown(k)[1:-1] for k in unknown)}; "
                             f"allowed: {', '.join(sorted(known))}")
    try:
        checked = DeviceFile.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(f"{where}: {_problems(exc, data)}") from None
    values = checked.model_dump()
    if values["pin_cores"] is not None:
        values["pin_cores"] = tuple(values["pin_cores"])
    return values


def _problems(exc: ValidationError, data: dict[str, Any]) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        name = loc[0] if loc else ""
        if name in ALLOWED:
            items = [part for part in loc[1:] if part.isdigit()]
            at = f" (item {items[0]})" if items else ""
            problem = f"{name} must be {ALLOWED[name]}, got {_shown(data.get(name))}{at}"
            if problem not in problems:
                problems.append(problem)
        else:  # a rule over several fields (transport needs): its message names the field
            problems.append(str(error["msg"]).removeprefix("Value error, "))
    return "; ".join(problems)


@dataclass(frozen=True)
class DeviceConfig:
    """How to reach one device and how to measure on it (defaults for BenchmarkSettings). The fields are
    DeviceFile's; they are checked (`check_device_fields`) when a config is made."""

    name: str
    transport: str = "local"
    host: str | None = None
    user: str | None = None
    port: int | None = None
    key: str | None = None
    serial: str | None = None
    runtime: str = "tflite"
    threads: int = 1
    gpu: bool = False
    python: str | None = None
    remote_dir: str | None = None
    known_hosts: str | None = None
    connect_timeout_s: float = 10.0
    reconnect_timeout_s: float = 120.0
    lock_timeout_s: float = 3600.0
    benchmark_binary: str | None = None
    adb: str = "adb"
    pin_cores: tuple[int, ...] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        validate_name(self.name)
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "extra")}
        for key, value in check_device_fields(values, f"device {self.name}").items():
            object.__setattr__(self, key, value)

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
            lines.append(f"{key} = {toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any], source: str = "") -> DeviceConfig:
        where = source or f"device {name}"
        values = check_device_fields(data, where)
        return cls(name=name, **{k: v for k, v in values.items() if k in data})


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string holding `text` exactly: quotes, backslashes and every control character (C0, DEL,
    C1) escaped, so what is written always loads back."""
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif CONTROL_RE.match(char):
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InventoryError(f"cannot write {value!r} to a device file")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_string(str(value))


def load_device_config(path: str | Path) -> DeviceConfig:
    """The device file at `path`, checked; InventoryError (one line naming the file) for any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InventoryError(f"no device file {path}; add one with `hwnas device add {path.stem} ...`") from None
    except OSError as exc:
        raise InventoryError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        validate_name(path.stem)
    except InventoryError as exc:
        raise InventoryError(f"{path}: {exc}; rename the file") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path} is not UTF-8 text (byte {exc.start}); fix or re-create it with "
                             f"`hwnas device add`") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path} is not valid TOML ({exc}); fix or re-create it with `hwnas device add`") from None
    except RecursionError:
        raise InventoryError(f"{path} is nested too deeply to be a device file") from None
    return DeviceConfig.from_dict(path.stem, data, str(path))


def load_inventory(workspace: Workspace | None = None, errors: dict[str, str] | None = None) -> dict[str, DeviceConfig]:
    """All devices of a workspace (default: Workspace.find()), by name.

    Without `errors`, the first bad file raises its InventoryError. With a dict, a bad file does not stop the
    listing: its one-line message is stored there under the file's name (e.g. `errors["pi.toml"]`), and the good
    devices are returned."""
    ws = workspace or Workspace.find()
    if not ws.devices_dir.is_dir():
        return {}
    configs = {}
    for path in sorted(ws.devices_dir.glob("*.toml")):
        try:
            configs[path.stem] = load_device_config(path)
        except InventoryError as exc:
            if errors is None:
                raise
            errors[path.name] = str(exc)
    return configs


def add_device(workspace: Workspace | None, name: str, *, overwrite: bool = False,
               before_write: Callable[[DeviceConfig], None] | None = None, **options: Any) -> DeviceConfig:
    """Write devices/<name>.toml atomically and return its config. Options are DeviceConfig fields.
    `before_write` (e.g. a first SSH connection that records the host key) is called with the checked config
    before anything is written: when it raises, no file is written and an existing one stays as it was."""
    ws = workspace or Workspace.find()
    path = device_file(ws, name)
    config = DeviceConfig.from_dict(name, {k: v for k, v in options.items() if v is not None})
    if path.exists() and not overwrite:
        raise InventoryError(f"device {name} already exists ({path}); pass --force to replace it")
    if before_write is not None:
        before_write(config)
    atomic_write_text(path, config.to_toml())
    return config
