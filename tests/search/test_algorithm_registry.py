"""The search algorithm registry: every registered algorithm runs through `create_algorithm` on NAS-Bench-201
(a tabular benchmark), and `run_search` picks algorithms and checks their options through it."""

import pytest

from hwnas.errors import SearchError
from hwnas.search import Evaluator, algorithm_options, create_algorithm, list_algorithms
from hwnas.search.session import run_search

# small settings, so that each algorithm gets through a few rounds of a 12-evaluation budget
BRIEF = {
    "accelerated": {"n_init": 6, "batch": 3, "inner_pop": 8, "inner_gens": 2, "n_random": 40, "n_spread": 10,
                    "n_mutants": 2},
    "nsga2": {"pop_size": 6},
    "evolution": {"population": 6},
    "random": {"batch": 4},
}


def test_the_four_algorithms_register_themselves():
    assert list_algorithms() == ["accelerated", "evolution", "nsga2", "random"]


@pytest.mark.parametrize("name", list_algorithms())
def test_each_registered_algorithm_spends_a_small_budget_on_admissible_new_archs(name, nb201_table, nb201_problem):
    objectives, norm, best = nb201_problem
    ev = Evaluator(nb201_table.space, objectives, budget=12, normalization=norm, admissible=nb201_table.__contains__)
    search = create_algorithm(name, **BRIEF.get(name, {}))
    assert search(ev, seed=5) is ev
    keys = [r.key for r in ev.records]
    assert ev.spent == 12 and len(set(keys)) == 12
    assert all(r.arch in nb201_table for r in ev.records)
    assert 0 < ev.hypervolume() <= best + 1e-9
    again = Evaluator(nb201_table.space, objectives, budget=12, normalization=norm, admissible=nb201_table.__contains__)
    create_algorithm(name, **BRIEF.get(name, {}))(again, seed=5)
    assert [r.key for r in again.records] == keys  # seeded: the same search


def test_unknown_algorithms_and_options_are_search_errors_naming_the_choices(tmp_path, nb201_table, nb201_problem):
    objectives, _, _ = nb201_problem
    with pytest.raises(SearchError, match="unknown search algorithm 'tabu'; choose one of: accelerated, evolution"):
        create_algorithm("tabu")
    with pytest.raises(SearchError, match="bad options for search algorithm 'random'.*'pop_size'"):
        create_algorithm("random", pop_size=10)
    with pytest.raises(SearchError, match="seed is given when the algorithm runs"):
        create_algorithm("nsga2", seed=3)
    with pytest.raises(SearchError, match="unknown search algorithm"):
        run_search(nb201_table.space, objectives, tmp_path / "run", budget=5, algorithm="tabu")
    assert not (tmp_path / "run").exists()  # refused before the run folder is made
    assert create_algorithm("random", batch=None).keywords == {}  # None keeps the default


def test_algorithm_options_say_which_algorithms_take_a_prior():
    assert [name for name in list_algorithms() if "prior" in algorithm_options(name)] == ["accelerated", "nsga2"]
    assert "evaluator" not in algorithm_options("random") and "batch" in algorithm_options("random")
