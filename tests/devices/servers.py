"""Real servers the device tests start on loopback (importable from other test packages, e.g. the device farm
tests, which start them inside their own network namespace): a real OpenSSH server, the port helpers and a
polling wait."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def wait_until(condition, timeout_s: float = 60.0, step_s: float = 0.05) -> bool:
    """Poll `condition()` until it is true (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


class Sshd:
    """A real OpenSSH server on 127.0.0.1 with its own host key and user keys (`user_key`, and `user_key_enc`
    with a passphrase) in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.user = getpass.getuser()
        self.proc: subprocess.Popen | None = None
        for name, extra in (("host_key", []), ("user_key", []), ("user_key_enc", ["-N", "correct horse"])):
            args = ["ssh-keygen", "-q", "-t", "ed25519", "-f", str(folder / name), "-C", name]
            subprocess.run(args + (extra or ["-N", ""]), check=True)
        auth = folder / "authorized_keys"
        auth.write_text((folder / "user_key.pub").read_text() + (folder / "user_key_enc.pub").read_text())
        auth.chmod(0o600)
        host_pub = (folder / "host_key.pub").read_text().split()
        self.known_hosts_line = f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n"
        (folder / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {auth}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
            "StrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 100\n"
            "MaxSessions 100\nClientAliveInterval 0\n"
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    def start(self) -> None:
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.folder / "sshd.log", "ab"))
        wait_port(self.port)

    def sshd_pids(self) -> list[int]:
        """Our sshd and the per-connection sshd processes it forked (never the commands they run)."""
        if self.proc is None:
            return []
        pids, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    exe = os.readlink(f"/proc/{entry}/exe")
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == parent and os.path.basename(exe).startswith("sshd"):
                    pids.append(int(entry))
                    frontier.append(int(entry))
        return pids

    def kill(self) -> None:
        """Kill the server and every live SSH connection it serves (commands they started keep running)."""
        for pid in reversed(self.sshd_pids()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait()
            self.proc = None

    def drop_links(self, down_s: float = 0.5) -> None:
        """Kill the server and its live connections, then start it again after `down_s` (on the same port)."""
        self.kill()
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        self.kill()
