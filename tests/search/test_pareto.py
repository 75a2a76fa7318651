"""Pareto masks and hypervolume against brute force and pymoo's indicator."""

import numpy as np
from pymoo.indicators.hv import HV

from hwnas.search import Normalization, hypervolume, hypervolume_2d, nondominated_ranks, pareto_mask


def _brute_force_mask(F):
    n = len(F)
    return np.array([not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(n)) for i in range(n)])


def test_pareto_mask_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        F = rng.integers(0, 8, size=(40, 2)).astype(float)
        assert np.array_equal(pareto_mask(F), _brute_force_mask(F))


def test_nondominated_ranks_put_the_front_first():
    F = np.array([[0, 3], [1, 1], [3, 0], [2, 2], [4, 4]], dtype=float)
    ranks = nondominated_ranks(F)
    assert list(ranks) == [0, 0, 0, 1, 2]


def test_hypervolume_2d_matches_pymoo():
    rng = np.random.default_rng(1)
    for _ in range(20):
        P = rng.random((30, 2))
        ref = np.array([1.0, 1.0])
        assert np.isclose(hypervolume_2d(P, ref), HV(ref_point=ref)(P))


def test_hypervolume_normalises_and_ignores_points_beyond_the_reference():
    norm = Normalization((0.0, 0.0), (10.0, 100.0), (1.0, 1.0))
    F = np.array([[5.0, 50.0], [20.0, 10.0]])  # the second point lies beyond the reference in x
    assert np.isclose(hypervolume(F, norm), 0.25)


def test_hypervolume_three_objectives_uses_pymoo():
    rng = np.random.default_rng(2)
    F = rng.random((25, 3))
    norm = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert np.isclose(hypervolume(F, norm), HV(ref_point=np.ones(3))(F))


def test_hypervolume_gains_match_recomputing_the_hypervolume():
    from hwnas.search.pareto import hypervolume_gains

    rng = np.random.default_rng(2)
    for dims in (2, 2, 2, 3):
        for n_front in (0, 1, 7):
            front = rng.random((n_front, dims)) * 1.2  # some beyond the reference
            points = rng.random((25, dims)) * 1.2
            ref = np.ones(dims)
            base = HV(ref_point=ref)(front[np.all(front < ref, axis=1)]) if n_front else 0.0
            want = []
            for p in points:
                P = np.vstack([front, p[None, :]])
                P = P[np.all(P < ref, axis=1)]
                want.append((HV(ref_point=ref)(P) if len(P) else 0.0) - base)
            assert np.allclose(hypervolume_gains(front, points, ref), want)
