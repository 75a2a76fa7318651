"""The host side of the on-device runner protocol, shared by every runner-based transport: push the runner and
missing models, write the manifest, stream the runner's JSON lines into Measurements, and resume after a dropped
link without measuring anything twice. The protocol itself is described in docs/devices.md ("Runner protocol").

A transport supplies a few primitives (`_exec`, `_open_stream`, `_list_dir`, `_push`, `_write_file`,
`_remove_tree`, `_recover`); `RunnerDevice.benchmark` does the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import posixpath
import re
import socket
import tarfile
import tempfile
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hwnas.devices.base import BenchmarkModel, BenchmarkSettings, Device, Measurement, sha256_file
from hwnas.devices.inventory import DeviceConfig
from hwnas.devices.runner import MANIFEST_VERSION, check_manifest
from hwnas.errors import DeviceError, HostKeyError, TransportError

__all__ = ["RunnerDevice", "LineStream", "RUNNER_PATH", "runner_sha256", "build_manifest",
           "measurement_from_record", "failed_measurement", "owner_token"]

log = logging.getLogger(__name__)

RUNNER_PATH = Path(__file__).with_name("runner.py")
MAX_ATTEMPTS_WITHOUT_PROGRESS = 4
BUNDLE_MIN_FILES = 4  # from this many missing models on, push them as one archive
SUFFIX_RE = re.compile(r"^\.[A-Za-z0-9]{1,8}$")

ProgressFn = Callable[[Measurement, int, int], None]


def runner_sha256() -> str:
    return sha256_file(RUNNER_PATH)


def owner_token(device: str, workspace: str | Path | None = None) -> str:
    """Who starts a batch (this host, the workspace, the device name), as 16 hex digits written into the manifest:
    a later batch of the same owner stops the runners an abandoned one left behind (`runner.py reap`)."""
    text = f"{socket.gethostname()}\0{Path(workspace).resolve() if workspace else ''}\0{device}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class LineStream:
    """Lines from a running command. `readline(timeout_s)`: a line, None on timeout, '' at the end.

    Subclasses give `_read(timeout_s)`: the next chunk of stdout, b"" at its end, None when nothing came in
    time; they keep the last 4 KiB of stderr with `_keep_stderr`."""

    def __init__(self) -> None:
        self.buffer = b""
        self.err = b""
        self.eof = False

    def readline(self, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            if self.eof:
                line, self.buffer = self.buffer, b""
                return line.decode(errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            chunk = self._read(left)
            if chunk:
                self.buffer += chunk
            elif chunk is not None:
                self.eof = True
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace") + "\n"

    def _read(self, timeout_s: float) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError

    def _keep_stderr(self, chunk: bytes) -> None:
        self.err = (self.err + chunk)[-4096:]

    def stderr_tail(self) -> str:
        return self.err.decode(errors="replace")

    def close(self) -> None:
        pass


def _nan() -> float:
    return math.nan


def measurement_from_record(record: dict[str, Any], device: str, settings: BenchmarkSettings) -> Measurement:
    if record.get("type") == "failed":
        return failed_measurement(record.get("sha256") or "", record.get("key") or "", device, settings,
                                  record.get("error") or "failed", record.get("runtime_version") or "")
    return Measurement(
        model_sha256=record["sha256"], key=record["key"], device=device, runtime=record["runtime"],
        runtime_version=record.get("runtime_version") or "", threads=int(record.get("threads", settings.threads)),
        warmup=int(record.get("warmup", settings.warmup)), runs=int(record.get("runs", settings.runs)),
        median_ms=float(record["median_ms"]), mean_ms=float(record["mean_ms"]), std_ms=float(record["std_ms"]),
        min_ms=float(record["min_ms"]), p90_ms=float(record["p90_ms"]), n=int(record["n"]),
        state_before=record.get("state_before") or {}, state_after=record.get("state_after") or {},
        timestamp=float(record.get("timestamp") or time.time()), run_total_ms=record.get("run_total_ms"),
        op_profile=record.get("op_profile"), sessions=record.get("sessions"),
        round_medians_ms=record.get("round_medians_ms"), round_levels=record.get("round_levels"),
        raw_median_ms=record.get("raw_median_ms"),
    )


def failed_measurement(sha256: str, key: str, device: str, settings: BenchmarkSettings, error: str,
                       runtime_version: str = "") -> Measurement:
    return Measurement(
        model_sha256=sha256, key=key, device=device, runtime=settings.runtime, runtime_version=runtime_version,
        threads=settings.threads, warmup=settings.warmup, runs=0, median_ms=_nan(), mean_ms=_nan(),
        std_ms=_nan(), min_ms=_nan(), p90_ms=_nan(), n=0, timestamp=time.time(), status="failed", error=error,
    )


def build_manifest(models: Sequence[BenchmarkModel], paths: dict[str, str], settings: BenchmarkSettings,
                   results: str, owner: str | None = None, lock_timeout_s: float | None = None) -> dict[str, Any]:
    """The manifest the runner reads (docs/devices.md, "Runner protocol"): the settings, the results file, who
    started the batch, how long to wait for the device lock, and per model its index, path on the device
    (`paths`: sha256 -> path), key, sha256 and input shapes. It is checked against the runner's own schema here,
    so a bad setting fails on the host, naming the field."""
    manifest = {
        "version": MANIFEST_VERSION, "runtime": settings.runtime, "threads": settings.threads,
        "warmup": settings.warmup, "runs": settings.runs, "min_seconds": settings.min_seconds,
        "rounds": settings.rounds, "timeout_per_model_s": settings.timeout_per_model_s, "use_gpu": settings.use_gpu,
        "fresh_session": settings.fresh_session, "pin_cores": list(settings.pin_cores) if settings.pin_cores else None,
        "results": results, "owner": owner, "lock_timeout_s": lock_timeout_s,
        "models": [{"index": i, "path": paths[m.sha256], "key": m.key, "sha256": m.sha256,
                    "input_shapes": [list(s) for s in m.input_shapes] if m.input_shapes else None}
                   for i, m in enumerate(models)],
    }
    problems = check_manifest(manifest)
    if problems:
        raise DeviceError(f"cannot measure with these settings: {'; '.join(problems)}")
    return manifest


def _remote_name(model: BenchmarkModel) -> str:
    suffix = model.path.suffix if SUFFIX_RE.match(model.path.suffix) else ".bin"
    return f"{model.sha256}{suffix}"


class RunnerDevice(Device):
    """A device that runs `runner.py` (local subprocess, SSH, or ADB with Python on the phone).

    `Measurement.wall_ms` is the host time since the previous measurement was yielded (the first: since the
    batch started, pushes included), so the wall times of a batch add up to its wall time and
    `sum(wall_ms) - sum(run_total_ms)` is the batch's overhead.
    """

    models_are_local = False  # True: the runner reads the caller's files in place (nothing to push)
    bundle_with_runner = True  # many missing models travel as one tar archive the runner unpacks
    link_timeout_s = 30.0  # no line (not even a heartbeat) for this long: the link is considered dead

    def __init__(self, config: DeviceConfig):
        self.config = config
        self.name = config.name
        self.progress: ProgressFn | None = None  # called with (measurement, done, total) after each model
        self.waiting: Callable[[str], None] | None = None  # called with a message while another batch holds the device
        self.owner = owner_token(config.name)  # open_device adds the workspace
        self._said_waiting_at = -math.inf
        self.keep_runs = False  # keep the run folder (manifest, results.jsonl) on the device, for inspection
        self.last_run_dir: str | None = None

    # -- primitives a transport implements ------------------------------------------------------------
    @property
    @abstractmethod
    def root(self) -> str:
        """The cache folder on the device (posix path; relative paths are relative to the login folder)."""

    @property
    def python(self) -> str:
        return self.config.python or "python3"

    @abstractmethod
    def _exec(self, argv: Sequence[str], cwd: str | None = None, timeout_s: float = 60.0) -> tuple[int, str, str]:
        """Run argv on the device; (exit code, stdout, stderr). Raises TransportError if the link fails."""

    @abstractmethod
    def _open_stream(self, argv: Sequence[str], cwd: str | None = None) -> LineStream:
        """Start argv on the device and return its stdout lines."""

    @abstractmethod
    def _list_dir(self, path: str) -> set[str]:
        """Names in a device folder (empty when it does not exist)."""

    @abstractmethod
    def _push(self, local: Path, remote: str) -> None:
        """Copy a local file to the device atomically (temporary name, then rename); makes parent folders."""

    @abstractmethod
    def _write_file(self, remote: str, data: bytes) -> None:
        """Write bytes to a device file atomically; makes parent folders."""

    @abstractmethod
    def _remove_tree(self, path: str) -> None:
        """Delete a device folder and everything in it (missing is fine)."""

    @abstractmethod
    def _recover(self, error: Exception, deadline: float) -> None:
        """The link failed: reconnect (retrying until `deadline`, a time.monotonic value) or raise."""

    # -- shared ---------------------------------------------------------------------------------------
    def _reconnect(self, deadline: float, attempt: Callable[[], None]) -> None:
        """Call `attempt` (which reconnects) until it stops raising TransportError, backing off from 0.2 s to
        2 s; past `deadline` (a time.monotonic value) give up with a TransportError."""
        delay = 0.2
        while True:
            try:
                attempt()
                return
            except HostKeyError:
                raise  # a changed or unknown host key is never retried
            except TransportError as exc:
                if time.monotonic() + delay > deadline:
                    raise TransportError(f"device {self.name}: could not reconnect before the deadline ({exc})") \
                        from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _runner_argv(self, runner: str, *args: str) -> list[str]:
        """The device's Python running the runner; `--` first, so no path is ever read as an option of Python."""
        return [self.python, "--", runner, *args]

    def _runner_remote(self) -> str:
        """Push the runner once (by content hash); return its path on the device."""
        if self.models_are_local:
            return str(RUNNER_PATH)
        name = f"runner-{runner_sha256()[:16]}.py"
        if name not in self._list_dir(self.root):
            self._push(RUNNER_PATH, self._path(name))
        return self._path(name)

    def info(self) -> dict[str, Any]:
        runner = self._runner_remote()
        code, out, err = self._exec(self._runner_argv(runner, "info"), timeout_s=120.0)
        if code != 0:
            raise DeviceError(f"device {self.name}: the runner failed ({_tail(err) or f'exit code {code}'}); "
                              f"check that `{self.python}` runs there (set python = \"...\" in devices/"
                              f"{self.name}.toml)")
        try:
            data = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise DeviceError(f"device {self.name}: unreadable runner output {out[-200:]!r}") from None
        data["transport"] = self.config.transport
        data["target"] = self.config.target
        return data

    def push_models(self, models: Sequence[BenchmarkModel], runner: str | None = None) -> dict[str, str]:
        """Push the models the device lacks (by sha256); return sha256 -> path on the device.

        With the runner's path given and several files missing, they travel as one tar archive that the runner
        unpacks (checking every file's sha256): one transfer instead of several round trips per file."""
        if self.models_are_local:
            return {m.sha256: str(m.path.resolve()) for m in models}
        folder = self._path("models")
        present = self._list_dir(folder)
        missing: dict[str, BenchmarkModel] = {}
        for model in models:
            name = _remote_name(model)
            if name not in present and name not in missing:
                if sha256_file(model.path) != model.sha256:
                    raise DeviceError(f"{model.path} changed since it was hashed; rebuild its BenchmarkModel")
                missing[name] = model
        if runner and self.bundle_with_runner and len(missing) >= BUNDLE_MIN_FILES:
            self._push_bundle(missing, folder, runner)
        elif missing:
            self._push_files({name: model.path for name, model in missing.items()}, folder)
        return {m.sha256: posixpath.join(folder, _remote_name(m)) for m in models}

    def _push_files(self, files: dict[str, Path], folder: str) -> None:
        """Push local files into a device folder under the given names (one by one; transports may batch)."""
        for name, local in files.items():
            self._push(local, posixpath.join(folder, name))

    def _push_bundle(self, missing: dict[str, BenchmarkModel], folder: str, runner: str) -> None:
        with tempfile.TemporaryDirectory(prefix="hwnas-push-") as tmp:
            archive = Path(tmp) / "models.tar"
            with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
                for name, model in missing.items():
                    tar.add(str(model.path), arcname=name, recursive=False)
            remote = self._path(f"incoming-{uuid.uuid4().hex[:12]}.tar")
            self._push(archive, remote)
        code, _, err = self._exec(self._runner_argv(runner, "unpack", remote, folder), timeout_s=600.0)
        if code != 0:
            raise DeviceError(f"device {self.name}: unpacking the pushed models failed: {_tail(err)}")

    def benchmark(self, models: Sequence[BenchmarkModel], settings: BenchmarkSettings) -> Iterator[Measurement]:
        models = list(models)
        if not models:
            return
        started = time.monotonic()
        self._said_waiting_at = -math.inf
        batch_deadline = started + settings.timeout_per_batch_s if settings.timeout_per_batch_s else math.inf
        runner = self._retrying(self._runner_remote, batch_deadline)
        paths = self._retrying(lambda: self.push_models(models, runner), batch_deadline)
        self._retrying(lambda: self.stop_abandoned(runner), batch_deadline)
        run_dir = self._path("runs", f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}")
        manifest = build_manifest(models, paths, settings, posixpath.join(run_dir, "results.jsonl"), self.owner,
                                  self.config.lock_timeout_s)
        self.last_run_dir = run_dir
        manifest_path = posixpath.join(run_dir, "manifest.json")
        self._retrying(lambda: self._write_file(manifest_path, json.dumps(manifest).encode()), batch_deadline)
        argv = self._runner_argv(runner, "run", manifest_path)
        yielded: set[int] = set()
        rounds_seen: set[tuple[int, int]] = set()  # (model index, round) the runner recorded: progress, per round
        last = time.monotonic()
        attempts = 0
        try:
            while len(yielded) < len(models):
                progress_before = (len(yielded), len(rounds_seen))
                try:
                    stream = self._open_stream(argv)
                    try:
                        ended = False
                        while True:
                            if time.monotonic() > batch_deadline:
                                yield from self._batch_timeout(models, yielded, settings, run_dir)
                                return
                            wait_s = min(self.link_timeout_s, max(0.1, batch_deadline - time.monotonic()))
                            line = stream.readline(wait_s)
                            if line is None:
                                if time.monotonic() > batch_deadline:
                                    continue
                                raise TransportError(f"device {self.name}: no data for {self.link_timeout_s:.0f} s")
                            if line == "":
                                break
                            record = _parse(line)
                            kind = record.get("type") if record else None
                            if kind in ("result", "failed"):
                                index = int(record["index"])
                                if index in yielded or not 0 <= index < len(models):
                                    continue
                                yielded.add(index)
                                now = time.monotonic()
                                m = measurement_from_record(record, self.name, settings)
                                m.wall_ms = (now - last) * 1000.0
                                last = now
                                if self.progress:
                                    self.progress(m, len(yielded), len(models))
                                yield m
                            elif kind == "progress":
                                rounds_seen.add((int(record["index"]), int(record["round"])))
                            elif kind == "busy":
                                self._say_waiting(record.get("holder"), time.monotonic() - started)
                            elif kind == "end":
                                if record.get("busy") is not None:
                                    raise DeviceError(self._busy_message(record["busy"], time.monotonic() - started))
                                ended = True
                                break
                        if not ended:
                            detail = _tail(stream.stderr_tail())
                            raise TransportError(f"device {self.name}: the runner stopped before the end"
                                                 f"{': ' + detail if detail else ''}")
                    finally:
                        stream.close()
                    if len(yielded) < len(models):  # an 'end' that skipped models cannot happen; guard anyway
                        raise DeviceError(f"device {self.name}: the runner ended with {len(models) - len(yielded)} "
                                          "models unmeasured")
                except TransportError as exc:
                    progressed = (len(yielded), len(rounds_seen)) != progress_before
                    attempts = 0 if progressed else attempts + 1
                    if attempts >= MAX_ATTEMPTS_WITHOUT_PROGRESS:
                        raise
                    self._recover(exc, min(batch_deadline, time.monotonic() + self.config.reconnect_timeout_s))
        finally:
            try:
                if not self.keep_runs:
                    self._remove_tree(run_dir)
            except (TransportError, DeviceError, OSError):
                pass  # the link is gone: the next batch of this owner stops the runner (stop_abandoned)

    def stop_abandoned(self, runner: str) -> list[str]:
        """Stop the runners that earlier batches of this owner left measuring (after a give-up, the link down);
        return their run folders' names. Nothing to do (no device command) when no run folder is left."""
        runs = self._path("runs")
        if self.models_are_local or not self._list_dir(runs):
            return []
        code, out, err = self._exec(self._runner_argv(runner, "reap", runs, self.owner), timeout_s=120.0)
        if code != 0:
            raise DeviceError(f"device {self.name}: could not stop runners left by an abandoned batch: "
                              f"{_tail(err) or f'exit code {code}'}")
        report = _parse(out.strip().splitlines()[-1]) if out.strip() else None
        stopped = list((report or {}).get("stopped") or [])
        if stopped:
            log.warning("device %s: stopped %d runner(s) still measuring for an abandoned batch (%s)", self.name,
                        len(stopped), ", ".join(stopped))
        return stopped

    def _say_waiting(self, holder: Any, waited_s: float) -> None:
        message = (f"device {self.name}: waiting for another batch to finish measuring there "
                   f"({_holder(holder)}; waiting up to {self.config.lock_timeout_s:.0f} s, lock_timeout_s)")
        if self.waiting is not None:
            self.waiting(message)
        elif waited_s - self._said_waiting_at >= 60.0:  # the log: the first time, then once a minute
            log.warning("%s", message)
            self._said_waiting_at = waited_s

    def _busy_message(self, holder: Any, waited_s: float) -> str:
        return (f"device {self.name} is busy: another batch measures there ({_holder(holder)}); gave up after "
                f"{waited_s:.0f} s; run again when it is done, or raise lock_timeout_s in devices/{self.name}.toml")

    def _retrying(self, step: Callable[[], Any], deadline: float) -> Any:
        """Run a preparation step (push, manifest); after a dropped link, reconnect and run it again (steps
        are idempotent: pushes skip what already arrived)."""
        attempts = 0
        while True:
            try:
                return step()
            except TransportError as exc:
                attempts += 1
                if attempts >= MAX_ATTEMPTS_WITHOUT_PROGRESS:
                    raise
                self._recover(exc, min(deadline, time.monotonic() + self.config.reconnect_timeout_s))

    def _batch_timeout(self, models: Sequence[BenchmarkModel], yielded: set[int], settings: BenchmarkSettings,
                       run_dir: str) -> Iterator[Measurement]:
        try:
            self._write_file(posixpath.join(run_dir, "stop"), b"")
        except (TransportError, DeviceError, OSError):
            pass
        error = f"batch timed out after {settings.timeout_per_batch_s:.1f} s (timeout_per_batch_s)"
        for i, model in enumerate(models):
            if i not in yielded:
                yielded.add(i)
                yield failed_measurement(model.sha256, model.key, self.name, settings, error)


def _parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _holder(holder: Any) -> str:
    holder = holder if isinstance(holder, dict) else {}
    since = holder.get("since")
    when = time.strftime(" since %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else ""
    return f"runner pid {holder.get('pid') or '?'}{when}"


def _tail(text: str, n: int = 300) -> str:
    text = " | ".join(line for line in text.strip().splitlines()[-3:])
    return text[-n:]

