"""Fixtures for the Ray tests: a private network namespace (only a loopback interface) so that every Ray
process binds and talks on 127.0.0.1 and nothing can leave this machine (Ray's servers otherwise listen on all
interfaces), and a real two-node Ray cluster (a head plus a second node joined by address) inside it."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CLONE_NEWNET = 0x40000000
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="package")
def netns() -> Iterator[None]:
    """Moves this (main) thread into a new network namespace holding only `lo` for the tests of this package,
    then back. Every process the tests start (Ray, sshd) is forked from here and inherits it. Needs root
    (CAP_SYS_ADMIN), as CI has; elsewhere the tests run on the machine's namespace, binding 127.0.0.1."""
    os.environ.update(RAY_ENV)
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/self/ns/net") as original:
        if libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield
        finally:
            if libc.setns(original.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the original network namespace failed")


class RayCluster:
    """A head node and `nodes - 1` more nodes joined to it by address, each with `cpus` CPUs, started with
    Ray's own CLI into a private temp folder."""

    def __init__(self, temp: Path, port: int, cpus: int = 1):
        self.temp, self.port, self.cpus = temp, port, cpus
        self.address = f"127.0.0.1:{port}"

    def _ray(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([_ray_cli(), *args], check=True, timeout=timeout, env={**os.environ, **RAY_ENV},
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self, nodes: int = 2) -> RayCluster:
        self._ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                  f"--num-cpus={self.cpus}", "--include-dashboard=false", "--disable-usage-stats",
                  f"--temp-dir={self.temp}")
        for _ in range(nodes - 1):
            self.add_node()
        return self

    def add_node(self) -> None:
        self._ray("start", f"--address={self.address}", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}")

    def stop(self) -> None:
        subprocess.run([_ray_cli(), "stop", "--force"], timeout=120, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, **RAY_ENV})


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")
def ray_cluster(netns) -> Iterator[RayCluster]:
    """A real Ray cluster on 127.0.0.1: a head and a second node, one CPU each."""
    if shutil.which("ip") is None and os.geteuid() == 0:
        pytest.fail("the `ip` command is needed to bring up loopback in the test's network namespace")
    temp = Path(f"/tmp/hwnas-ray-{os.getpid()}")  # Ray's socket paths must stay short: not under pytest's tmp
    cluster = RayCluster(temp, _free_port())
    try:
        cluster.start(nodes=2)
        time.sleep(1.0)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp, ignore_errors=True)
