"""The device farm: jobs (profile, deploy) on several devices at once, one driver thread per device.

In-process (no Ray), each thread holds the device itself. With Ray, each device is served by one `DeviceActor`
holding its connection; the driver's thread measures through a `RemoteDevice` proxy (a `Device`), which sends
model files as bytes (once per actor: the actor keeps them by sha256) and streams each Measurement back as the
device reports it, so the driver's store records it at once (the same resume guarantees as in-process). Device
errors come back as the same hwnas error types, with their one-line messages. One job at a time per device is
the runner's machine-wide device lock (docs/devices.md), not the farm's.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import hwnas.errors as errors
from hwnas.devices.base import BenchmarkModel, BenchmarkSettings, Device, Measurement
from hwnas.errors import DeviceError, HwnasError, TransportError
from hwnas.progress import ProgressEvent, ProgressFn
from hwnas.workspace import Workspace

__all__ = ["DeviceActor", "RemoteDevice", "DeviceFarm", "FarmOutcome", "device_resource", "SEND_BATCH_BYTES"]

SEND_BATCH_BYTES = 64 * 1024 * 1024  # model bytes sent to an actor per call, at most (one model may exceed it)
SUFFIX_RE = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
CLOSE_TIMEOUT_S = 60.0

T = TypeVar("T")


def device_resource(name: str) -> str:
    """The Ray custom resource that places a device's actor on one node: start the node that reaches the device
    with `ray start ... --resources '{"hwnas-device-NAME": 1}'`."""
    return f"hwnas-device-{name}"


def _error_record(exc: BaseException) -> dict[str, Any]:
    return {"error": {"type": type(exc).__name__, "message": str(exc).strip() or type(exc).__name__}}


def _model_name(sha256: str, path: Path) -> str:
    suffix = path.suffix if SUFFIX_RE.match(path.suffix) else ""
    return f"{sha256}{suffix}"


class DeviceActor:
    """Runs in a Ray worker: opens one inventory device and measures on it, one batch at a time. Model files
    arrive as bytes and are kept by sha256 in a private temporary folder. Methods return plain data; errors
    come back as `{"error": {"type", "message"}}` records, never raised, so the driver can re-raise the same
    hwnas error with its one-line message."""

    def __init__(self, config: Any, owner: str | None = None):
        self.config, self.owner = config, owner
        self.device: Device | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="hwnas-farm-"))
        self._busy = threading.Lock()  # one batch at a time; close waits for it (the actor runs 2 threads)
        self._stopped: set[str] = set()  # ids of batches the driver abandoned

    def open(self) -> dict[str, Any]:
        """Connect to the device; returns where this actor runs (host name) or an error record."""
        from hwnas.devices import device_from_config
        from hwnas.devices.runner_host import RunnerDevice

        try:
            device = device_from_config(self.config)
            if isinstance(device, RunnerDevice) and self.owner:
                device.owner = self.owner
            device.connect()
        except Exception as exc:  # noqa: BLE001 - every failure travels back as a record
            return _error_record(exc)
        self.device = device
        return {"host": socket.gethostname()}

    def info(self) -> dict[str, Any]:
        try:
            return {"info": self._device().info()}
        except Exception as exc:  # noqa: BLE001
            return _error_record(exc)

    def missing(self, names: list[str]) -> list[str]:
        """Which of these model files (`<sha256><suffix>`) this actor does not hold yet."""
        return [n for n in names if not (self.folder / n).is_file()]

    def put(self, files: list[tuple[str, str, bytes]]) -> dict[str, Any]:
        """Keep model files sent as (name, sha256, bytes); each is checked against its sha256."""
        try:
            for name, sha256, data in files:
                if hashlib.sha256(data).hexdigest() != sha256 or Path(name).name != name:
                    raise TransportError(f"device {self.config.name}: model {sha256[:12]} arrived damaged")
                tmp = self.folder / f".{name}.part"
                tmp.write_bytes(data)
                tmp.replace(self.folder / name)
        except Exception as exc:  # noqa: BLE001
            return _error_record(exc)
        return {}

    def benchmark(self, models: list[tuple[str, str, str, Any]], settings: BenchmarkSettings, batch_id: str = "") \
            -> Iterator[dict[str, Any]]:
        """Measure models given as (file name, key, sha256, input shapes); yields one record per model as the
        device reports it (a Ray streaming generator on the driver's side)."""
        with self._busy:
            try:
                batch = [BenchmarkModel(self.folder / n, key, sha256, shapes) for n, key, sha256, shapes in models]
                measured = self._device().benchmark(batch, settings)
                try:
                    for m in measured:
                        yield {"measurement": m.to_dict()}
                        if batch_id in self._stopped:
                            return
                finally:
                    if hasattr(measured, "close"):
                        measured.close()  # the device stops its runner and cleans up (an abandoned batch)
            except Exception as exc:  # noqa: BLE001
                yield _error_record(exc)

    def stop(self, batch_id: str) -> None:
        """The driver abandoned the batch `batch_id`: end it after the model being measured."""
        self._stopped.add(batch_id)

    def close(self) -> None:
        """Close the device once the running batch has ended (the driver stops an abandoned one first)."""
        with self._busy:
            try:
                if self.device is not None:
                    self.device.close()
            finally:
                self.device = None
                shutil.rmtree(self.folder, ignore_errors=True)

    def _device(self) -> Device:
        if self.device is None:
            raise DeviceError(f"device {self.config.name} is not open")
        return self.device


class RemoteDevice(Device):
    """A `Device` on the driver whose work happens in a `DeviceActor`: `info()` and `benchmark()` forward to it.
    Use as a context manager, like any Device (connect starts the actor and opens the device)."""

    def __init__(self, ray: Any, config: Any, owner: str | None = None):
        self.ray, self.config, self.owner = ray, config, owner
        self.name = config.name
        self.actor: Any = None
        self.host: str | None = None

    def connect(self) -> None:
        remote = self.ray.remote(DeviceActor)
        self.actor = remote.options(**_placement(self.ray, self.config)).remote(self.config, self.owner)
        self.host = self._call(self.actor.open.remote()).get("host")

    def close(self) -> None:
        if self.actor is None:
            return
        try:
            self.ray.get(self.actor.close.remote(), timeout=CLOSE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a lost actor has nothing left to close
            pass
        try:
            self.ray.kill(self.actor)
        except Exception:  # noqa: BLE001
            pass
        self.actor = None

    def info(self) -> dict[str, Any]:
        return self._call(self.actor.info.remote())["info"]

    def benchmark(self, models: Sequence[BenchmarkModel], settings: BenchmarkSettings) -> Iterator[Measurement]:
        models = list(models)
        if not models:
            return
        names = self._send(models)
        specs = [(names[i], m.key, m.sha256, m.input_shapes) for i, m in enumerate(models)]
        batch_id = uuid.uuid4().hex
        stream = self.actor.benchmark.options(num_returns="streaming").remote(specs, settings, batch_id)
        finished = False
        try:
            for ref in stream:
                yield Measurement.from_dict(self._call(ref)["measurement"])
            finished = True
        finally:
            if not finished:  # abandoned (Ctrl-C, an error on the driver) or failed: end the batch there too
                try:
                    self.actor.stop.remote(batch_id)
                except Exception:  # noqa: BLE001 - a lost actor has nothing left to stop
                    pass

    def _send(self, models: list[BenchmarkModel]) -> list[str]:
        """Send the model files the actor lacks (by sha256), in calls of at most SEND_BATCH_BYTES; returns each
        model's file name on the actor."""
        names = [_model_name(m.sha256, m.path) for m in models]
        missing = set(self._call(self.actor.missing.remote(sorted(set(names)))))
        batch: list[tuple[str, str, bytes]] = []
        size = 0
        for name, model in zip(names, models):
            if name not in missing:
                continue
            missing.discard(name)
            data = model.path.read_bytes()
            if hashlib.sha256(data).hexdigest() != model.sha256:
                raise DeviceError(f"{model.path} changed since it was hashed; rebuild its BenchmarkModel")
            if batch and size + len(data) > SEND_BATCH_BYTES:
                self._call(self.actor.put.remote(batch))
                batch, size = [], 0
            batch.append((name, model.sha256, data))
            size += len(data)
        if batch:
            self._call(self.actor.put.remote(batch))
        return names

    def _call(self, ref: Any) -> Any:
        """The value of an actor call; an error record re-raised as its hwnas error, a lost actor as a
        TransportError naming the device."""
        try:
            value = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise TransportError(f"device {self.name}: its Ray actor was lost ({type(exc).__name__}: {first}); "
                                 "what was measured is kept: re-run to continue") from None
        if isinstance(value, dict) and "error" in value:
            raise _rebuild(self.name, value["error"])
        return value


def _rebuild(device: str, record: dict[str, Any]) -> HwnasError:
    """The hwnas error an actor reported, as the same type; any other exception as a DeviceError."""
    kind, message = str(record.get("type")), str(record.get("message"))
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, HwnasError):
        return cls(message)
    return DeviceError(f"device {device}: {kind}: {message}")


def _placement(ray: Any, config: Any) -> dict[str, Any]:
    """Where a device's actor runs: on the node offering the device's custom resource when the cluster has one;
    else a local or ADB device on the driver's node (the machine and USB the inventory means); else (SSH) any
    node. Actors take no CPU: they wait on the device."""
    options: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0, "max_concurrency": 2}
    resource = device_resource(config.name)
    try:
        offered = resource in ray.cluster_resources()
    except Exception:  # noqa: BLE001
        offered = False
    if offered:
        options["resources"] = {resource: 1}
    elif config.transport in ("local", "adb"):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        try:
            node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - a Ray client driver has no node of its own
            node = None
        if node:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
    else:
        options["scheduling_strategy"] = "SPREAD"
    return options


class _Cancelled(BaseException):
    """Raised inside a device's job (from its progress callback, after a stored measurement) to stop it."""


@dataclass
class FarmOutcome(Generic[T]):
    """Each device's result, or its error (the jobs of the others ran to their end)."""

    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, HwnasError] = field(default_factory=dict)

    def failure_message(self, what: str, kept: str) -> str:
        """One line naming each failed device and its reason, e.g. for `raise ProfilingError(...)`."""
        reasons = "; ".join(f"{name}: {_first_line(exc)}" for name, exc in self.errors.items())
        total = len(self.results) + len(self.errors)
        return f"{what} failed on {len(self.errors)} of {total} devices ({reasons}); {kept}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class DeviceFarm:
    """Runs one job per device, concurrently: one driver thread per device, each holding that device open
    (in-process, or through its actor when `ray` is the connected Ray module)."""

    def __init__(self, workspace: Workspace, ray: Any = None):
        self.workspace, self.ray = workspace, ray

    def device(self, name: str) -> AbstractContextManager[Device]:
        """The workspace device `name`, not connected yet (use it as a context manager)."""
        from hwnas.devices import open_device

        if self.ray is None:
            return open_device(name, self.workspace)
        from hwnas.devices.inventory import device_file, load_device_config
        from hwnas.devices.runner_host import owner_token

        config = load_device_config(device_file(self.workspace, name))
        return RemoteDevice(self.ray, config, owner_token(name, self.workspace.root))

    def run(self, names: Sequence[str], job: Callable[[str, Device, ProgressFn], T],
            progress: ProgressFn | None = None) -> FarmOutcome[T]:
        """`job(name, device, progress)` for every device at once, each in its own thread with the device open;
        its progress events reach `progress` one at a time, their stage prefixed with the device's name. A
        device's HwnasError is collected and the others go on. Ctrl-C stops every job at its next progress
        event (what was stored stays), then is raised."""
        names = list(dict.fromkeys(names))
        outcome: FarmOutcome[T] = FarmOutcome()
        cancelled = threading.Event()
        lock = threading.Lock()

        def report(name: str) -> ProgressFn:
            def forward(event: ProgressEvent) -> None:
                if cancelled.is_set():
                    raise _Cancelled()
                if progress is not None:
                    with lock:
                        progress(replace(event, stage=f"{name}: {event.stage}") if len(names) > 1 else event)
            return forward

        def one(name: str) -> T:
            with self.device(name) as device:
                return job(name, device, report(name))

        with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="hwnas-device") as pool:
            futures = {pool.submit(one, name): name for name in names}
            try:
                wait(futures)
            except KeyboardInterrupt:
                cancelled.set()
                wait(futures)
                raise
        bug: BaseException | None = None
        for future, name in futures.items():
            exc = future.exception()
            if exc is None:
                outcome.results[name] = future.result()
            elif isinstance(exc, HwnasError):
                outcome.errors[name] = exc
            elif bug is None:
                bug = exc
        if bug is not None:
            raise bug
        return outcome
