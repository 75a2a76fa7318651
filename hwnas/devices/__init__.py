"""Target devices: transports (local, ssh, adb), the on-device runner and the device inventory."""

from hwnas.devices.base import BenchmarkModel, BenchmarkSettings, Device, Measurement, sha256_file

__all__ = ["BenchmarkModel", "BenchmarkSettings", "Device", "Measurement", "sha256_file"]
