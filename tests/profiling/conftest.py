"""Fixtures for profiling tests: a workspace with this machine's onnxruntime device, and a small real profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.workspace import Workspace

DEVICE_TOML = 'transport = "local"\nruntime = "onnxruntime"\nthreads = 1\n'
# a quick profile: NAS-Bench-201's 16 operators, few runs
QUICK = ["--space", "nasbench201", "--runs", "3", "--warmup", "1", "--rounds", "1", "--jobs", "1"]


def make_workspace(root: Path, device: str = "cpu") -> Workspace:
    ws = Workspace.init(root)
    (ws.devices_dir / f"{device}.toml").write_text(DEVICE_TOML)
    return ws


def run_hwnas(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "HWNAS_WORKSPACE": str(cwd)}
    return subprocess.run([sys.executable, "-m", "hwnas.cli.app", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, **kwargs)


@pytest.fixture(scope="session")
def hwnas_cli():
    """run(args, workspace_root) -> CompletedProcess of `python -m hwnas.cli.app ARGS` in that workspace."""
    return run_hwnas


@pytest.fixture(scope="session")
def new_workspace():
    """make(root, device="cpu") -> a Workspace whose devices/<device>.toml is this machine's onnxruntime."""
    return make_workspace


@pytest.fixture(scope="session")
def quick_args():
    return list(QUICK)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """A workspace whose device `cpu` has a real nasbench201 profile with 4 calibration and 3 reference subnets."""
    ws = make_workspace(tmp_path_factory.mktemp("profiled"))
    result = run_hwnas(["profile", "cpu", *QUICK, "--calibration", "4", "--reference", "3", "--chunk-size", "16"],
                       ws.root)
    assert result.returncode == 0, result.stderr[-2000:]
    return ws
