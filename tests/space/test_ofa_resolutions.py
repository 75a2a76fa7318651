"""ofa-mbv3 at OFA's resolutions: 128-224 in steps of 4 accepted (HELP's published archs), a profiled subset
measured, the resolution encoded as a number; old configs and a checkpoint's own resolutions kept."""

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hwnas import space as spaces
from hwnas.errors import InvalidArchError, ProfilingError, SpaceError
from hwnas.profiling.profiler import _space_at
from hwnas.profiling.reference import calibration_archs, reference_archs
from hwnas.space.ofa_mbv3 import DEFAULT_PROFILED_RESOLUTIONS, OFA_RESOLUTIONS

HELP_CSV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ofa_gpu" / "ofa_mbv3_gpu_latency.csv"


@pytest.fixture(scope="module")
def sp():
    return spaces.create("ofa-mbv3")


def _help_archs() -> list[dict]:
    with open(HELP_CSV, newline="") as handle:
        return [{"ks": [int(x) for x in row["ks"].split()], "e": [int(x) for x in row["e"].split()],
                 "d": [int(x) for x in row["d"].split()], "r": int(row["r"])} for row in csv.DictReader(handle)]


def test_every_help_ofa_arch_validates_at_its_own_resolution(sp):
    archs = _help_archs()
    assert len(archs) == 5000
    resolutions = Counter(a["r"] for a in archs)
    assert set(resolutions) == set(range(128, 225, 4))  # the file really has every step of 4
    for data in archs:
        arch = sp.validate(data)
        assert arch.r == data["r"] and arch.key.startswith(f"r{data['r']}-")
        assert sp.validate(arch.key) == arch  # keys keep their format: r<resolution>-...


@pytest.mark.parametrize("r", [130, 228, 124, 204.0, "204"])
def test_a_resolution_off_the_grid_is_refused_in_one_line_naming_the_range(sp, r):
    data = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": r}
    with pytest.raises(InvalidArchError) as info:
        sp.validate(data)
    message = str(info.value)
    assert "'r'" in message and "128-224 in steps of 4" in message and "\n" not in message


def test_default_space_accepts_ofa_resolutions_and_profiles_the_old_five(sp):
    assert sp.resolutions == OFA_RESOLUTIONS == tuple(range(128, 225, 4))
    assert sp.profiled_resolutions == DEFAULT_PROFILED_RESOLUTIONS == (160, 176, 192, 208, 224)
    # a default profile measures what it measured before: the operators of the five profiled resolutions
    old = spaces.create("ofa-mbv3", resolutions=DEFAULT_PROFILED_RESOLUTIONS)
    assert [op.key for op in sp.all_operators()] == [op.key for op in old.all_operators()]
    assert len(sp.all_operators()) == 450
    assert sp.size == 25 * sp.size_per_resolution()


def test_sampling_mutation_and_the_ordinal_encoding_cover_every_resolution(sp):
    rng = np.random.default_rng(0)
    archs = sp.sample(rng, 2000)
    assert {a.r for a in archs} == set(OFA_RESOLUTIONS)
    lower, upper = sp.bounds()
    assert upper[0] == 24 and sp.decode(sp.encode(archs[:50], "ordinal")) == archs[:50]
    mutated = {sp.mutate(a, rng, prob=1.0).r for a in archs[:300]}
    assert len(mutated) > 15


def test_resolution_is_encoded_as_a_number_so_nearby_resolutions_are_near(sp):
    base = sp.sample(np.random.default_rng(1), 1)[0]
    rows = sp.encode([sp.at_resolution(base, r) for r in (200, 204, 224)])
    assert rows.shape[1] == 2 + 15 + 20 * 6
    np.testing.assert_allclose(rows[:, 0], [200 / 224, 204 / 224, 1.0], rtol=1e-6)
    np.testing.assert_allclose(rows[:, 1], rows[:, 0] ** 2, rtol=1e-6)
    np.testing.assert_array_equal(rows[0, 2:], rows[1, 2:])  # the rest does not depend on the resolution


def test_config_round_trips_and_old_configs_keep_their_own_resolutions(sp):
    assert spaces.from_config(sp.config()).config() == sp.config()
    assert "profiled_resolutions" not in sp.config()  # the default is not written
    subset = sp.with_profiled_resolutions([224, 160, 192])
    assert subset.config()["profiled_resolutions"] == [160, 192, 224]
    assert spaces.from_config(subset.config()).config() == subset.config()
    # a run folder, profile or checkpoint written before keeps exactly its space
    old = spaces.from_config({"name": "ofa-mbv3", "width_mult": 1.0, "resolutions": [160, 176, 192, 208, 224],
                              "ks_list": [3, 5, 7], "expand_list": [3, 4, 6], "depth_list": [2, 3, 4],
                              "base_widths": [16, 16, 24, 40, 80, 112, 160, 960, 1280], "n_classes": 1000,
                              "in_channels": 3})
    assert old.profiled_resolutions == old.resolutions and "profiled_resolutions" not in old.config()
    with pytest.raises(InvalidArchError, match="160, 176, 192, 208, 224"):
        old.validate({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 204})
    demo = spaces.create("ofa-mbv3", resolutions=[32, 40, 48])
    assert demo.profiled_resolutions == (32, 40, 48) and "profiled_resolutions" not in demo.config()


def test_profiled_resolutions_outside_the_space_are_refused():
    with pytest.raises(SpaceError, match="not in the space's resolutions"):
        spaces.create("ofa-mbv3", resolutions=[32, 40, 48], profiled_resolutions=[32, 64])


def test_profile_resolutions_choose_the_profiled_subset_and_keep_every_arch_valid(sp):
    at = _space_at(sp, [224, 160, 192])
    assert at.resolutions == sp.resolutions and at.profiled_resolutions == (160, 192, 224)
    assert {op.input[0] for op in at.all_operators() if op.type == "Conv"} == {160, 192, 224}
    assert at.validate({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 204}).r == 204
    with pytest.raises(ProfilingError) as info:
        _space_at(sp, [161])
    assert "128-224 in steps of 4" in str(info.value) and "\n" not in str(info.value)


def test_reference_subnets_stay_at_profiled_resolutions_and_calibration_spans_all(sp):
    refs = reference_archs(sp, 20)
    assert {a.r for a in refs} <= set(sp.profiled_resolutions)
    # the cross-device anchor did not change with the wider resolution set
    old = spaces.create("ofa-mbv3", resolutions=DEFAULT_PROFILED_RESOLUTIONS)
    assert [a.key for a in refs] == [a.key for a in reference_archs(old, 20)]
    calib = calibration_archs(sp, 50)
    assert any(a.r not in sp.profiled_resolutions for a in calib)
