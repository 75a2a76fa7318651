"""Where distributed work runs: in-process (no flag), a Ray started here (`--ray`), or an existing Ray cluster
(`--ray-address`). Ray is an optional extra (`pip install 'hwnas[ray]'`); nothing imports it unless asked.
Ray's usage statistics are switched off before it is imported."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hwnas.errors import ClusterError

__all__ = ["RaySettings", "import_ray", "ray_session", "available_workers", "check_reachable"]

INSTALL_HINT = "install it with `pip install 'hwnas[ray]'`, or leave out --ray/--ray-address to run in-process"


@dataclass(frozen=True)
class RaySettings:
    """How to reach Ray: `address` joins a running cluster ("auto", "HOST:PORT" or "ray://HOST:PORT");
    `local` starts a Ray on this machine (bound to 127.0.0.1) for the length of the job; neither: in-process.
    `num_cpus` caps the CPUs a local Ray offers (default: all)."""

    address: str | None = None
    local: bool = False
    num_cpus: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address) or self.local

    @classmethod
    def from_options(cls, ray: bool = False, ray_address: str | None = None,
                     num_cpus: int | None = None) -> RaySettings:
        return cls(address=ray_address or None, local=bool(ray) and not ray_address, num_cpus=num_cpus)


def import_ray() -> Any:
    """The `ray` module, with usage statistics switched off; a one-line ClusterError when it is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")
    try:
        import ray
    except ImportError:
        raise ClusterError(f"Ray is not installed; {INSTALL_HINT}") from None
    return ray


@contextmanager
def ray_session(settings: RaySettings | None) -> Iterator[Any]:
    """Yields the `ray` module connected as `settings` say (None when they ask for in-process work). Joins an
    already initialised Ray as it is; shuts down only a Ray this call started or joined."""
    if settings is None or not settings.enabled:
        yield None
        return
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if settings.address:
        check_reachable(settings.address)
    try:
        if settings.address:
            ray.init(address=settings.address, logging_level="ERROR", log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(num_cpus=settings.num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                     logging_level="ERROR", log_to_driver=False, configure_logging=False)
    except ClusterError:
        raise
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ... for an unreachable cluster
        where = f"the Ray cluster at {settings.address}" if settings.address else "a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"could not start or join {where} ({first}); check the address (`ray status` on the "
                           "head node prints it) or leave out --ray-address to run in-process") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ClusterError at once when nothing listens at a HOST:PORT address (Ray itself retries for minutes).
    "auto" and addresses without a port are left to Ray."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ClusterError(f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head` and "
                       "pass the address it prints, or leave out --ray-address to run in-process")


def available_workers(ray: Any, cpus_per_worker: float = 1.0) -> int:
    """How many workers of `cpus_per_worker` CPUs the connected cluster holds (at least 1)."""
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus // max(cpus_per_worker, 1e-9)))
