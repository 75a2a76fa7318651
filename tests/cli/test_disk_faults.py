"""A full disk or a read-only workspace: one line naming the path, exit 1, the file being replaced intact (writes
are atomic), no temporary file left; once there is room again the same command completes. The workspace is a
small tmpfs the test mounts (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREDICTOR = "predictors/local-cpu-ort-ofa-mbv3-onnxruntime.json"


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        for name in ("devices", "profiles"):
            shutil.copytree(ROOT / name, mount / name)
        (mount / "predictors").mkdir()
        shutil.copy(ROOT / PREDICTOR, mount / PREDICTOR)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _hwnas(args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("HWNAS_WORKSPACE", "HWNAS_DEBUG")}
    return subprocess.run([sys.executable, "-m", "hwnas.cli.app", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def _one_line(result, words):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert words in lines[0] and "Traceback" not in result.stderr


def test_full_disk_is_one_line_keeps_the_old_file_and_the_rerun_completes(small_disk):
    before = (small_disk / PREDICTOR).read_bytes()
    filler = _fill(small_disk)
    result = _hwnas(["fit", "local-cpu-ort", "--predictor", "lut-calibrated"], small_disk)
    _one_line(result, "No space left on device")
    assert (small_disk / PREDICTOR).read_bytes() == before
    assert not [p for p in (small_disk / "predictors").iterdir() if p.name.endswith(".tmp")]
    filler.unlink()
    result = _hwnas(["fit", "local-cpu-ort", "--predictor", "lut-calibrated"], small_disk)
    assert result.returncode == 0, result.stderr
    assert (small_disk / PREDICTOR).read_bytes() != before  # refitted (a new date in its metadata)


def test_read_only_workspace_refuses_writes_in_one_line_and_still_reads(small_disk):
    before = (small_disk / PREDICTOR).read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = _hwnas(["fit", "local-cpu-ort", "--predictor", "lut-calibrated"], small_disk)
    _one_line(result, "Read-only file system")
    assert (small_disk / PREDICTOR).read_bytes() == before
    arch = '{"ks": [3], "e": [3], "d": [2], "r": 160}'.replace("[3]", str([3] * 20)).replace("[2]", str([2] * 5))
    result = _hwnas(["predict", "local-cpu-ort", arch, "--json"], small_disk)
    assert result.returncode == 0 and "latency_ms" in result.stdout, result.stderr
