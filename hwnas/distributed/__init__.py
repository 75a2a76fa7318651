"""Scale-out on Ray: a device farm (one actor per device, measurements streamed into the driver's store) and
parallel subnet evaluation (workers that load the supernet and data once). Without Ray everything runs
in-process; `RaySettings` says which."""

from hwnas.distributed.cluster import RaySettings, available_workers, check_reachable, import_ray, ray_session

__all__ = ["RaySettings", "available_workers", "check_reachable", "import_ray", "ray_session"]
