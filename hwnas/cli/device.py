"""`hwnas device add|list|check`: the device inventory of a workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hwnas.cli._common import JsonOpt, WorkspaceOpt, console, out, plain, workspace
from hwnas.devices import add_device, device_from_config, load_inventory
from hwnas.devices.check import find_problems
from hwnas.errors import HwnasError, InventoryError

group = typer.Typer(help="Manage target devices (devices/*.toml in the workspace).", no_args_is_help=True)

TrustOpt = Annotated[bool, typer.Option("--trust-new-host", help="Record an unknown SSH host key in known_hosts.")]


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.add_typer(group, name="device")


def _parse_ssh(target: str) -> tuple[str | None, str, int | None]:
    user, _, hostport = target.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):  # [ipv6]:port
        host, _, rest = hostport[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    elif hostport.count(":") == 1:
        host, _, text = hostport.partition(":")
        if not text.isdigit():
            raise InventoryError(f"bad port in {target!r}; use --ssh user@host:PORT")
        port = int(text)
    if not host:
        raise InventoryError(f"no host in {target!r}; use --ssh user@host[:port]")
    return user or None, host, port


@group.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Device name (letters, digits, '.', '_', '-').")],
    ssh: Annotated[str | None, typer.Option("--ssh", help="user@host[:port] of a Linux device.")] = None,
    adb: Annotated[str | None, typer.Option("--adb", help="adb serial, or host:port for adb over TCP.")] = None,
    local: Annotated[bool, typer.Option("--local", help="This machine.")] = False,
    runtime: Annotated[str, typer.Option("--runtime", help="tflite, onnxruntime or torch.")] = "tflite",
    threads: Annotated[int, typer.Option("--threads", min=1, help="Inference threads.")] = 1,
    gpu: Annotated[bool, typer.Option("--gpu", help="Measure on the GPU (CUDA / TensorRT / TFLite GPU).")] = False,
    key: Annotated[Path | None, typer.Option("--key", help="SSH private key file (its path is stored).")] = None,
    python: Annotated[str | None, typer.Option("--python", help="Python interpreter on the device.")] = None,
    remote_dir: Annotated[str | None, typer.Option("--remote-dir", help="Cache folder on the device.")] = None,
    known_hosts: Annotated[Path | None, typer.Option("--known-hosts", help="known_hosts file to use.")] = None,
    benchmark_model: Annotated[Path | None, typer.Option(
        "--benchmark-model", help="adb only: TFLite benchmark_model binary built for the phone, a file on THIS "
        "machine (copied to the phone when measuring); a missing file is refused.")] = None,
    trust_new_host: Annotated[bool, typer.Option(
        "--trust-new-host", help="ssh: connect once now and record an unknown host key in known_hosts; when that "
        "connection fails, no device file is written.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing device file.")] = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Add a device to the workspace inventory (no secrets are ever stored)."""
    chosen = [flag for flag, value in (("--ssh", ssh), ("--adb", adb), ("--local", local)) if value]
    if len(chosen) != 1:
        raise InventoryError("give exactly one of --ssh user@host[:port], --adb SERIAL or --local")
    if benchmark_model is not None and not adb:
        raise InventoryError("--benchmark-model is for --adb devices (TFLite's benchmark_model run on a phone)")
    options: dict[str, Any] = dict(runtime=runtime, threads=threads, gpu=gpu, python=python, remote_dir=remote_dir)
    if ssh:
        user, host, port = _parse_ssh(ssh)
        options.update(transport="ssh", user=user, host=host, port=port,
                       key=str(key.expanduser().resolve()) if key else None,
                       known_hosts=str(known_hosts.expanduser().resolve()) if known_hosts else None)
    elif adb:
        options.update(transport="adb", serial=adb,
                       benchmark_binary=str(_local_binary(benchmark_model)) if benchmark_model else None)
    else:
        options.update(transport="local")
    ws = workspace(ws_path)
    connect = _record_host_key if trust_new_host and ssh else None
    config = add_device(ws, name, overwrite=force, before_write=connect, **options)
    console.print(f"added {name} ({config.target}, {config.runtime}, {config.threads} thread(s)) to "
                  f"{ws.devices_dir / (name + '.toml')}")
    console.print(f"check it with: hwnas device check {name}")


def _local_binary(path: Path) -> Path:
    """--benchmark-model: a file on this machine (hwnas copies it to the phone), checked here."""
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        what = "is a folder" if resolved.is_dir() else "does not exist"
        raise InventoryError(f"--benchmark-model {path} {what} on this machine; pass the path of a benchmark_model "
                             "binary built for the phone (hwnas copies it there)")
    return resolved


def _record_host_key(config: Any) -> None:
    """The first connection of `device add --ssh --trust-new-host`, before the file is written."""
    try:
        with device_from_config(config, trust_new_host=True):
            console.print(f"host key of {config.host} recorded")
    except HwnasError as exc:
        raise InventoryError(f"{exc}; devices/{config.name}.toml was not written: fix the connection and run "
                             "`hwnas device add` again") from None


@group.command("list")
def list_devices(as_json: JsonOpt = False, ws_path: WorkspaceOpt = None) -> None:
    """List the devices of the workspace. A device file that cannot be read is one line on stderr
    (`devices/NAME.toml: what is wrong`; under "errors" with --json) while the others are listed; the exit code
    is then 1."""
    ws = workspace(ws_path)
    errors: dict[str, str] = {}
    inventory = load_inventory(ws, errors=errors)
    problems = [_file_problem(ws, file, message) for file, message in sorted(errors.items())]
    if as_json:
        out.print_json(json.dumps({"devices": {name: c.to_dict() for name, c in inventory.items()},
                                   "errors": problems}, default=str))
    else:
        table = Table("device", "transport", "target", "runtime", "threads", "gpu", "description")
        for name, c in inventory.items():
            table.add_row(name, c.transport, c.target, c.runtime, str(c.threads), "yes" if c.gpu else "",
                          c.description)
        out.print(table)
        for problem in problems:
            plain(f"error: {problem['error']}")
    if problems:
        raise typer.Exit(1)


def _file_problem(ws: Any, file: str, message: str) -> dict[str, str]:
    """{"file": "devices/x.toml", "error": one line starting with that name}: the workspace's path is left out."""
    shown = f"{ws.devices_dir.name}/{file}"
    line = " ".join(message.replace(str(ws.devices_dir / file), shown).split())
    return {"file": shown, "error": line if line.startswith(shown) else f"{shown}: {line}"}


@group.command("check")
def check(
    name: Annotated[str, typer.Argument(help="Device name.")],
    trust_new_host: TrustOpt = False,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Connect, print the device's fingerprint and what is missing (with the command that fixes it)."""
    inventory = load_inventory(workspace(ws_path))
    if name not in inventory:
        raise InventoryError(f"no device {name!r} (known: {', '.join(inventory) or 'none'}); add it with "
                             f"`hwnas device add {name} ...`")
    config = inventory[name]
    options = {"trust_new_host": True} if trust_new_host and config.transport == "ssh" else {}
    with device_from_config(config, **options) as device:
        info = device.info()
    problems = find_problems(config, info)
    if as_json:
        out.print_json(json.dumps({"device": name, "info": info,
                                   "problems": [{"what": p.what, "fix": p.fix, "blocking": p.blocking}
                                                for p in problems]}))
    else:
        table = Table("field", "value", title=f"{name} ({config.target})")
        for field in ("model", "board_platform", "cpu_model", "cores", "abi", "os", "android", "python", "numpy",
                      "governor", "mode"):
            if info.get(field) is not None:
                table.add_row(field, str(info[field]))
        for runtime_name, version in (info.get("runtimes") or {}).items():
            table.add_row(f"runtime {runtime_name}", str(version) if version else "missing")
        if info.get("cpu_freq_mhz"):
            table.add_row("cpu MHz", ", ".join(f"{f:.0f}" for f in info["cpu_freq_mhz"]))
        for zone, temp in (info.get("temperature_c") or {}).items():
            table.add_row(f"temp {zone}", f"{temp:.1f} C")
        out.print(table)
        for p in problems:
            out.print(f"{'missing' if p.blocking else 'advice'}: {p.what}\n  fix: {p.fix}", highlight=False,
                      markup=False, soft_wrap=True)  # never break a command the user will paste
        if not problems:
            out.print(f"{name} is ready: {config.runtime}, {config.threads} thread(s)")
    if any(p.blocking for p in problems):
        raise typer.Exit(1)
