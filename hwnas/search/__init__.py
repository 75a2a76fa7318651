"""Multi-objective search on pymoo: the budgeted evaluator, NSGA-II, the predictor-accelerated loop (LINAS
style), random search, constrained single-objective evolution, Pareto fronts and hypervolume."""

from __future__ import annotations

from hwnas.search.accelerated import accelerated_search
from hwnas.search.evaluator import BudgetExhausted, EvaluationRecord, Evaluator
from hwnas.search.nsga2 import nsga2_search, run_nsga2
from hwnas.search.pareto import Normalization, hypervolume, hypervolume_2d, nondominated_ranks, pareto_mask
from hwnas.search.random_search import random_search, sample_new

__all__ = [
    "BudgetExhausted",
    "EvaluationRecord",
    "Evaluator",
    "Normalization",
    "accelerated_search",
    "hypervolume",
    "hypervolume_2d",
    "nondominated_ranks",
    "nsga2_search",
    "pareto_mask",
    "random_search",
    "run_nsga2",
    "sample_new",
]
