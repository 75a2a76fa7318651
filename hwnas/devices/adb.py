"""The `adb` transport: Android phones (USB or `adb connect HOST:PORT`) through the `adb` client binary.

Every call is an argument list; every path placed in a device shell command is quoted for that shell. Models
go to /data/local/tmp/hwnas/models/<sha256>.tflite. Measuring uses TFLite's `benchmark_model` (a binary the
user names, pushed once) or, where the phone has Python with a runtime (Termux), the hwnas runner.
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import shlex
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hwnas.devices.base import BenchmarkModel, BenchmarkSettings, Measurement, sha256_file
from hwnas.devices.benchmark_model import BenchmarkOutputError, parse_benchmark_output
from hwnas.devices.inventory import DeviceConfig
from hwnas.devices.local import ProcessLineStream
from hwnas.devices.runner import ROUND_LEVEL_MIN_ROUNDS, round_levels
from hwnas.devices.runner_host import LineStream, RunnerDevice, failed_measurement
from hwnas.devices.ssh import shell_command
from hwnas.errors import DeviceError, TransportError

__all__ = ["AdbDevice", "DEFAULT_REMOTE_DIR"]

BLOCK_SIZE = 64  # models whose rounds interleave; their results come at the end of the block's last round
log = logging.getLogger(__name__)
DEFAULT_REMOTE_DIR = "/data/local/tmp/hwnas"
MARK = "@@hwnas@@"
LINK_ERRORS = ("device offline", "not found", "no devices", "error: closed", "protocol fault", "connection reset",
               "cannot connect", "device unauthorized", "failed to connect", "broken pipe", "transport")
_STATE_SCRIPT = (
    "cat /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq 2>/dev/null; echo " + MARK + "; "
    "for z in /sys/class/thermal/thermal_zone*; do [ -r \"$z/temp\" ] && echo \"${z##*/}:$(cat \"$z/type\" "
    "2>/dev/null) $(cat \"$z/temp\" 2>/dev/null)\"; done; echo " + MARK
)
_INFO_SCRIPT = (
    "for p in ro.product.model ro.product.manufacturer ro.board.platform ro.product.cpu.abi "
    "ro.build.version.release ro.build.version.sdk; do echo \"prop $p=$(getprop $p)\"; done; "
    "echo \"cores $(grep -c ^processor /proc/cpuinfo)\"; "
    "grep -m1 -E '^(Hardware|model name|Processor)' /proc/cpuinfo | sed 's/^/cpu /'; "
    "echo \"governor $(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)\"; "
    "for c in /sys/devices/system/cpu/cpu[0-9]*; do [ -r \"$c/cpufreq/cpuinfo_max_freq\" ] && "
    "echo \"maxfreq ${c##*/} $(cat \"$c/cpufreq/cpuinfo_max_freq\")\"; done; "
    "echo \"python $(command -v python3 || command -v python)\"; echo " + MARK + "; " + _STATE_SCRIPT
)


def _parse_state(lines: list[str]) -> dict[str, Any]:
    """freq lines, MARK, thermal lines, MARK -> runner-style state dict."""
    state: dict[str, Any] = {}
    try:
        split = lines.index(MARK)
    except ValueError:
        return state
    freqs = [int(x) / 1000.0 for x in lines[:split] if x.strip().isdigit()]
    if freqs:
        state["cpu_freq_mhz"] = freqs
    temps = {}
    for line in lines[split + 1:]:
        if line == MARK:
            break
        name, _, raw = line.rpartition(" ")
        try:
            value = int(raw)
        except ValueError:
            continue
        temps[name] = value / 1000.0 if abs(value) > 200 else float(value)
    if temps:
        state["temperature_c"] = temps
    return state


class AdbDevice(RunnerDevice):
    """An Android device. `benchmark` uses benchmark_model, or the Python runner where the phone has one."""

    bundle_with_runner = False  # `adb push` of many files is one sync session already

    def __init__(self, config: DeviceConfig):
        super().__init__(config)
        self._python: str | None | bool = None  # None: not probed yet; False: none usable

    @property
    def root(self) -> str:
        return self.config.remote_dir or DEFAULT_REMOTE_DIR

    @property
    def serial(self) -> str:
        return str(self.config.serial)

    # -- adb plumbing ----------------------------------------------------------------------------------
    def _adb(self, args: Sequence[str], timeout_s: float = 60.0, serial: bool = True) -> subprocess.CompletedProcess:
        argv = [self.config.adb] + (["-s", self.serial] if serial else []) + list(args)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL, env=os.environ.copy())
        except FileNotFoundError:
            raise TransportError(f"no adb client {self.config.adb!r}; install it (`apt-get install adb`) or set "
                                 f"adb = \"PATH\" in devices/{self.name}.toml") from None
        except subprocess.TimeoutExpired:
            raise TransportError(f"device {self.name}: adb {args[0]} did not finish in {timeout_s:.0f} s") from None
        return proc

    def _check_link(self, proc: subprocess.CompletedProcess, what: str) -> None:
        if proc.returncode != 0:
            text = (proc.stderr or "") + (proc.stdout or "")
            if any(e in text.lower() for e in LINK_ERRORS):
                raise TransportError(f"device {self.name}: adb {what} failed: {text.strip()[-200:]}")

    def connect(self) -> None:
        if ":" in self.serial:
            proc = self._adb(["connect", self.serial], timeout_s=self.config.connect_timeout_s + 5, serial=False)
            text = (proc.stdout + proc.stderr).lower()
            if "connected to" not in text:
                raise TransportError(f"device {self.name}: `adb connect {self.serial}` failed: "
                                     f"{(proc.stdout + proc.stderr).strip()[-200:]}")
        deadline = time.monotonic() + self.config.connect_timeout_s
        while True:
            proc = self._adb(["get-state"], timeout_s=self.config.connect_timeout_s)
            if proc.stdout.strip() == "device":
                return
            if time.monotonic() > deadline:
                raise TransportError(f"device {self.name}: adb reports {(proc.stdout + proc.stderr).strip()!r} for "
                                     f"{self.serial}; plug it in / enable USB debugging, or run "
                                     f"`adb connect {self.serial}`")
            time.sleep(0.2)

    def _recover(self, error: Exception, deadline: float) -> None:
        log.warning("device %s: link lost (%s); reconnecting", self.name, error)

        def attempt() -> None:
            if ":" in self.serial:
                self._adb(["disconnect", self.serial], timeout_s=10, serial=False)
            self.connect()

        self._reconnect(deadline, attempt)

    def shell(self, command: str, timeout_s: float = 60.0) -> tuple[int, str, str]:
        """Run one device shell command line (the caller quoted every piece of it); (exit code, out, err).

        The exit code travels in a marker line, so it is right on old devices whose adb shell (no shell_v2)
        always exits 0."""
        wrapped = f"( {command} ); printf '\\n{MARK}rc=%s\\n' \"$?\""
        proc = self._adb(["shell", wrapped], timeout_s=timeout_s)
        self._check_link(proc, "shell")
        out, sep, tail = proc.stdout.rpartition(f"\n{MARK}rc=")
        if not sep:
            raise TransportError(f"device {self.name}: adb shell output cut off "
                                 f"({(proc.stderr or '').strip()[-200:] or 'link lost'})")
        code = tail.split("\n", 1)[0].strip()
        return int(code) if code.lstrip("-").isdigit() else 1, out, proc.stderr

    # -- RunnerDevice primitives -------------------------------------------------------------------------
    @property
    def python(self) -> str:
        return self.config.python or (self._python if isinstance(self._python, str) else "python3")

    def _exec(self, argv: Sequence[str], cwd: str | None = None, timeout_s: float = 60.0) -> tuple[int, str, str]:
        return self.shell(shell_command(argv, cwd), timeout_s)

    def _open_stream(self, argv: Sequence[str], cwd: str | None = None) -> LineStream:
        return _AdbStream([self.config.adb, "-s", self.serial, "shell", shell_command(argv, cwd)])

    def _list_dir(self, path: str) -> set[str]:
        code, out, _ = self.shell(f"ls -1 -- {shlex.quote(path)} 2>/dev/null")
        return {line.strip() for line in out.splitlines() if line.strip()} if code == 0 else set()

    def _push(self, local: Path, remote: str) -> None:
        code, _, err = self.shell(f"mkdir -p -- {shlex.quote(posixpath.dirname(remote))}")
        if code != 0:
            raise DeviceError(f"device {self.name}: cannot create {posixpath.dirname(remote)}: {err.strip()}")
        tmp = f"{remote}.{uuid.uuid4().hex[:8]}.part"
        proc = self._adb(["push", str(local), tmp], timeout_s=600)
        if proc.returncode != 0:
            self._check_link(proc, "push")
            raise DeviceError(f"device {self.name}: adb push failed: {(proc.stderr or proc.stdout).strip()[-200:]}")
        code, _, err = self.shell(f"mv -f -- {shlex.quote(tmp)} {shlex.quote(remote)}")
        if code != 0:
            raise DeviceError(f"device {self.name}: cannot move {tmp} into place: {err.strip()}")

    def _push_files(self, files: dict[str, Path], folder: str) -> None:
        """All files in one `adb push` (one sync session) into a staging folder, then moved into place."""
        if len(files) == 1:
            ((name, local),) = files.items()
            self._push(local, posixpath.join(folder, name))
            return
        staging = posixpath.join(self.root, f"incoming-{uuid.uuid4().hex[:12]}")
        with tempfile.TemporaryDirectory(prefix="hwnas-adb-") as tmp:
            sources = []
            for name, local in files.items():  # local names must be the device names: link them in a temp folder
                link = Path(tmp) / name
                os.symlink(Path(local).resolve(), link)
                sources.append(str(link))
            code, _, err = self.shell(f"mkdir -p -- {shlex.quote(staging)} {shlex.quote(folder)}")
            if code != 0:
                raise DeviceError(f"device {self.name}: cannot create {staging}: {err.strip()}")
            proc = self._adb(["push", *sources, staging + "/"], timeout_s=600 + 10 * len(files))
            if proc.returncode != 0:
                self._check_link(proc, "push")
                raise DeviceError(f"device {self.name}: adb push failed: {(proc.stderr or proc.stdout).strip()[-200:]}")
        names = " ".join(shlex.quote(posixpath.join(staging, name)) for name in files)
        code, _, err = self.shell(f"mv -f -- {names} {shlex.quote(folder)}/ && rmdir -- {shlex.quote(staging)}")
        if code != 0:
            raise DeviceError(f"device {self.name}: cannot move pushed models into place: {err.strip()}")

    def _write_file(self, remote: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="hwnas-adb-") as tmp:
            path = Path(tmp) / "payload"
            path.write_bytes(data)
            self._push(path, remote)

    def _remove_tree(self, path: str) -> None:
        self.shell(f"rm -rf -- {shlex.quote(path)}", timeout_s=30)

    # -- probing -----------------------------------------------------------------------------------------
    def _probe_python(self) -> str | None:
        """A device Python that can run the runner (numpy and the runtime importable), else None."""
        if self._python is None:
            self._python = False
            candidates = [self.config.python] if self.config.python else ["python3", "python"]
            for candidate in candidates:
                code, out, _ = self.shell(f"command -v {shlex.quote(candidate)}")
                if code == 0 and out.strip():
                    self._python = candidate
                    break
        return self._python if isinstance(self._python, str) else None

    def _runner_info(self) -> dict[str, Any] | None:
        if self._probe_python() is None:
            return None
        try:
            return RunnerDevice.info(self)
        except DeviceError as exc:
            log.info("device %s: python present but the runner does not start: %s", self.name, exc)
            return None

    def info(self) -> dict[str, Any]:
        code, out, err = self.shell(_INFO_SCRIPT)
        lines = [line.rstrip("\r") for line in out.splitlines()]
        data: dict[str, Any] = {"transport": "adb", "target": self.config.target, "serial": self.serial}
        props: dict[str, str] = {}
        maxfreq: list[float] = []
        split = lines.index(MARK) if MARK in lines else len(lines)
        for line in lines[:split]:
            kind, _, rest = line.partition(" ")
            if kind == "prop":
                name, _, value = rest.partition("=")
                props[name] = value
            elif kind == "cores" and rest.strip().isdigit():
                data["cores"] = int(rest)
            elif kind == "cpu":
                data["cpu_model"] = rest.split(":", 1)[-1].strip()
            elif kind == "governor":
                data["governor"] = rest.strip() or None
            elif kind == "maxfreq":
                try:
                    maxfreq.append(int(rest.split()[-1]) / 1000.0)
                except (ValueError, IndexError):
                    pass
            elif kind == "python":
                data["device_python"] = rest.strip() or None
        data["model"] = props.get("ro.product.model")
        data["manufacturer"] = props.get("ro.product.manufacturer")
        data["board_platform"] = props.get("ro.board.platform")
        data["abi"] = props.get("ro.product.cpu.abi")
        data["android"] = props.get("ro.build.version.release")
        data["sdk"] = props.get("ro.build.version.sdk")
        data.setdefault("cpu_model", data["board_platform"])
        if maxfreq:
            data["cpu_max_freq_mhz"] = maxfreq
        data.update(_parse_state(lines[split + 1:]))
        runner = self._runner_info() if data.get("device_python") or self.config.python else None
        data["runtimes"] = (runner or {}).get("runtimes", {})
        if runner:
            data["python"] = runner.get("python")
            data["numpy"] = runner.get("numpy")
        data["benchmark_binary"] = self.config.benchmark_binary
        data["mode"] = self._mode(self.config.runtime, runner)
        return data

    def _mode(self, runtime: str, runner: dict[str, Any] | None) -> str:
        if runner and runner.get("numpy") and (runner.get("runtimes") or {}).get(runtime):
            return "runner"
        if runtime == "tflite" and self.config.benchmark_binary:
            return "benchmark_model"
        return "none"

    # -- measuring ---------------------------------------------------------------------------------------
    def benchmark(self, models: Sequence[BenchmarkModel], settings: BenchmarkSettings) -> Iterator[Measurement]:
        models = list(models)
        if not models:
            return iter(())
        runner = self._runner_info() if (self.config.python or not self.config.benchmark_binary) else None
        mode = self._mode(settings.runtime, runner)
        if mode == "runner":
            return RunnerDevice.benchmark(self, models, settings)
        if mode == "none":
            raise DeviceError(
                f"device {self.name}: nothing can run {settings.runtime} models there; name TFLite's "
                f"benchmark_model built for the phone's ABI with `hwnas device add {self.name} --adb {self.serial} "
                f"--benchmark-model PATH --force`, or install Python with numpy and the runtime (Termux)"
            )
        return self._benchmark_tool(models, settings)

    def _binary_remote(self) -> str:
        local = Path(str(self.config.benchmark_binary)).expanduser()
        if not local.is_file():
            raise DeviceError(f"device {self.name}: benchmark_model binary {local} not found; fix "
                              f"benchmark_binary in devices/{self.name}.toml")
        name = f"benchmark_model-{sha256_file(local)[:16]}"
        if name not in self._list_dir(self.root):
            self._push(local, self._path(name))
            code, _, err = self.shell(f"chmod 755 -- {shlex.quote(self._path(name))}")
            if code != 0:
                raise DeviceError(f"device {self.name}: chmod of benchmark_model failed: {err.strip()}")
        return self._path(name)

    def _tool_command(self, binary: str, model_path: str, settings: BenchmarkSettings, runs: int) -> str:
        args = [binary, f"--graph={model_path}", f"--num_threads={settings.threads}",
                f"--warmup_runs={settings.warmup}", f"--num_runs={runs}"]
        if settings.min_seconds:
            args.append(f"--min_secs={settings.min_seconds / max(1, settings.rounds):g}")
        if settings.use_gpu:
            args.append("--use_gpu=true")
        if settings.op_profiling:
            args.append("--enable_op_profiling=true")
        tool = " ".join(shlex.quote(a) for a in args)
        if settings.pin_cores:
            mask = sum(1 << int(c) for c in settings.pin_cores)
            tool = f"taskset {mask:x} {tool}"
        return (f"{_STATE_SCRIPT}; cd {shlex.quote(self.root)} && {tool} 2>&1; echo \"{MARK}rc=$?\"; "
                f"{_STATE_SCRIPT}")

    def _run_tool_round(self, command: str, timeout_s: float) -> tuple[dict[str, Any] | None, str, dict, dict]:
        """One benchmark_model run: (parsed or None, error text, state before, state after)."""
        proc = self._adb(["shell", command], timeout_s=timeout_s)
        lines = [line.rstrip("\r") for line in proc.stdout.splitlines()]
        rc_at = next((i for i, line in enumerate(lines) if line.startswith(MARK + "rc=")), None)
        if rc_at is None:
            raise TransportError(f"device {self.name}: benchmark_model output cut off "
                                 f"({(proc.stderr or '').strip()[-200:] or 'link lost'})")
        first = lines.index(MARK) if MARK in lines else 0
        second = lines.index(MARK, first + 1) if lines.count(MARK) >= 2 else first
        before = _parse_state(lines[: second + 1])
        after = _parse_state(lines[rc_at + 1:])
        tool_out = "\n".join(lines[second + 1: rc_at])
        rc = lines[rc_at][len(MARK) + 3:].strip()
        try:
            parsed = parse_benchmark_output(tool_out)
        except BenchmarkOutputError:
            tail = " | ".join(tool_out.strip().splitlines()[-3:])[-300:]
            return None, f"benchmark_model failed (exit {rc}): {tail}", before, after
        return parsed, "", before, after

    def _benchmark_tool(self, models: list[BenchmarkModel], settings: BenchmarkSettings) -> Iterator[Measurement]:
        started = time.monotonic()
        batch_deadline = started + settings.timeout_per_batch_s if settings.timeout_per_batch_s else math.inf
        binary = self._retrying(self._binary_remote, batch_deadline)
        paths = self._retrying(lambda: self.push_models(models), batch_deadline)
        rounds = max(1, settings.rounds)
        runs = max(1, math.ceil(settings.runs / rounds))
        per_round: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(models))}
        states: dict[int, dict[str, Any]] = {}
        failed: set[int] = set()
        last = time.monotonic()

        def finished(i: int, levels: list[float] | None = None) -> Measurement:
            nonlocal last
            now = time.monotonic()
            m = tool_measurement(self.name, models[i], settings, per_round[i], states[i], levels)
            m.wall_ms, last = (now - last) * 1000.0, now
            if self.progress:
                self.progress(m, i + 1, len(models))
            return m

        for first in range(0, len(models), BLOCK_SIZE):  # rounds interleave within blocks, as in the runner
            block = range(first, min(len(models), first + BLOCK_SIZE))
            for rnd in range(rounds):
                for i in block:
                    model = models[i]
                    if i in failed:
                        continue
                    if time.monotonic() > batch_deadline:
                        failed.add(i)
                        yield failed_measurement(model.sha256, model.key, self.name, settings,
                                                 f"batch timed out after {settings.timeout_per_batch_s:.1f} s")
                        continue
                    command = self._tool_command(binary, paths[model.sha256], settings, runs)
                    parsed, error, before, after = self._tool_round(binary, command, settings, batch_deadline)
                    if parsed is None:
                        failed.add(i)
                        now = time.monotonic()
                        m = failed_measurement(model.sha256, model.key, self.name, settings, error)
                        m.wall_ms, last = (now - last) * 1000.0, now
                        yield m
                        continue
                    per_round[i].append(parsed)
                    if rnd == 0:
                        states[i] = {"before": before}
                    if rnd == rounds - 1:
                        states[i]["after"] = after
                        if rounds < ROUND_LEVEL_MIN_ROUNDS:  # no round levels to wait for
                            yield finished(i)
            if rounds >= ROUND_LEVEL_MIN_ROUNDS:  # as the Python runner does: each round divided by its level
                done = [i for i in block if i not in failed]
                levels = round_levels([[_round_median_us(r) for r in per_round[i]] for i in done])
                for i in done:
                    yield finished(i, levels)

    def _tool_round(self, binary: str, command: str, settings: BenchmarkSettings,
                    deadline: float) -> tuple[dict[str, Any] | None, str, dict[str, Any], dict[str, Any]]:
        """One benchmark_model round: (parsed output or None, error, device state before, after). A dropped link is
        recovered and the round run again, up to 4 tries; a round past timeout_per_model_s is killed."""
        for _attempt in range(4):
            try:
                return self._run_tool_round(command, settings.timeout_per_model_s)
            except TransportError as exc:
                if "did not finish" in str(exc):
                    self._kill_tool(binary)
                    return None, f"timed out after {settings.timeout_per_model_s:.1f} s (timeout_per_model_s)", {}, {}
                self._recover(exc, min(deadline, time.monotonic() + self.config.reconnect_timeout_s))
        return None, "the device link kept failing", {}, {}

    def _kill_tool(self, binary: str) -> None:
        try:
            self.shell(f"pkill -f -- {shlex.quote(binary)} 2>/dev/null || true", timeout_s=10)
        except TransportError:
            pass


def tool_measurement(device: str, model: BenchmarkModel, settings: BenchmarkSettings, rounds: list[dict[str, Any]],
                     state: dict[str, Any], levels: list[float] | None = None) -> Measurement:
    """Combine per-round tool statistics (microseconds) into one Measurement (milliseconds): `median_ms` is the
    fastest round's median, as the Python runner takes it; the other statistics are over every round, each
    divided by its level (`levels`, 1.0 each by default).

    benchmark_model prints no p90: p90_ms holds its p95 (or max where p95 is absent), an upper bound."""
    levels = levels or [1.0] * len(rounds)
    raw_medians = [_round_median_us(r) / 1000.0 for r in rounds]
    total_us = sum(_round_total_us(r) for r in rounds)  # time inside the tool, as measured
    rounds = [_levelled(r, level) for r, level in zip(rounds, levels, strict=True)]
    stats = [r["runs"] for r in rounds]
    counts = [max(1.0, s.get("count", 1.0)) for s in stats]
    avgs = [s.get("avg", r["inference_avg_us"]) for s, r in zip(stats, rounds, strict=True)]
    pairs = list(zip(stats, counts, avgs, strict=True))
    n = sum(counts)
    mean = sum(c * a for _, c, a in pairs) / n
    var = sum(c * (s.get("std", 0.0) ** 2 + (a - mean) ** 2) for s, c, a in pairs) / n
    upper = [s.get("p95", s.get("max", a)) for s, _, a in pairs]
    return Measurement(
        model_sha256=model.sha256, key=model.key, device=device, runtime="tflite",
        runtime_version="benchmark_model", threads=settings.threads, warmup=settings.warmup, runs=int(n),
        median_ms=min(raw_medians), mean_ms=mean / 1000.0, std_ms=math.sqrt(var) / 1000.0,
        min_ms=min(s.get("min", a) for s, _, a in pairs) / 1000.0, p90_ms=max(upper) / 1000.0,
        n=int(n), state_before=state.get("before", {}), state_after=state.get("after", {}),
        timestamp=time.time(), run_total_ms=total_us / 1000.0,
        op_profile=rounds[-1].get("op_profile") if settings.op_profiling else None,
        round_medians_ms=raw_medians, round_levels=list(levels), raw_median_ms=statistics.median(raw_medians),
    )


def _round_median_us(parsed: dict[str, Any]) -> float:
    """One benchmark_model round's median (its average where it printed none), in microseconds."""
    stats = parsed["runs"]
    return float(stats.get("median", stats.get("avg", parsed["inference_avg_us"])))


def _round_total_us(parsed: dict[str, Any]) -> float:
    """Microseconds one round spent in timed and warm-up runs."""
    runs, warm = parsed["runs"], parsed.get("warmup", {})
    return (max(1.0, runs.get("count", 1.0)) * runs.get("avg", parsed["inference_avg_us"])
            + warm.get("count", 0) * warm.get("avg", warm.get("curr", 0)))


def _levelled(parsed: dict[str, Any], level: float) -> dict[str, Any]:
    """A round's parsed output with its timed-run statistics (and average) divided by `level`."""
    if level == 1.0:
        return parsed
    runs = {k: (v / level if k in ("avg", "std", "median", "p5", "p95", "min", "max", "curr", "first") else v)
            for k, v in parsed["runs"].items()}
    return {**parsed, "runs": runs, "inference_avg_us": parsed["inference_avg_us"] / level}


class _AdbStream(ProcessLineStream):
    """`adb shell` output lines; a non-zero adb exit with no output counts as a dropped link."""
