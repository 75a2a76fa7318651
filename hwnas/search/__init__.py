"""Multi-objective search on pymoo: the budgeted evaluator, NSGA-II, the predictor-accelerated loop (LINAS
style), random search, constrained single-objective evolution, Pareto fronts and hypervolume.

Algorithms register by name (`list_algorithms()`, `create_algorithm(name, **options)`); `run_search` in
`hwnas.search.session` runs one into a run folder; `hwnas.search.tabular.Table` makes objectives of a
published per-arch table (NAS-Bench-201) to measure algorithms against a known front.
"""

from __future__ import annotations

# importing each algorithm's module registers it
from hwnas.search.accelerated import accelerated_search
from hwnas.search.algorithms import algorithm_options, create_algorithm, list_algorithms, register_algorithm
from hwnas.search.evaluator import BudgetExhausted, EvaluationRecord, Evaluator
from hwnas.search.evolution import constrained_evolution
from hwnas.search.feasibility import BudgetInfeasible, check_constraints
from hwnas.search.nsga2 import nsga2_search, run_nsga2
from hwnas.search.pareto import Normalization, hypervolume, hypervolume_2d, nondominated_ranks, pareto_mask
from hwnas.search.random_search import random_search
from hwnas.search.sampling import sample_new, sample_spread

__all__ = [
    "BudgetExhausted",
    "BudgetInfeasible",
    "EvaluationRecord",
    "Evaluator",
    "Normalization",
    "accelerated_search",
    "algorithm_options",
    "check_constraints",
    "constrained_evolution",
    "create_algorithm",
    "hypervolume",
    "hypervolume_2d",
    "list_algorithms",
    "nondominated_ranks",
    "nsga2_search",
    "pareto_mask",
    "random_search",
    "register_algorithm",
    "run_nsga2",
    "sample_new",
    "sample_spread",
]
