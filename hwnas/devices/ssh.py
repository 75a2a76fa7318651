"""The `ssh` transport (paramiko): host keys checked against known_hosts, SFTP push into a per-user cache folder,
streamed runner output, reconnect and resume after a dropped connection.

Secrets never leave the process: a key passphrase or password comes from HWNAS_SSH_PASSPHRASE /
HWNAS_SSH_PASSWORD (or an SSH agent), is handed to paramiko and is never logged or written anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import posixpath
import shlex
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwnas.devices.inventory import DeviceConfig
from hwnas.devices.runner_host import LineStream, RunnerDevice
from hwnas.errors import DeviceError, HostKeyError, TransportError
from hwnas.workspace import atomic_write_text

__all__ = ["SshDevice", "shell_command", "host_key_fingerprint"]

log = logging.getLogger(__name__)
DEFAULT_REMOTE_DIR = "~/.cache/hwnas"  # inside the login user's home (per-user cache); ~ expanded by us


def _link_errors() -> tuple[type[BaseException], ...]:
    """What a dropped link raises: socket errors, EOF, and paramiko's SSHException (e.g. from SFTP calls)."""
    import paramiko

    return (OSError, EOFError, paramiko.SSHException)


def shell_command(argv: Sequence[str], cwd: str | None = None) -> str:
    """One POSIX shell command line; every element quoted, so nothing in it is ever interpreted."""
    command = " ".join(shlex.quote(str(a)) for a in argv)
    if cwd:
        return f"cd {shlex.quote(cwd)} && exec {command}"
    return command


def host_key_fingerprint(key: Any) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class SshDevice(RunnerDevice):
    """A Linux board or server reached over SSH (key or agent authentication)."""

    def __init__(self, config: DeviceConfig, trust_new_host: bool = False):
        super().__init__(config)
        self.trust_new_host = trust_new_host
        self.port = int(config.port or 22)
        self.known_hosts = Path(config.known_hosts or "~/.ssh/known_hosts").expanduser()
        self._client: Any = None
        self._sftp: Any = None
        self._made_dirs: set[str] = set()  # folders known to exist on the device (saves SFTP round trips)
        self._home: str | None = None  # the login folder on the device, absolute (asked once)

    @property
    def root(self) -> str:
        """The cache folder, always absolute: `~/` is the login folder as the device's SFTP server names it, so
        no path we pass to a device command can start with `-` or depend on the command's folder."""
        root = self.config.remote_dir or DEFAULT_REMOTE_DIR
        if not root.startswith("~/"):
            return root
        if self._home is None:
            try:
                home = self._sftp_client().normalize(".")
            except _link_errors() as exc:
                raise TransportError(f"device {self.name}: cannot find the login folder: {exc}") from None
            if not home.startswith("/"):
                raise DeviceError(f"device {self.name}: the login folder {home!r} is not an absolute path; set "
                                  f"remote_dir = \"/ABSOLUTE/PATH\" in devices/{self.name}.toml")
            self._home = home
        return posixpath.join(self._home, root[2:])

    # -- connection -----------------------------------------------------------------------------------
    def connect(self) -> None:
        import paramiko

        client = paramiko.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_TrustPolicy(self) if self.trust_new_host else _RejectPolicy(self))
        key = str(Path(self.config.key).expanduser()) if self.config.key else None
        timeout = float(self.config.connect_timeout_s)
        try:
            client.connect(
                self.config.host, port=self.port, username=self.config.user or None, key_filename=key,
                passphrase=os.environ.get("HWNAS_SSH_PASSPHRASE") or None,
                password=os.environ.get("HWNAS_SSH_PASSWORD") or None,
                allow_agent=True, look_for_keys=key is None, timeout=timeout, banner_timeout=timeout,
                auth_timeout=timeout,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            name = _known_hosts_name(self.config.host or "", self.port)
            raise HostKeyError(
                f"device {self.name}: the host key of {name} CHANGED (now {host_key_fingerprint(exc.key)}); "
                f"if the device was reinstalled, verify the new key, then run "
                f"`ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(str(self.known_hosts))}` and "
                f"`hwnas device check {self.name} --trust-new-host`"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise TransportError(self._key_problem(key) or (
                f"device {self.name}: SSH authentication failed for {self.config.target} ({type(exc).__name__}); "
                f"set key = \"PATH\" in devices/{self.name}.toml, load the key into ssh-agent, or export "
                f"HWNAS_SSH_PASSPHRASE for an encrypted key"
            )) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            problem = self._key_problem(key)
            if problem:
                raise TransportError(problem) from None
            raise TransportError(f"device {self.name}: cannot connect to {self.config.target}: "
                                 f"{type(exc).__name__}: {exc}") from None
        self._client = client
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(5)
        log.info("connected to %s", self.config.target)

    def _key_problem(self, key: str | None) -> str | None:
        """Why the key file in `key` cannot be used (missing, wrong passphrase, not a key), or None: paramiko
        reports a wrong passphrase as "Invalid key", so the file is tried again here to say what is wrong."""
        import paramiko

        if not key:
            return None
        where = f"device {self.name}: key {key}"
        if not Path(key).is_file():
            return f"{where} does not exist; fix key = \"PATH\" in devices/{self.name}.toml"
        passphrase = os.environ.get("HWNAS_SSH_PASSPHRASE") or None
        encrypted = False
        for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                cls.from_private_key_file(key, passphrase)
                return None  # the key loads: the problem is elsewhere
            except paramiko.PasswordRequiredException:
                encrypted = True
            except (paramiko.SSHException, OSError, ValueError, TypeError):
                pass
            if passphrase:
                try:
                    cls.from_private_key_file(key, None)
                except paramiko.PasswordRequiredException:
                    encrypted = True
                except (paramiko.SSHException, OSError, ValueError, TypeError):
                    pass
        if encrypted and passphrase:
            return f"{where}: wrong passphrase (HWNAS_SSH_PASSPHRASE does not decrypt it)"
        if encrypted:
            return (f"{where} is encrypted and no passphrase was given: export HWNAS_SSH_PASSPHRASE or load the key "
                    f"into ssh-agent")
        return f"{where} is not a private key that can be read (ed25519, ECDSA or RSA)"

    def close(self) -> None:
        for handle in (self._sftp, self._client):
            if handle is not None:
                try:
                    handle.close()
                except Exception:  # noqa: BLE001 - closing a dead link must not raise
                    pass
        self._sftp = None
        self._client = None
        self._made_dirs.clear()

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return bool(transport and transport.is_active())

    def _ensure(self) -> Any:
        if not self._alive():
            self.close()
            self.connect()
        return self._client

    def _sftp_client(self) -> Any:
        if self._sftp is None or not self._alive():
            try:
                self._sftp = self._ensure().open_sftp()
            except Exception as exc:  # noqa: BLE001 - paramiko raises several types here
                raise TransportError(f"device {self.name}: SFTP failed: {type(exc).__name__}: {exc}") from None
        return self._sftp

    def _recover(self, error: Exception, deadline: float) -> None:
        log.warning("device %s: link lost (%s); reconnecting", self.name, error)
        self.close()
        self._reconnect(deadline, self.connect)

    # -- primitives -----------------------------------------------------------------------------------
    def _exec(self, argv: Sequence[str], cwd: str | None = None, timeout_s: float = 60.0) -> tuple[int, str, str]:
        stream = self._open_stream(argv, cwd)
        out = []
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransportError(f"device {self.name}: {argv[0]} did not finish in {timeout_s:.0f} s")
                line = stream.readline(left)
                if line is None:
                    continue
                if line == "":
                    break
                out.append(line)
            return stream.exit_code(), "".join(out), stream.stderr_tail()
        finally:
            stream.close()

    def _open_stream(self, argv: Sequence[str], cwd: str | None = None) -> ChannelLineStream:
        command = shell_command(argv, cwd)
        try:
            channel = self._ensure().get_transport().open_session()
            channel.exec_command(command)
        except TransportError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise TransportError(f"device {self.name}: cannot start a command: {type(exc).__name__}: {exc}") \
                from None
        return ChannelLineStream(channel)

    def _list_dir(self, path: str) -> set[str]:
        try:
            return set(self._sftp_client().listdir(path))
        except FileNotFoundError:
            return set()
        except _link_errors() as exc:
            if not self._alive():
                raise TransportError(f"device {self.name}: link lost while listing {path}") from None
            raise TransportError(f"device {self.name}: cannot list {path}: {exc}") from None

    def _makedirs(self, path: str) -> None:
        if path in self._made_dirs:
            return
        sftp = self._sftp_client()
        parts = [p for p in path.split("/") if p]
        current = "/" if path.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part) if current else part
            try:
                sftp.stat(current)
            except FileNotFoundError:
                try:
                    sftp.mkdir(current, 0o700)
                except OSError:
                    sftp.stat(current)  # created meanwhile by someone else: fine; else this raises
        self._made_dirs.add(path)

    def _push(self, local: Path, remote: str) -> None:
        try:
            self._makedirs(posixpath.dirname(remote))
            sftp = self._sftp_client()
            tmp = f"{remote}.{uuid.uuid4().hex[:8]}.part"
            try:
                sftp.put(str(local), tmp)
                sftp.posix_rename(tmp, remote)
            except _link_errors():
                if self._alive():
                    try:
                        sftp.remove(tmp)
                    except OSError:
                        pass
                raise
        except _link_errors() as exc:
            raise TransportError(f"device {self.name}: push of {Path(local).name} failed: {exc}") from None

    def _write_file(self, remote: str, data: bytes) -> None:
        try:
            self._makedirs(posixpath.dirname(remote))
            sftp = self._sftp_client()
            tmp = f"{remote}.{uuid.uuid4().hex[:8]}.part"
            with sftp.open(tmp, "wb") as handle:
                handle.write(data)
            sftp.posix_rename(tmp, remote)
        except _link_errors() as exc:
            raise TransportError(f"device {self.name}: writing {remote} failed: {exc}") from None

    def _remove_tree(self, path: str) -> None:
        if not self._alive():
            return
        self._made_dirs = {d for d in self._made_dirs if d != path and not d.startswith(path.rstrip("/") + "/")}
        self._exec(["rm", "-rf", "--", path], timeout_s=30.0)


class ChannelLineStream(LineStream):
    def __init__(self, channel: Any):
        super().__init__()
        self.channel = channel

    def _read(self, timeout_s: float) -> bytes | None:
        self._drain_stderr()
        self.channel.settimeout(min(timeout_s, 0.5))
        try:
            chunk = self.channel.recv(65536)
        except TimeoutError:
            if not self.channel.get_transport() or not self.channel.get_transport().is_active():
                raise TransportError("the SSH connection dropped") from None
            return None
        except _link_errors() as exc:
            raise TransportError(f"the SSH connection dropped: {exc}") from None
        if not chunk:
            self._drain_stderr()
        return chunk

    def _drain_stderr(self) -> None:
        while self.channel.recv_stderr_ready():
            self._keep_stderr(self.channel.recv_stderr(65536))

    def exit_code(self) -> int:
        if self.channel.exit_status_ready():
            return self.channel.recv_exit_status()
        deadline = time.monotonic() + 10
        while not self.channel.exit_status_ready():
            if time.monotonic() > deadline or not self.channel.get_transport().is_active():
                raise TransportError("the SSH connection dropped before the command's exit status")
            time.sleep(0.01)
        return self.channel.recv_exit_status()

    def stderr_tail(self) -> str:
        try:
            self._drain_stderr()
        except Exception:  # noqa: BLE001
            pass
        return self.err.decode(errors="replace")

    def close(self) -> None:
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001
            pass


class _RejectPolicy:
    def __init__(self, device: SshDevice):
        self.device = device

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        dev = self.device
        raise HostKeyError(
            f"device {dev.name}: unknown host key for {hostname} ({key.get_name()} {host_key_fingerprint(key)}) "
            f"not in {dev.known_hosts}; if that fingerprint is the device's, trust it with "
            f"`hwnas device check {dev.name} --trust-new-host`"
        )


class _TrustPolicy:
    """Record an unknown host's key in known_hosts (changed keys are still refused by paramiko)."""

    def __init__(self, device: SshDevice):
        self.device = device

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        path = self.device.known_hosts
        old = path.read_text() if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write_text(path, f"{old}{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("trusted new host key for %s: %s %s", hostname, key.get_name(), host_key_fingerprint(key))
