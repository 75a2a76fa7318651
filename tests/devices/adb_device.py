"""A test ADB device: speaks the ADB wire protocol on a loopback TCP port, so the real `adb` client can
`adb connect 127.0.0.1:PORT` to it as to a phone over Wi-Fi.

Supported: the CNXN handshake (no AUTH), `shell:` / `shell,v2,...:` (stdout, stderr, exit code) and `exec:`
services, and the `sync:` file service (STAT, LIST, SEND/DATA/DONE -> OKAY, RECV, QUIT). Commands run with
`sh -c` in a private folder whose `bin/` is the whole PATH (a few host tools linked in, a `getprop` stand-in).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import threading
from pathlib import Path

A_SYNC, A_CNXN, A_OPEN, A_OKAY = 0x434E5953, 0x4E584E43, 0x4E45504F, 0x59414B4F
A_CLSE, A_WRTE, A_AUTH = 0x45534C43, 0x45545257, 0x48545541
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
TOOLS = ("sh", "cat", "ls", "mkdir", "mv", "rm", "rmdir", "chmod", "grep", "sed", "pkill", "taskset", "sleep", "echo",
         "touch", "test", "[", "head", "tail", "wc", "env")
PROPS = {
    "ro.product.model": "HwnasTestPhone", "ro.product.manufacturer": "hwnas", "ro.board.platform": "testboard",
    "ro.product.cpu.abi": "x86_64", "ro.build.version.release": "14", "ro.build.version.sdk": "34",
}


def _checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


class _Stream:
    def __init__(self, conn: _Connection, local_id: int, remote_id: int):
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.acked = threading.Event()
        self.acked.set()
        self.write_lock = threading.Lock()
        self.inbox: list[bytes] = []
        self.inbox_ready = threading.Condition()
        self.closed = False
        self.proc: subprocess.Popen | None = None

    def write(self, data: bytes) -> None:
        with self.write_lock:
            for start in range(0, len(data), self.conn.max_payload):
                if not self.acked.wait(30) or self.closed:
                    raise OSError("stream closed")
                self.acked.clear()
                self.conn.send(A_WRTE, self.local_id, self.remote_id, data[start:start + self.conn.max_payload])

    def feed(self, data: bytes) -> None:
        with self.inbox_ready:
            self.inbox.append(data)
            self.inbox_ready.notify_all()

    def read_exact(self, n: int, buffer: bytearray) -> bytes:
        while len(buffer) < n:
            with self.inbox_ready:
                while not self.inbox and not self.closed:
                    self.inbox_ready.wait(1)
                if not self.inbox and self.closed:
                    raise EOFError
                buffer.extend(b"".join(self.inbox))
                self.inbox.clear()
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.conn.send(A_CLSE, self.local_id, self.remote_id, b"")
            except OSError:
                pass
        with self.inbox_ready:
            self.inbox_ready.notify_all()
        self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass


class _Connection:
    def __init__(self, device: AdbTestDevice, sock: socket.socket):
        self.device, self.sock = device, sock
        self.send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_payload = 4096

    def send(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        header = struct.pack("<6I", command, arg0, arg1, len(data), _checksum(data), command ^ 0xFFFFFFFF)
        with self.send_lock:
            self.sock.sendall(header + data)

    def _recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def serve(self) -> None:
        try:
            while True:
                command, arg0, arg1, length, _check, _magic = struct.unpack("<6I", self._recv_exact(24))
                data = self._recv_exact(length) if length else b""
                self.dispatch(command, arg0, arg1, data)
        except (EOFError, OSError):
            pass
        finally:
            for stream in list(self.streams.values()):
                stream.closed = True
                stream.kill()
            try:
                self.sock.close()
            except OSError:
                pass

    def dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            self.max_payload = min(MAX_PAYLOAD, max(4096, arg1))
            props = ";".join(f"{k}={v}" for k, v in PROPS.items() if k.startswith("ro.product"))
            features = "shell_v2" if self.device.shell_v2 else ""
            banner = f"device::{props};features={features}".encode()
            self.send(A_CNXN, A_VERSION, MAX_PAYLOAD, banner)
        elif command == A_OPEN:
            service = data.rstrip(b"\0").decode(errors="replace")
            local_id = self.next_id
            self.next_id += 1
            stream = _Stream(self, local_id, arg0)
            handler = self.device.handler_for(service)
            if handler is None:
                self.send(A_CLSE, 0, arg0, b"")
                return
            self.streams[local_id] = stream
            self.send(A_OKAY, local_id, arg0, b"")
            threading.Thread(target=self._run, args=(handler, stream, service), daemon=True).start()
        elif command == A_OKAY:
            stream = self.streams.get(arg1)
            if stream:
                stream.acked.set()
        elif command == A_WRTE:
            stream = self.streams.get(arg1)
            if stream:
                self.send(A_OKAY, stream.local_id, stream.remote_id, b"")
                stream.feed(data)
        elif command == A_CLSE:
            stream = self.streams.pop(arg1, None)
            if stream:
                stream.closed = True
                stream.acked.set()
                stream.kill()
                with stream.inbox_ready:
                    stream.inbox_ready.notify_all()

    def _run(self, handler, stream: _Stream, service: str) -> None:
        try:
            handler(stream, service)
        except (OSError, EOFError):
            pass
        finally:
            stream.close()
            self.streams.pop(stream.local_id, None)


class AdbTestDevice:
    """Start with `start()`, stop (as if unplugged) with `stop()`; `start()` again on the same port."""

    def __init__(self, root: Path, port: int = 0, shell_v2: bool = True):
        self.root = Path(root)
        self.port = port
        self.shell_v2 = shell_v2  # False: an old phone (adb shell carries no exit code)
        self.listener: socket.socket | None = None
        self.connections: list[_Connection] = []
        self.commands: list[str] = []  # every shell command line received, for the tests
        self._make_root()

    def _make_root(self) -> None:
        bin_dir = self.root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for tool in TOOLS:
            target = shutil.which(tool)
            link = bin_dir / tool
            if target and not link.exists():
                link.symlink_to(target)
        getprop = bin_dir / "getprop"
        cases = "".join(f"  {k}) echo {v};;\n" for k, v in PROPS.items())
        getprop.write_text(f"#!/bin/sh\ncase \"$1\" in\n{cases}  *) echo;;\nesac\n")
        getprop.chmod(0o755)

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock)
            self.connections.append(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def stop(self) -> None:
        """Drop every connection and kill every command, like pulling the cable."""
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        for conn in self.connections:
            for stream in list(conn.streams.values()):
                stream.closed = True
                stream.kill()
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
                conn.sock.close()
            except OSError:
                pass
        self.connections.clear()

    # -- services ------------------------------------------------------------------------------------------
    def handler_for(self, service: str):
        if service.startswith("shell") and ":" in service:
            options, _, command = service.partition(":")
            v2 = "v2" in options.split(",")
            return lambda stream, _s: self._shell(stream, command, v2)
        if service.startswith("exec:"):
            return lambda stream, _s: self._shell(stream, service[5:], False)
        if service == "sync:":
            return self._sync
        return None

    def _env(self) -> dict[str, str]:
        return {"PATH": str(self.root / "bin"), "HOME": str(self.root), "TMPDIR": str(self.root), "LANG": "C"}

    def _shell(self, stream: _Stream, command: str, v2: bool) -> None:
        self.commands.append(command)
        # an old phone's shell (no shell_v2) has one output stream: stderr goes into stdout, in order
        proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=self.root, env=self._env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE if v2 else subprocess.STDOUT,
                                start_new_session=True)
        stream.proc = proc

        def pump(handle, packet_id):
            for chunk in iter(lambda: os.read(handle.fileno(), 65536), b""):
                stream.write(struct.pack("<BI", packet_id, len(chunk)) + chunk if v2 else chunk)

        threads = [threading.Thread(target=pump, args=(proc.stdout, 1), daemon=True)]
        if v2:
            threads.append(threading.Thread(target=pump, args=(proc.stderr, 2), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        code = proc.wait()
        if v2:
            stream.write(struct.pack("<BI", 3, 1) + bytes([code & 0xFF]))

    def _inside(self, path: str) -> Path:
        resolved = Path(os.path.normpath(path if path.startswith("/") else os.path.join(self.root, path)))
        if resolved != self.root and self.root not in resolved.parents:
            raise PermissionError(f"{path} is outside the test device's folder")
        return resolved

    def _sync(self, stream: _Stream, _service: str) -> None:
        buffer = bytearray()
        while True:
            try:
                header = stream.read_exact(8, buffer)
            except EOFError:
                return
            request, length = header[:4], struct.unpack("<I", header[4:])[0]
            if request == b"QUIT":
                return
            arg = stream.read_exact(length, buffer).decode(errors="replace")
            try:
                if request == b"STAT":
                    try:
                        st = os.stat(self._inside(arg))
                        stream.write(b"STAT" + struct.pack("<3I", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                           int(st.st_mtime)))
                    except (FileNotFoundError, PermissionError):
                        stream.write(b"STAT" + struct.pack("<3I", 0, 0, 0))
                elif request == b"LIST":
                    folder = self._inside(arg)
                    for entry in sorted(os.listdir(folder)) if folder.is_dir() else []:
                        st = os.lstat(folder / entry)
                        name = entry.encode()
                        stream.write(b"DENT" + struct.pack("<4I", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                           int(st.st_mtime), len(name)) + name)
                    stream.write(b"DONE" + struct.pack("<4I", 0, 0, 0, 0))
                elif request == b"SEND":
                    path, _, mode = arg.rpartition(",")
                    target = self._inside(path)
                    data = bytearray()
                    while True:
                        part = stream.read_exact(8, buffer)
                        kind, size = part[:4], struct.unpack("<I", part[4:])[0]
                        if kind == b"DATA":
                            data += stream.read_exact(size, buffer)
                        elif kind == b"DONE":
                            break
                        else:
                            raise OSError(f"unexpected {kind!r} during SEND")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(bytes(data))
                    os.chmod(target, stat.S_IMODE(int(mode or "420")) or 0o644)
                    stream.write(b"OKAY" + struct.pack("<I", 0))
                elif request == b"RECV":
                    data = self._inside(arg).read_bytes()
                    for start in range(0, len(data), 64 * 1024):
                        chunk = data[start:start + 64 * 1024]
                        stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                    stream.write(b"DONE" + struct.pack("<I", 0))
                else:
                    raise OSError(f"unsupported sync request {request!r}")
            except (OSError, PermissionError) as exc:
                message = str(exc).encode()
                stream.write(b"FAIL" + struct.pack("<I", len(message)) + message)
