"""The ofa-mbv3 space: OFA's arch dicts, keys, sampling, mutation, crossover, encodings, operators."""

import json

import numpy as np
import pytest

from hwnas import space as spaces
from hwnas.errors import InvalidArchError
from hwnas.space.ofa_mbv3 import OFAArch, make_divisible


@pytest.fixture(scope="module")
def sp():
    return spaces.create("ofa-mbv3")


def test_size_per_resolution_matches_ofa(sp):
    assert sp.size_per_resolution() == (81 + 729 + 6561) ** 5
    assert 2.1e19 < sp.size_per_resolution() < 2.2e19
    assert sp.size == 25 * sp.size_per_resolution()  # OFA's 128-224 in steps of 4


def test_widths_follow_ofa_make_divisible():
    w10 = spaces.create("ofa-mbv3", width_mult=1.0)
    w12 = spaces.create("ofa-mbv3", width_mult=1.2)
    assert w10.stage_widths == (24, 40, 80, 112, 160)
    assert (w10.first_conv_width, w10.final_expand_width, w10.last_channel) == (16, 960, 1280)
    assert w12.stage_widths == (32, 48, 96, 136, 192)
    assert (w12.first_conv_width, w12.first_block_width, w12.final_expand_width, w12.last_channel) == (
        24, 24, 1152, 1536)
    assert make_divisible(19.2) == 24 and make_divisible(16) == 16


def test_every_sampled_arch_round_trips_through_dict_key_and_json(sp):
    rng = np.random.default_rng(0)
    for arch in sp.sample(rng, 300):
        assert sp.validate(arch.to_dict()) == arch
        assert sp.validate(arch.key) == arch
        assert sp.validate(json.dumps(arch.to_dict())) == arch
        assert OFAArch.from_dict(arch.to_dict()).key == arch.key
        assert sp.decode(sp.encode([arch], "ordinal"))[0] == arch


def test_inactive_slots_do_not_change_key_or_equality(sp):
    rng = np.random.default_rng(1)
    arch = sp.sample(rng, 1)[0]
    data = arch.to_dict()
    stage = int(np.argmin(arch.d))
    slot = stage * 4 + arch.d[stage]
    if arch.d[stage] == 4:
        pytest.skip("sampled arch has no inactive slot")  # pragma: no cover - seed chosen to have one
    data["ks"][slot] = 7 if data["ks"][slot] != 7 else 5
    data["e"][slot] = 6 if data["e"][slot] != 6 else 4
    other = sp.validate(data)
    assert other == arch and hash(other) == hash(arch) and other.key == arch.key


def test_accepts_ofa_and_dynast_dict_forms(sp):
    base = {"ks": [3, 5, 7, 3] * 5, "e": [3, 4, 6, 4] * 5, "d": [2, 3, 4, 2, 3]}
    plain = sp.validate({**base, "r": 224})
    assert sp.validate({**base, "r": [224]}) == plain
    assert sp.validate({**base, "image_size": 224}) == plain
    assert sp.validate({**base, "r": [224], "wid": None}) == plain
    assert plain.key == "r224-3354-335476-33547634-3354-335476"


def test_mutate_and_crossover_stay_valid_and_mutate_changes_something(sp):
    rng = np.random.default_rng(2)
    archs = sp.sample(rng, 200)
    for a, b in zip(archs, archs[1:]):
        m = sp.mutate(a, rng)
        assert m != a
        assert sp.validate(m.to_dict()) == m
        c = sp.crossover(a, b, rng)
        assert sp.validate(c.to_dict()) == c
        for field in ("ks", "e"):
            for i, value in enumerate(getattr(c, field)):
                active_in_both = i % 4 < min(a.d[i // 4], b.d[i // 4])
                if active_in_both and i % 4 < c.d[i // 4]:
                    assert value in (getattr(a, field)[i], getattr(b, field)[i])


def test_sampling_is_reproducible_from_the_generator(sp):
    first = sp.sample(np.random.default_rng(7), 20)
    second = sp.sample(np.random.default_rng(7), 20)
    assert first == second
    assert len({a.key for a in first}) == 20


def test_encodings_have_fixed_width_and_respect_bounds(sp):
    archs = sp.sample(np.random.default_rng(3), 50)
    onehot = sp.encode(archs)
    ordinal = sp.encode(archs, "ordinal")
    lower, upper = sp.bounds()
    assert onehot.shape == (50, 2 + 15 + 20 * 6)
    assert ordinal.shape == (50, len(upper))
    assert (ordinal >= lower).all() and (ordinal <= upper).all()
    # the resolution as r / 224 and its square, one depth per stage, and two bits per active block
    assert np.allclose(onehot[:, 0], [a.r / 224 for a in archs]) and np.allclose(onehot[:, 1], onehot[:, 0] ** 2)
    assert (onehot[:, 2:17].sum(1) == 5).all()
    assert np.allclose(onehot[:, 17:].sum(1), [2 * sum(a.d) for a in archs])


def test_operators_follow_ofa_lookup_table_keys(sp):
    arch = sp.validate({"ks": [5] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224})
    keys = [op.key for op in sp.operators(arch)]
    assert keys[0] == "Conv-input:224x224x3-output:112x112x16"
    assert keys[1] == "expanded_conv-input:112x112x16-output:112x112x16-expand:16-kernel:3-stride:1-idskip:1-se:0-hs:0"
    assert keys[2] == "expanded_conv-input:112x112x16-output:56x56x24-expand:96-kernel:5-stride:2-idskip:0-se:0-hs:0"
    assert "expanded_conv-input:56x56x24-output:28x28x40-expand:144-kernel:5-stride:2-idskip:0-se:1-hs:0" in keys
    assert keys[-4:] == [
        "Conv_1-input:7x7x160-output:7x7x960",
        "AvgPool2D-input:7x7x960-output:1x1x960",
        "Conv_2-input:1x1x960-output:1x1x1280",
        "Logits-input:1x1x1280-output:1000",
    ]
    assert len(keys) == 2 + 20 + 4


def test_all_operators_cover_every_operator_of_random_archs_at_profiled_resolutions(sp):
    every = {op.key for op in sp.all_operators()}
    assert len(every) == len(sp.all_operators())
    for arch in sp.profiled_space().sample(np.random.default_rng(4), 100):
        assert {op.key for op in sp.operators(arch)} <= every


def test_flops_and_params_grow_with_the_arch(sp):
    small = sp.validate({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160})
    big = sp.validate({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224})
    assert sp.flops(small) < sp.flops(big)
    assert sp.params(small) < sp.params(big)
    # OFA reports about 7.7 M parameters for the largest w1.0 subnet
    assert 7.5 < sp.params(big) < 7.8
    same_but_r160 = sp.validate({**big.to_dict(), "r": 160})
    assert sp.params(same_but_r160) == sp.params(big)
    assert sp.flops(same_but_r160) < sp.flops(big)


def test_demo_sized_space_uses_the_same_code():
    sp = spaces.create("ofa-mbv3", base_widths=[8, 8, 16, 24, 32, 48, 64, 192, 256], resolutions=[32, 40, 48],
                       n_classes=10, in_channels=1)
    arch = sp.sample(np.random.default_rng(0), 1)[0]
    ops = sp.operators(arch)
    assert ops[0].input == (arch.r, arch.r, 1)
    assert ops[-1].output == (10,)
    assert spaces.from_config(sp.config()).config() == sp.config()


def test_archs_from_another_resolution_set_are_refused():
    sp = spaces.create("ofa-mbv3", resolutions=[32, 40])
    with pytest.raises(InvalidArchError, match="'r' is 224; allowed values: 32, 40"):
        sp.validate({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 224})
