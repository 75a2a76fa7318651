"""1,000 random malformed archs: each gives an InvalidArchError naming the problem, never a bare traceback."""

import copy
import json

import numpy as np
import pytest

from hwnas import space as spaces
from hwnas.errors import HwnasError, InvalidArchError

JUNK = [None, True, 3.5, "7", "", "\u202e\u0000\U0001f600", [], {}, [[3]], float("nan"), float("inf"), -1, 0,
        10**30, -(10**30), 2**63, b"\xff", {"ks": 3}, object()]


def _ofa_corruptions(rng: np.random.Generator, valid: dict) -> dict | object:
    """A copy of `valid` broken in one of many ways that must be refused."""
    data = copy.deepcopy(valid)
    kind = int(rng.integers(9))
    field = str(rng.choice(["ks", "e", "d"]))
    if kind == 0:  # a missing field
        del data[str(rng.choice(["ks", "e", "d", "r"]))]
    elif kind == 1:  # an unknown field
        data[str(rng.choice(["wid_list", "kernel", "ΩΩ", "", "r2"]))] = 1
    elif kind == 2:  # wrong length
        n = len(data[field])
        data[field] = data[field][: int(rng.integers(0, n))] if rng.random() < 0.5 else data[field] * 2
    elif kind == 3:  # junk in an always-active slot (the first two blocks of every stage)
        slot = int(rng.integers(5)) * (4 if field != "d" else 1) + (int(rng.integers(2)) if field != "d" else 0)
        junk = JUNK[int(rng.integers(len(JUNK) - 2))]
        data[field][slot] = junk if rng.random() < 0.5 else int(rng.integers(8, 10**6))
    elif kind == 4:  # a bad resolution
        data["r"] = JUNK[int(rng.integers(len(JUNK)))] if rng.random() < 0.5 else int(rng.integers(225, 10**9))
    elif kind == 5:  # a field of the wrong type
        data[field] = JUNK[int(rng.integers(len(JUNK)))]
    elif kind == 6:  # not a dict at all
        return JUNK[int(rng.integers(len(JUNK)))]
    elif kind == 7:  # depth out of range
        data["d"][int(rng.integers(5))] = int(rng.choice([0, 1, 5, 99, -3]))
    else:  # text that is neither JSON nor a key
        return "".join(chr(int(c)) for c in rng.integers(32, 0x2FFF, int(rng.integers(1, 40))))
    return data


def test_1000_malformed_ofa_archs_raise_clear_errors():
    sp = spaces.create("ofa-mbv3")
    rng = np.random.default_rng(1234)
    valid = [a.to_dict() for a in sp.sample(rng, 50)]
    for i in range(1000):
        bad = _ofa_corruptions(rng, valid[i % 50])
        with pytest.raises(InvalidArchError) as info:
            sp.validate(bad)
        message = str(info.value)
        assert message and "\n" not in message and len(message) < 400, (bad, message)


def test_malformed_nasbench201_archs_raise_clear_errors():
    sp = spaces.create("nasbench201")
    rng = np.random.default_rng(5)
    inputs = list(JUNK) + ["|none~0|", "1-2-3", "1234567", "|a~0|+|b~0|c~1|+|d~0|e~1|f~2|", [1, 2, 3], [0] * 7,
                           {"arch": "x"}, {"arch_str": 5}]
    inputs += ["".join(chr(int(c)) for c in rng.integers(32, 0x2FFF, 20)) for _ in range(100)]
    for bad in inputs:
        with pytest.raises(HwnasError) as info:
            sp.validate(bad)
        assert "\n" not in str(info.value)


def test_json_text_with_a_syntax_error_says_it_is_not_json():
    sp = spaces.create("ofa-mbv3")
    with pytest.raises(InvalidArchError, match="not valid JSON"):
        sp.validate('{"ks": [3, 5,')
    with pytest.raises(InvalidArchError, match="'ks'\\[0\\] is '3'"):
        sp.validate(json.dumps({"ks": ["3"] * 20, "e": [3] * 20, "d": [2] * 5, "r": 224}))
