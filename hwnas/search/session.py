"""One search into a run folder: check the budget can be met, resume from evaluated.jsonl, run the chosen
algorithm, and write front.json/.csv, hypervolume.json, pareto.png and report.html (also when interrupted)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import SearchError
from hwnas.objective import Constraint, Objective
from hwnas.search.algorithms import create_algorithm
from hwnas.search.evaluator import EvaluationRecord, Evaluator
from hwnas.search.feasibility import check_constraints
from hwnas.search.pareto import Normalization
from hwnas.search.report import write_report
from hwnas.search.runfolder import RunFolder
from hwnas.space import SearchSpace

__all__ = ["SearchOutcome", "default_normalization", "run_search"]


@dataclass
class SearchOutcome:
    evaluator: Evaluator
    run: RunFolder
    resumed: int  # evaluations taken from an earlier run's evaluated.jsonl
    front: list[dict[str, Any]]
    interrupted: bool = False
    reused: int = 0  # records of other searches taken without spending the budget


def default_normalization(space: SearchSpace, objectives: Sequence[Objective], seed: int = 0,
                          n_sample: int = 500) -> Normalization | None:
    """Fixed bounds per objective for the hypervolume, in minimisation space: cheap objectives from a random
    sample of the space, percentages (unit "%") over [0, 100]. None when an expensive objective has no
    known range."""
    lower, upper = [], []
    sample = space.sample(np.random.default_rng(seed), n_sample)
    for o in objectives:
        if o.unit == "%":
            lo, hi = (0.0, 100.0)
        elif not o.expensive:
            v = o.evaluate(sample)
            lo, hi = float(np.min(v)), float(np.max(v))
        else:
            return None
        a, b = sorted((o.sign * lo, o.sign * hi))
        lower.append(a)
        upper.append(b)
    return Normalization(tuple(lower), tuple(upper), tuple([1.0] * len(objectives)))


def run_search(space: SearchSpace, objectives: Sequence[Objective], out: str | Path, budget: int,
               constraints: Sequence[Constraint] = (), algorithm: str = "accelerated", seed: int = 0,
               settings: dict[str, Any] | None = None, normalization: Normalization | None = None,
               extra: Callable[[EvaluationRecord], dict[str, Any]] | None = None,
               progress: Callable[[Evaluator], None] | None = None,
               on_record: Callable[[EvaluationRecord], None] | None = None,
               options: dict[str, Any] | None = None, reuse: Sequence[EvaluationRecord] = (),
               pool: Any = None) -> SearchOutcome:
    """Search `space` for the front of `objectives` under `constraints` with at most `budget` expensive
    evaluations, into the run folder `out` (resumed if it holds the same search). `reuse`: records of other
    searches whose expensive values hold for this one (the same supernet and data), taken without spending
    the budget, their cheap values computed afresh (`Evaluator.reuse`). `pool` (an unstarted
    `hwnas.distributed.EvaluationPool`; the caller closes it) evaluates the expensive objectives of each batch in
    parallel. `algorithm` is a registered name
    (`hwnas.search.algorithms.list_algorithms()`), `options` its options. On KeyboardInterrupt the results so
    far are written and the interrupt is raised again."""
    search = create_algorithm(algorithm, **(options or {}))  # a SearchError names an unknown one or option
    if budget < 1:
        raise SearchError(f"the evaluation budget must be at least 1, got {budget}")
    check_constraints(space, constraints, seed)  # raises BudgetInfeasible naming the closest arch
    norm = normalization if normalization is not None else default_normalization(space, objectives, seed)
    run = RunFolder(out)
    full = {"space": space.config(), "objectives": [o.describe() for o in objectives],
            "constraints": [c.describe() for c in constraints], "algorithm": algorithm, "seed": seed,
            "budget": budget, **(settings or {})}
    run.start(full)
    previous = run.load_records(space)
    needed = list(dict.fromkeys([o.name for o in objectives] + [c.objective.name for c in constraints]))
    for rec in previous:  # a line stripped of a value (edited, damaged) would stop the search half-way
        missing = [name for name in needed if name not in rec.values]
        if missing:
            raise SearchError(f"{run.evaluated_path}: the line of {rec.arch.key} has no {missing[0]!r} value; "
                              "delete that line to resume")

    def record(rec: EvaluationRecord) -> None:
        run.append(rec)
        if on_record is not None:
            on_record(rec)

    evaluator = Evaluator(space, objectives, constraints, budget=budget, resume=previous, on_record=record,
                          normalization=norm, pool=pool)
    if pool is not None:
        pool.start([o for o in evaluator.quantities if o.expensive])
    evaluator.on_note = run.diagnostics_writer()
    reused = evaluator.reuse(reuse) if reuse else 0
    interrupted = False
    try:
        search(evaluator, seed=seed, progress=progress)
    except KeyboardInterrupt:
        interrupted = True
    # archs of an earlier run that this run did not retrace still count: they were paid for
    for rec in previous:
        if not evaluator.is_evaluated(rec.arch):
            evaluator.accept(rec)
    extras = {r.key: extra(r) for r in evaluator.front()} if extra is not None else None
    rows = run.write_results(evaluator, extras)
    write_report(run)
    if interrupted:
        raise KeyboardInterrupt
    return SearchOutcome(evaluator, run, len(previous), rows, interrupted, reused)

