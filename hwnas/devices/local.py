"""The `local` transport: the runner in a subprocess on this machine, reading the caller's model files in place."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hwnas.devices.inventory import DeviceConfig
from hwnas.devices.runner_host import LineStream, RunnerDevice
from hwnas.errors import TransportError
from hwnas.workspace import atomic_write_bytes

__all__ = ["LocalDevice", "ProcessLineStream"]


class ProcessLineStream(LineStream):
    """stdout lines of a local process (also used by the adb transport for `adb shell`)."""

    def __init__(self, argv: Sequence[str], cwd: str | None = None, env: dict[str, str] | None = None):
        try:
            self.proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise TransportError(f"cannot start {argv[0]}: {exc}") from None
        super().__init__()
        self._open = [self.proc.stdout.fileno(), self.proc.stderr.fileno()]

    def _read(self, timeout_s: float) -> bytes | None:
        out_fd, err_fd = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        ready, _, _ = select.select(self._open, [], [], timeout_s)
        chunk = None
        for fd in ready:
            data = os.read(fd, 65536)
            if fd == err_fd:
                self._keep_stderr(data)
                if not data:
                    self._open.remove(err_fd)
            elif fd == out_fd:
                chunk = data
        return chunk

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for handle in (self.proc.stdout, self.proc.stderr):
            handle.close()


class LocalDevice(RunnerDevice):
    """This machine. Runs are kept in a private temporary folder removed on close."""

    models_are_local = True

    def __init__(self, config: DeviceConfig):
        super().__init__(config)
        self._tmp: str | None = None

    @property
    def root(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="hwnas-local-")
        return self._tmp

    @property
    def python(self) -> str:
        return self.config.python or sys.executable

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _exec(self, argv: Sequence[str], cwd: str | None = None, timeout_s: float = 60.0) -> tuple[int, str, str]:
        try:
            proc = subprocess.run(list(argv), cwd=cwd or self.root, capture_output=True, text=True, timeout=timeout_s)
        except FileNotFoundError as exc:
            raise TransportError(f"cannot run {argv[0]}: {exc}; set python = \"...\" in devices/{self.name}.toml") \
                from None
        except subprocess.TimeoutExpired:
            raise TransportError(f"{argv[0]} did not finish in {timeout_s:.0f} s") from None
        return proc.returncode, proc.stdout, proc.stderr

    def _open_stream(self, argv: Sequence[str], cwd: str | None = None) -> LineStream:
        return ProcessLineStream(argv, cwd=cwd or self.root)

    def _list_dir(self, path: str) -> set[str]:
        try:
            return set(os.listdir(path))
        except OSError:
            return set()

    def _push(self, local: Path, remote: str) -> None:
        atomic_write_bytes(remote, Path(local).read_bytes())

    def _write_file(self, remote: str, data: bytes) -> None:
        atomic_write_bytes(remote, data)

    def _remove_tree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def _recover(self, error: Exception, deadline: float) -> None:
        return None  # nothing to reconnect: the next attempt re-runs the runner, which resumes
