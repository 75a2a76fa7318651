"""Fixtures: the NAS-Bench-201 table with measured device latency (a known true front)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.benchmarks import Table
from hwnas.search import Normalization, hypervolume, pareto_mask

NB201 = Path(__file__).resolve().parents[3] / "shared" / "data" / "nasbench201"


@pytest.fixture(scope="session")
def nb201_table() -> Table:
    if not (NB201 / "nb201_accuracy.csv").is_file():
        pytest.skip(f"NAS-Bench-201 tables not found at {NB201}")
    table = Table.from_csv([NB201 / "nb201_accuracy.csv", NB201 / "nb201_cifar10_latency_via_help.csv"],
                           key="arch_str", columns=["cifar10_test_acc", "cifar10_raspi4_latency_ms"])
    return table.filter(lambda a: not table.space.is_degenerate(a))


@pytest.fixture(scope="session")
def nb201_problem(nb201_table):
    """(objectives, normalisation over the table, best hypervolume) for top-1 vs Raspberry Pi 4 latency."""
    t = nb201_table
    acc = t.objective("cifar10_test_acc", direction="max", name="top1", missing="worst")
    lat = t.objective("cifar10_raspi4_latency_ms", name="latency_ms[raspi4]", missing="worst")
    a_lo, a_hi = t.bounds("cifar10_test_acc")
    l_lo, l_hi = t.bounds("cifar10_raspi4_latency_ms")
    norm = Normalization((-a_hi, l_lo), (-a_lo, l_hi), (1.0, 1.0))
    F = np.stack([-t.data["cifar10_test_acc"], t.data["cifar10_raspi4_latency_ms"]], axis=1)
    return [acc, lat], norm, hypervolume(F[pareto_mask(F)], norm)
