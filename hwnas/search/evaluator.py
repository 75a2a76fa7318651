"""The budgeted evaluator every search algorithm goes through: it evaluates each arch once, counts expensive
evaluations against the budget, reports each record as it happens, and resumes from earlier records."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, KeysView, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.errors import SearchError
from hwnas.objective import Constraint, Objective, minimization_matrix
from hwnas.search.pareto import Normalization, hypervolume, pareto_mask
from hwnas.space import Arch, SearchSpace

__all__ = ["EvaluationRecord", "Evaluator", "BudgetExhausted"]


class BudgetExhausted(SearchError):
    """Raised when an algorithm asks for an expensive evaluation after the budget is spent."""


@dataclass
class EvaluationRecord:
    """One arch evaluated with every objective and constraint (values in natural units)."""

    arch: Arch
    values: dict[str, float]
    index: int  # 1-based order among this search's expensive evaluations
    time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.arch.key

    def to_dict(self) -> dict[str, Any]:
        return {"eval": self.index, "key": self.arch.key, "arch": self.arch.to_dict(), "values": self.values,
                "time_s": round(self.time_s, 4), **({"extra": self.extra} if self.extra else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: SearchSpace) -> EvaluationRecord:
        return cls(space.validate(data["arch"]), {k: float(v) for k, v in data["values"].items()},
                   int(data.get("eval", 0)), float(data.get("time_s", 0.0)), dict(data.get("extra") or {}))


class Evaluator:
    """Evaluates archs on the objectives (and the objectives of constraints), each distinct arch once.

    `budget` limits the number of distinct archs this search evaluates (each costs one expensive evaluation
    when any objective is expensive). `resume` records are reused instead of re-evaluated, but still count as
    spent when the search asks for them again, so a seeded search resumed from its log retraces its steps and
    then goes on. `on_record(record)` is called for each newly evaluated arch; `chunk` archs are evaluated
    together (1: each record is reported the moment it is known). `admissible(arch)`, where given, rules
    archs out of the problem (say, the archs a benchmark table does not hold): algorithms never propose
    them, and asking to evaluate one is an error.
    """

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], constraints: Sequence[Constraint] = (),
                 budget: int | None = None, resume: Iterable[EvaluationRecord] = (),
                 on_record: Callable[[EvaluationRecord], None] | None = None, chunk: int = 1,
                 normalization: Normalization | None = None, admissible: Callable[[Arch], bool] | None = None,
                 pool: Any = None):
        if not objectives:
            raise SearchError("a search needs at least one objective")
        names = [o.name for o in objectives]
        if len(set(names)) != len(names):
            raise SearchError(f"objective names must be distinct, got {names}")
        self.space = space
        self.objectives = list(objectives)
        self.constraints = list(constraints)
        extra = {c.objective.name: c.objective for c in self.constraints if c.objective.name not in names}
        self._all = self.objectives + list(extra.values())
        self.budget = budget
        self.on_record = on_record
        self.chunk = max(1, int(chunk))
        self.normalization = normalization
        self.admissible = admissible
        self.pool = pool
        self._cache: dict[str, EvaluationRecord] = {r.key: r for r in resume}
        self.records: list[EvaluationRecord] = []
        self._seen: dict[str, EvaluationRecord] = {}
        self.hv_history: list[tuple[int, float]] = []
        self._front_F = np.zeros((0, len(self.objectives)))
        self.n_computed = 0  # archs evaluated in this process (not taken from `resume`)
        self.n_reused = 0  # records another search measured, taken by `reuse` without spending the budget
        self.notes: list[dict[str, Any]] = []  # an algorithm's per-batch diagnostics (`note`)
        self.on_note: Callable[[dict[str, Any]], None] | None = None

    @property
    def quantities(self) -> list[Objective]:
        """Everything computed per arch: the objectives, then what only constraints refer to."""
        return list(self._all)

    # --------------------------------------------------------------- budget
    @property
    def expensive(self) -> bool:
        return any(o.expensive for o in self._all)

    @property
    def spent(self) -> int:
        return len(self.records) - self.n_reused

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.spent) if self.budget is not None else 1 << 62

    def is_evaluated(self, arch: Arch) -> bool:
        return arch.key in self._seen

    def admits(self, arch: Arch) -> bool:
        """Whether `arch` belongs to the problem (always, unless the evaluator was given `admissible`)."""
        return self.admissible is None or bool(self.admissible(arch))

    @property
    def seen_keys(self) -> KeysView[str]:
        """The keys of the archs evaluated so far: a live, read-only view (it grows as the search evaluates)."""
        return self._seen.keys()

    # ------------------------------------------------------------ evaluation
    def evaluate(self, archs: Sequence[Arch]) -> list[EvaluationRecord]:
        """Records for `archs` (in order), evaluating those not yet evaluated. Raises BudgetExhausted if the
        new ones exceed the remaining budget: callers trim their batches to `remaining`."""
        archs = [self.space.validate(a) for a in archs]
        ruled_out = [a for a in archs if not self.admits(a)]
        if ruled_out:
            raise SearchError(f"arch {ruled_out[0].key} is not admissible in this problem; propose only archs "
                              "for which evaluator.admits(arch) holds")
        new: list[Arch] = []
        new_keys: set[str] = set()
        for a in archs:
            if a.key not in self._seen and a.key not in new_keys:
                new.append(a)
                new_keys.add(a.key)
        if len(new) > self.remaining:
            raise BudgetExhausted(f"{len(new)} new evaluations asked for, {self.remaining} left in the budget")
        pending: list[Arch] = []
        for a in new:
            if a.key in self._cache:
                self._accept(self._cache[a.key], computed=False)
            else:
                pending.append(a)
                if len(pending) >= self.chunk and self.pool is None:
                    self._compute(pending)
                    pending = []
        if pending:
            self._compute(pending)
        return [self._seen[a.key] for a in archs]

    def reuse(self, records: Iterable[EvaluationRecord]) -> int:
        """Take records another search measured (say, top-1 of the same supernet on the same data, searched for
        another device) as evaluated, without spending the budget: their archs are not evaluated again, the
        predictor-accelerated loop learns from them, and they count in the front. Each record holds a value for
        every expensive quantity of this evaluator; the cheap ones (predicted latency on this search's devices)
        are computed here. Reused records get index 0. Call before the search evaluates anything. Archs this
        search evaluated itself (its `resume` records) keep their own record. Returns how many were taken."""
        if self.spent:
            raise SearchError("reuse records before the search evaluates any arch")
        expensive = [o.name for o in self._all if o.expensive]
        take: dict[str, EvaluationRecord] = {}
        for rec in records:
            if rec.key in self._seen or rec.key in self._cache or rec.key in take:
                continue
            missing = [n for n in expensive if n not in rec.values]
            if missing:
                raise SearchError(f"the reused record of arch {rec.key} has no {missing[0]}; reuse only runs that "
                                  f"measured {', '.join(expensive)}")
            take[rec.key] = rec
        archs = [r.arch for r in take.values()]
        cheap = {o.name: o.evaluate(archs) for o in self._all if not o.expensive} if archs else {}
        for i, rec in enumerate(take.values()):
            values = {n: float(rec.values[n]) for n in expensive} | {n: float(v[i]) for n, v in cheap.items()}
            self._accept(EvaluationRecord(rec.arch, values, 0, rec.time_s, dict(rec.extra)), computed=False,
                         reused=True)
        return len(take)

    def accept(self, record: EvaluationRecord) -> None:
        """Count `record` (say, of an earlier run of this search that a resumed one did not retrace: it was paid
        for) as evaluated by this search, against the budget, without evaluating its arch again."""
        self._accept(record, computed=False)

    def note(self, entry: dict[str, Any]) -> None:
        """Keep an algorithm's diagnostics of one batch (JSON-able; the accelerated loop's have a "round") and
        pass it to `on_note` (`run_search` appends it to the run folder's diagnostics.jsonl)."""
        self.notes.append(entry)
        if self.on_note is not None:
            self.on_note(entry)

    def _compute(self, archs: list[Arch]) -> None:
        if self.pool is not None:
            self._compute_pooled(archs)
            return
        start = time.perf_counter()
        values = {o.name: o.evaluate(archs) for o in self._all}
        took = (time.perf_counter() - start) / len(archs)
        for i, a in enumerate(archs):
            rec = EvaluationRecord(a, {n: float(v[i]) for n, v in values.items()}, 0, took)
            self._accept(rec, computed=True)

    def _compute_pooled(self, archs: list[Arch]) -> None:
        """The expensive quantities on the pool's workers (results reported as they come), the cheap ones here;
        the batch accepted in proposal order once complete."""
        cheap = {o.name: o.evaluate(archs) for o in self._all if not o.expensive}
        base = self.spent
        done: dict[int, EvaluationRecord] = {}
        for i, values, took, where in self.pool.map_unordered(archs):
            merged = {o.name: float(values[o.name]) if o.name in values else float(cheap[o.name][i])
                      for o in self._all}
            rec = EvaluationRecord(archs[i], merged, base + 1 + i, took, {"worker": where} if where else {})
            done[i] = rec
            if self.on_record is not None:
                self.on_record(rec)
        for i in range(len(archs)):
            self._accept(done[i], computed=True, notify=False)

    def _accept(self, rec: EvaluationRecord, computed: bool, reused: bool = False, notify: bool = True) -> None:
        rec.index = 0 if reused else self.spent + 1
        self.records.append(rec)
        self.n_reused += reused
        self._seen[rec.key] = rec
        if computed:
            self.n_computed += 1
            if notify and self.on_record is not None:
                self.on_record(rec)
        if self.normalization is not None:
            if self.feasible([rec])[0]:
                pts = np.vstack([self._front_F, self.F([rec])])
                self._front_F = pts[pareto_mask(pts)]
            self.hv_history.append((rec.index, hypervolume(self._front_F, self.normalization)))

    # ------------------------------------------------------------- matrices
    def F(self, records: Sequence[EvaluationRecord]) -> np.ndarray:
        """(n, m) objective matrix to minimise."""
        vals = {o.name: np.array([r.values[o.name] for r in records]) for o in self.objectives}
        return minimization_matrix(self.objectives, vals).reshape(len(records), len(self.objectives))

    def G(self, records: Sequence[EvaluationRecord]) -> np.ndarray:
        """(n, k) constraint violations (0 where satisfied)."""
        if not self.constraints:
            return np.zeros((len(records), 0))
        cols = [c.violation(np.array([r.values[c.name] for r in records])) for c in self.constraints]
        return np.stack(cols, axis=1)

    def feasible(self, records: Sequence[EvaluationRecord]) -> np.ndarray:
        return np.all(self.G(records) <= 0, axis=1) if records else np.zeros(0, dtype=bool)

    def front(self) -> list[EvaluationRecord]:
        """The non-dominated feasible records so far (all feasible records of a single objective's best)."""
        recs = [r for r, ok in zip(self.records, self.feasible(self.records), strict=False) if ok]
        if not recs:
            return []
        mask = pareto_mask(self.F(recs))
        return [r for r, m in zip(recs, mask, strict=False) if m]

    def hypervolume(self) -> float:
        if self.normalization is None:
            raise SearchError("the evaluator has no normalisation; pass one to compute hypervolume")
        front = self.front()
        return hypervolume(self.F(front), self.normalization) if front else 0.0
