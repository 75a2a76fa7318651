"""The nasbench201 space: the official arch string, index order, operators, FLOPs and params."""

import csv
from pathlib import Path

import numpy as np
import pytest

from hwnas import space as spaces
from hwnas.errors import InvalidArchError, SpaceError
from hwnas.space.nasbench201 import EDGES, PATHS

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nasbench201"
INDEX = DATA / "nb201_arch_index.csv"


@pytest.fixture(scope="module")
def sp():
    return spaces.create("nasbench201", index_file=str(INDEX) if INDEX.exists() else None)


def test_official_string_round_trips(sp):
    text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    arch = sp.validate(text)
    assert arch.ops == (3, 3, 4, 1, 3, 1)
    assert arch.arch_str == text
    assert sp.validate(arch.to_dict()) == arch
    assert sp.validate(arch.key) == arch
    assert sp.validate("3-3-4-1-3-1") == arch


@pytest.mark.skipif(not INDEX.exists(), reason="needs ../shared/data/nasbench201")
def test_index_order_matches_the_published_table(sp):
    with open(INDEX, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sp.size == 15625
    for row in rows[::97]:
        arch = sp.validate(row["arch_str"])
        assert sp.index_of(arch) == int(row["arch_index"])
        assert sp.from_index(int(row["arch_index"])) == arch
        assert "-".join(map(str, arch.ops)) == row["arch_vector"]


@pytest.mark.skipif(not INDEX.exists(), reason="needs ../shared/data/nasbench201")
def test_exactly_341_archs_are_degenerate(sp):
    with open(INDEX, newline="") as handle:
        degenerate = sum(sp.is_degenerate(row["arch_str"]) for row in csv.DictReader(handle))
    assert degenerate == 341


def test_indices_without_the_index_file_say_how_to_get_them():
    with pytest.raises(SpaceError, match="index_file"):
        spaces.create("nasbench201").from_index(3)


def test_mutation_changes_one_edge_and_crossover_mixes_parents(sp):
    rng = np.random.default_rng(0)
    for a, b in zip(sp.sample(rng, 100), sp.sample(rng, 100)):
        m = sp.mutate(a, rng)
        assert sum(x != y for x, y in zip(a.ops, m.ops)) == 1
        c = sp.crossover(a, b, rng)
        assert all(x in (y, z) for x, y, z in zip(c.ops, a.ops, b.ops))


def test_params_match_the_published_range(sp):
    # NAS-Bench-201's CIFAR-10 networks range up to 1.53 M parameters (all nor_conv_3x3)
    assert sp.params(sp.validate([3] * 6)) == pytest.approx(1.5315, abs=1e-3)
    assert sp.flops(sp.validate([3] * 6)) > sp.flops(sp.validate([2] * 6)) > sp.flops(sp.validate([1] * 6))


def test_operators_keys_are_distinct_per_stage(sp):
    ops = sp.operators(sp.validate([3] * 6))
    assert ops[0].type == "nb201_stem" and ops[-1].type == "nb201_classifier"
    assert sum(op.type == "nb201_resblock" for op in ops) == 2
    assert sum(op.type == "nb201_nor_conv_3x3" for op in ops) == 6 * 15
    assert len({op.key for op in sp.all_operators()}) == len(sp.all_operators())


def test_bad_strings_name_the_problem(sp):
    with pytest.raises(InvalidArchError, match="unknown nasbench201 op 'conv_5x5'"):
        sp.validate("|conv_5x5~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    with pytest.raises(InvalidArchError, match="edge 2 op is 9"):
        sp.validate([1, 1, 9, 1, 1, 1])


def test_effective_drops_exactly_the_edges_that_cannot_reach_the_output(sp):
    # node 2 feeds nothing (2->3 is none), so both edges into it are dead; 1->3 and 0->3 stay
    arch = sp.validate("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    assert sp.effective(arch).arch_str == "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    # every edge on some input-to-output path is kept
    full = sp.validate("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+"
                       "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    assert sp.effective(full) == full
    # brute force over random archs: an edge is live iff a chain of non-none edges leads from it to node 3
    rng = np.random.default_rng(0)
    for a in sp.sample(rng, 300):
        eff = sp.effective(a)
        for i, (to, _) in enumerate(EDGES):
            reaches = to == 3 or any(a.ops[j] != 0 and f == to and (t == 3 or any(
                a.ops[k] != 0 and ff == t and tt == 3 for k, (tt, ff) in enumerate(EDGES)))
                for j, (t, f) in enumerate(EDGES))
            assert eff.ops[i] == (a.ops[i] if reaches else 0)
        assert sp.effective(eff) == eff


def test_live_also_drops_ops_fed_only_by_an_unreached_node(sp):
    # node 1 gets nothing from the input (0->1 is none), so 1->2 and 1->3 carry only zeros
    arch = sp.validate("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    assert sp.live(arch).arch_str == "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    # effective keeps them (a compiled graph runs them), live drops them
    assert sp.effective(arch) == arch
    rng = np.random.default_rng(1)
    for a in sp.sample(rng, 300):
        live = sp.live(a)
        assert sp.live(live) == live and sp.is_degenerate(live) == sp.is_degenerate(a)
        # an edge is live iff it lies on some input-to-output path of non-none edges
        on_path = {e for path in PATHS if all(a.ops[i] for i in path) for e in path}
        assert all(live.ops[i] == (a.ops[i] if i in on_path else 0) for i in range(len(EDGES)))


def test_descriptors_count_the_live_cell(sp):
    full = sp.validate("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                       "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    residual = sp.validate("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    # columns: skip, 1x1, 3x3, pool counts; most convs on one path; paths; direct input-output skip
    d = sp.descriptors([full, residual])
    assert d.tolist() == [[0, 0, 6, 0, 3, 4, 0], [1, 1, 1, 0, 2, 2, 1]]
    # the dead 0->2, 1->2 ops of `residual` count for nothing
    assert sp.surrogate_encoding([residual]).tolist() == sp.encode([sp.live(residual)]).tolist()
