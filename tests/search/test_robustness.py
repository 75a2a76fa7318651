"""The accelerated loop's robustness: it notices a surrogate that ranks badly and explores instead, models
measurement noise, refines the front between its points, and records all of it in the run folder."""

import json

import numpy as np
import pytest

from hwnas.objective import FunctionObjective
from hwnas.search import Evaluator, accelerated_search, pareto_mask
from hwnas.search.accelerated import _select_refine
from hwnas.search.diagnostics import BatchDiagnostics, SurrogateMonitor
from hwnas.search.session import run_search
from hwnas.search.surrogate import default_surrogate


class _Rec:
    def __init__(self, key, values):
        self.key, self.values = key, values


def _monitor_after(pred, measured, std=1.0):
    monitor = SurrogateMonitor(["y"], window=30, min_pairs=10)
    keys = [str(i) for i in range(len(pred))]
    monitor.propose(keys, {"y": np.asarray(pred, float)}, {"y": np.full(len(pred), std)})
    monitor.observe([_Rec(k, {"y": float(v)}) for k, v in zip(keys, measured)])
    return monitor


def test_monitor_trusts_a_surrogate_that_ranks_well_and_explores_when_it_does_not():
    y = np.arange(30, dtype=float)
    good = _monitor_after(y + 0.1, y)
    assert good.rank_corr("y") == pytest.approx(1.0) and good.explore_share() == 0.0
    assert good.coverage("y") == 1.0
    wrong = _monitor_after(-y, y)  # ranks exactly backwards
    assert wrong.trust_level() == 0.0 and wrong.explore_share() == pytest.approx(wrong.max_explore)
    few = _monitor_after(-y[:5], y[:5])  # five pairs are too few to judge
    assert few.trust_level() is None and few.explore_share() == 0.0


def test_monitor_adds_exploration_when_intervals_are_overconfident():
    rng = np.random.default_rng(0)
    y = np.arange(30, dtype=float)
    pred = y + rng.normal(0, 8, 30)  # ranks moderately, but errors far beyond the claimed std
    calibrated = _monitor_after(pred, y, std=8.0)
    overconfident = _monitor_after(pred, y, std=0.5)
    assert overconfident.coverage("y") < 0.5 <= calibrated.coverage("y")
    assert overconfident.explore_share() > calibrated.explore_share()


def test_batch_diagnostics_round_trip():
    d = BatchDiagnostics(3, 35, {"a": 0.51234567, "b": None}, {"a": 0.8, "b": None}, 0.5, {"surrogate": 5},
                         {"a": 0.1})
    again = BatchDiagnostics.from_dict(json.loads(json.dumps(d.to_dict())))
    assert again.rank_corr == {"a": 0.5123, "b": None} and again.picks == {"surrogate": 5}


class ShuffledSurrogate:
    """The default surrogate fitted on deliberately wrong targets (shuffled among the archs)."""

    def __init__(self, space, objective, seed):
        self.model = default_surrogate(space, objective, seed)
        self.seed = seed

    @property
    def has_std(self):
        return True

    def fit(self, archs, y):
        self.model.fit(archs, np.random.default_rng(self.seed).permutation(np.asarray(y)))
        return self

    def __getattr__(self, name):
        return getattr(self.__dict__["model"], name)


def _counted(objectives):
    calls = []

    def wrap(o):
        def f(archs):
            if o is objectives[0]:
                calls.extend(a.key for a in archs)
            return o.evaluate(archs)
        return FunctionObjective(o.name, f, o.direction, o.expensive)

    return [wrap(o) for o in objectives], calls


def test_loop_switches_to_exploration_when_the_surrogate_is_wrong(nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    wrapped, calls = _counted(objectives)
    ev = Evaluator(nb201_table.space, wrapped, budget=80, normalization=norm, admissible=nb201_table.__contains__)
    accelerated_search(ev, seed=2, surrogate=ShuffledSurrogate)
    late = [d for d in ev.notes if d["evals"] > 45]
    assert late and all(d["picks"].get("explore", 0) >= 0.4 * sum(d["picks"].values()) for d in late)
    assert all(d["trust"] is not None and d["trust"] < 0.4 for d in late)
    assert ev.spent == 80 and len(calls) == len(set(calls)) == 80  # never an arch twice
    honest = Evaluator(nb201_table.space, objectives, budget=80, normalization=norm,
                       admissible=nb201_table.__contains__)
    accelerated_search(honest, seed=2)
    explored = sum(d["picks"].get("explore", 0) for d in honest.notes)
    assert explored < sum(d["picks"].get("explore", 0) for d in ev.notes) / 2
    assert np.median([d["rank_corr"]["latency_ms[raspi4]"] for d in honest.notes[-5:]]) > 0.6


def test_refining_never_repeats_an_arch_and_spends_the_budget(nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    wrapped, calls = _counted(objectives)
    ev = Evaluator(nb201_table.space, wrapped, budget=50, normalization=norm, admissible=nb201_table.__contains__)
    accelerated_search(ev, seed=4, n_init=12, refine_after=0, refine_share=0.6)
    assert ev.spent == 50 and len(calls) == len(set(calls)) == 50
    assert sum(d["picks"].get("refine", 0) for d in ev.notes) >= 10


class ExactModel:
    """The table's own values, with a claimed uncertainty: a surrogate that knows the answer."""

    has_std = True

    def __init__(self, table, column, std):
        self.table, self.column, self.std = table, column, std

    def predict(self, archs, return_std=False, noise=False):
        mean = self.table.lookup(archs, self.column)
        return (mean, np.full(len(archs), self.std)) if return_std else mean


def test_refine_picks_land_between_front_points_or_past_its_ends(nb201_table, nb201_problem):
    objectives, norm, _ = nb201_problem
    space = nb201_table.space
    ev = Evaluator(space, objectives, budget=100, normalization=norm, admissible=nb201_table.__contains__)
    ev.evaluate([a for a in space.sample(np.random.default_rng(7), 200) if a in nb201_table][:40])
    models = {"top1": ExactModel(nb201_table, "cifar10_test_acc", 0.0),
              "latency_ms[raspi4]": ExactModel(nb201_table, "cifar10_raspi4_latency_ms", 0.0)}
    picks = _select_refine(ev, models, np.random.default_rng(0), 5, set())
    assert len(picks) == 5 and not any(ev.is_evaluated(a) for a in picks)
    front = ev.F(ev.front())
    for a in picks:
        point = np.array([-nb201_table.lookup([a], "cifar10_test_acc")[0],
                          nb201_table.lookup([a], "cifar10_raspi4_latency_ms")[0]])
        assert pareto_mask(np.vstack([front, point]))[-1]  # not dominated: it fills a gap of the front
    near = {space.effective(r.arch).key for r in ev.front()}
    parents = {space.effective(space.mutate(r.arch, np.random.default_rng(i))).key
               for i in range(200) for r in ev.front()}
    assert near and any(space.effective(a).key in parents for a in picks)


def test_latency_surrogate_carries_the_measurement_noise(nb201_table):
    rng = np.random.default_rng(1)
    archs = [nb201_table.archs[i] for i in rng.choice(len(nb201_table), 60, replace=False)]
    clean = nb201_table.lookup(archs, "cifar10_raspi4_latency_ms")
    noisy = clean * rng.lognormal(0.0, 0.3, len(clean))
    m_clean = default_surrogate(nb201_table.space, "lat", 0).fit(archs, clean)
    m_noisy = default_surrogate(nb201_table.space, "lat", 0).fit(archs, noisy)
    assert np.median(m_noisy.noise_std_at(noisy)) > 1.5 * np.median(m_clean.noise_std_at(clean))
    test = nb201_table.archs[:200]
    _, spread = m_noisy.predict(test, return_std=True)
    _, total = m_noisy.predict(test, return_std=True, noise=True)
    assert np.all(total >= spread - 1e-9) and np.median(total) > 1.2 * np.median(spread)
    told = default_surrogate(nb201_table.space, "lat", 0).fit(archs, clean, noise_std=0.5 * clean)
    assert np.median(told.noise_std_at(clean)) > 2 * np.median(m_clean.noise_std_at(clean))


def test_diagnostics_are_written_to_the_run_folder_and_resume(nb201_table, nb201_problem, tmp_path):
    objectives, norm, _ = nb201_problem
    space = nb201_table.space
    out = tmp_path / "run"
    # a first batch of 10 (6 spread archs and the space's 4 minimal ones), then rounds of 5 up to the budget
    kwargs = dict(normalization=norm, seed=1, options={"n_init": 6, "batch": 5})
    run_search(space, objectives, out, budget=40, **kwargs)
    first = [json.loads(line) for line in (out / "diagnostics.jsonl").read_text().splitlines()]
    assert [d["round"] for d in first] == list(range(1, 7)) and first[-1]["evals"] == 40
    assert all(set(d["rank_corr"]) == {"top1", "latency_ms[raspi4]"} for d in first)
    # the measured latency's surrogate says which model it chose at each fit; top-1's does not choose
    assert all(set(d["models"]) == {"latency_ms[raspi4]"} for d in first)
    assert {d["models"]["latency_ms[raspi4]"] for d in first} <= {"ensemble", "lookup table"}
    outcome = run_search(space, objectives, out, budget=55, **kwargs)
    both = [json.loads(line) for line in (out / "diagnostics.jsonl").read_text().splitlines()]
    assert [d["round"] for d in both] == list(range(1, 10)) and both[:6] == first  # retraced rounds not repeated
    assert [d["evals"] for d in both[6:]] == [45, 50, 55] and outcome.evaluator.spent == 55
    report = (out / "report.html").read_text()
    assert "Surrogate diagnostics" in report and "model latency_ms[raspi4]" in report


def test_damaged_diagnostics_lines_cost_only_themselves(nb201_table, nb201_problem, tmp_path):
    objectives, norm, _ = nb201_problem
    out = tmp_path / "run"
    kwargs = dict(normalization=norm, seed=1, options={"n_init": 10, "batch": 5})
    run_search(nb201_table.space, objectives, out, budget=20, **kwargs)
    path = out / "diagnostics.jsonl"
    damaged = ['{"round": {"a": 1}}', "[1, 2]", '{"round": true}', '{"round": 7, "picks": [1], "rank_corr": "x", '
               '"evals": "<script>"}']
    path.write_text(path.read_text() + "\n".join(damaged) + "\n")
    outcome = run_search(nb201_table.space, objectives, out, budget=35, **kwargs)  # found a TypeError before
    assert outcome.evaluator.spent == 35
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    rounds = [d.get("round") for d in lines if isinstance(d, dict)]
    assert rounds.count(7) == 1  # the damaged line's round counts as written; the others are skipped on reading
    report = (out / "report.html").read_text()
    assert "Surrogate diagnostics" in report and "<script>" not in report
