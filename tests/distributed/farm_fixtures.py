"""Fixtures for the device farm tests: two real sshd servers started inside the tests' network namespace (one per
SSH device, so that one device's link can be killed alone) and workspaces holding this machine three times over
(`local-cpu-ort` plus `ssh-a` and `ssh-b` on loopback)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "devices"))

from servers import SSHD, Sshd, free_port, wait_until  # noqa: E402,F401 - wait_until: for the tests

from hwnas.devices import add_device  # noqa: E402
from hwnas.profiling import MeasurementStore  # noqa: E402
from hwnas.workspace import Workspace  # noqa: E402

DEVICES = ["local-cpu-ort", "ssh-a", "ssh-b"]
# a small, fast profile: NAS-Bench-201's 16 operators in one batch, 2 + 2 whole subnets, few runs
TINY = dict(space="nasbench201", runs=3, warmup=1, rounds=1, jobs=1, calibration=2, reference=2, chunk_size=16)


@pytest.fixture(scope="module")
def farm_sshds(netns, tmp_path_factory) -> Iterator[dict[str, Sshd]]:
    """Two real sshd servers on 127.0.0.1 inside the network namespace: `ssh-a`'s and `ssh-b`'s."""
    if not Path(SSHD).exists():
        pytest.fail("sshd is missing: apt-get install -y openssh-server")
    servers = {name: Sshd(tmp_path_factory.mktemp(f"sshd-{name}")) for name in ("ssh-a", "ssh-b")}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def add_ssh_device(ws: Workspace, name: str, server: Sshd, port: int | None = None, **options) -> None:
    known = ws.root / f"known_hosts-{name}"
    known.write_text(server.known_hosts_line.replace(f":{server.port}]", f":{port or server.port}]"))
    add_device(ws, name, transport="ssh", host="127.0.0.1", port=port or server.port, user=server.user,
               key=str(server.folder / "user_key"), runtime="onnxruntime", python=sys.executable,
               remote_dir=str(ws.root / f"remote-{name}"), known_hosts=str(known), **{"reconnect_timeout_s": 30.0,
                                                                                     **options})


def farm_workspace(root: Path, sshds: dict[str, Sshd]) -> Workspace:
    """A workspace with `local-cpu-ort` (this machine) and `ssh-a`, `ssh-b` (this machine over each sshd)."""
    ws = Workspace.init(root)
    add_device(ws, "local-cpu-ort", transport="local", runtime="onnxruntime", threads=1)
    for name, server in sshds.items():
        add_ssh_device(ws, name, server)
    return ws


def dead_port() -> int:
    return free_port()  # nothing listens there


def record_counts(ws: Workspace, device: str) -> Counter:
    """(kind, role, key, ok) -> how many times the device's store holds it."""
    return Counter((r.kind, r.role, r.key, r.ok) for r in MeasurementStore.for_device(ws, device).records())
