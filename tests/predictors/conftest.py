"""Fixtures for predictor tests: a synthetic operator table for ofa-mbv3 and the measured NAS-Bench-201 data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from hwnas.space import create
from hwnas.space.ofa_mbv3 import op_flops

NB201_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nasbench201"


@pytest.fixture(scope="session")
def ofa():
    return create("ofa-mbv3")


@pytest.fixture(scope="session")
def ofa_table(ofa):
    """{op key: ms}: a made-up device where an operator costs 0.05 ms plus 4 us per MFLOP."""
    return {op.key: 0.05 + 0.004 * op_flops(op) / 1e6 for op in ofa.all_operators()}


def _subnet_latency(ofa, table, archs, rng, noise=0.01):
    """Whole-subnet 'measurements' of the made-up device: a runtime that fuses (x0.8) and pays 1 ms per
    invoke, with no per-operator overhead, plus multiplicative noise. Its kernels cost 4 us per MFLOP at every
    resolution, profiled (in `table`) or not."""
    out = []
    for arch in archs:
        ops = ofa.operators(arch)
        kernel_ms = sum(table[op.key] - 0.05 if op.key in table else 0.004 * op_flops(op) / 1e6 for op in ops)
        out.append((0.8 * kernel_ms + 1.0) * (1 + rng.normal(0, noise)))
    return np.array(out)


@pytest.fixture(scope="session")
def nb201():
    """(archs, {device: latency ms}, cifar10 test accuracy) of the non-degenerate NAS-Bench-201 archs."""
    path = NB201_DIR / "nb201_cifar10_latency_via_help.csv"
    if not path.exists():
        pytest.skip(f"NAS-Bench-201 data not found at {NB201_DIR}")
    space = create("nasbench201")
    archs, pixel3, raspi4, index = [], [], [], []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            arch = space.validate(row["arch_str"])
            if space.is_degenerate(arch):
                continue
            archs.append(arch)
            pixel3.append(float(row["cifar10_pixel3_latency_ms"]))
            raspi4.append(float(row["cifar10_raspi4_latency_ms"]))
            index.append(int(row["arch_index"]))
    acc = {}
    with open(NB201_DIR / "nb201_accuracy.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            acc[int(row["arch_index"])] = float(row["cifar10_test_acc"])
    return archs, {"pixel3": np.array(pixel3), "raspi4": np.array(raspi4)}, np.array([acc[i] for i in index])


@pytest.fixture(scope="session")
def subnet_latency():
    """The made-up device's whole-subnet latency: f(space, table, archs, rng) -> ms."""
    return _subnet_latency
