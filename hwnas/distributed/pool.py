"""Parallel evaluation of a search's expensive objectives (extract, recalibrate batch norms, evaluate top-1).

An `EvaluationPool` takes a batch of archs and yields each one's values as soon as it is known, in any order;
the `Evaluator` writes each to the run folder as it arrives and accepts the batch in proposal order, so the
search's decisions (and its front, for a fixed seed) do not depend on the number of workers or on which one
finished first.

- `InProcessPool`: evaluates one arch after the other here (the default, what a search does without Ray).
- `RayEvaluationPool`: one Ray actor per worker; each receives the objectives (supernet and data) once, through
  Ray's object store, and keeps them for the whole search. Each worker holds one arch at a time; a worker that
  dies (its process killed, its node lost) is replaced and its arch given to another worker, so no evaluation
  is lost, and none is repeated once its result came back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from hwnas.errors import ClusterError

__all__ = ["EvaluationPool", "InProcessPool", "RayEvaluationPool", "evaluate_one"]

# (index in the batch, {objective name: value}, seconds, worker description)
Result = tuple[int, dict[str, float], float, str]


def evaluate_one(objectives: Sequence[Any], arch: Any) -> tuple[dict[str, float], float]:
    """Every objective of `objectives` on one arch, and the seconds it took."""
    start = time.perf_counter()
    values = {o.name: float(o.evaluate([arch])[0]) for o in objectives}
    return values, time.perf_counter() - start


class EvaluationPool:
    """Evaluates archs on a fixed set of (expensive) objectives: `start(objectives)` once, then
    `map_unordered(archs)` per batch, `close()` at the end. Also a context manager."""

    workers: int = 1

    def start(self, objectives: Sequence[Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def map_unordered(self, archs: Sequence[Any]) -> Iterator[Result]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the workers."""

    def describe(self) -> dict[str, Any]:
        return {"executor": "in-process", "workers": self.workers}

    def __enter__(self) -> EvaluationPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessPool(EvaluationPool):
    """One arch after the other, in this process."""

    def __init__(self) -> None:
        self.objectives: list[Any] = []

    def start(self, objectives: Sequence[Any]) -> None:
        self.objectives = list(objectives)

    def map_unordered(self, archs: Sequence[Any]) -> Iterator[Result]:
        for i, arch in enumerate(archs):
            values, took = evaluate_one(self.objectives, arch)
            yield i, values, took, "in-process"


class _Worker:
    """The body of one Ray evaluation worker: holds the objectives (deserialised once) and evaluates archs."""

    def __init__(self, objectives: Sequence[Any], threads: int):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.objectives = list(objectives)
        self.where = f"pid {os.getpid()}"

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, arch: Any) -> tuple[dict[str, float], float, str]:
        values, took = evaluate_one(self.objectives, arch)
        return values, took, self.where


class RayEvaluationPool(EvaluationPool):
    """`workers` Ray actors of `cpus_per_worker` CPUs each (torch uses that many threads in each). A worker lost
    mid-evaluation is replaced and its arch evaluated again elsewhere, up to `max_attempts` times per arch."""

    def __init__(self, ray: Any, workers: int, cpus_per_worker: float = 1.0, max_attempts: int = 3,
                 start_timeout_s: float = 300.0):
        if workers < 1:
            raise ClusterError(f"a pool needs at least 1 worker; got {workers}")
        self.ray = ray
        self.workers = int(workers)
        self.cpus = float(cpus_per_worker)
        self.max_attempts = int(max_attempts)
        self.start_timeout_s = start_timeout_s
        self._actors: list[Any] = []
        self._objectives_ref: Any = None
        self._cls: Any = None
        self.replaced = 0  # workers lost and replaced during this search
        self.retried = 0  # archs given to another worker after theirs was lost

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray", "workers": self.workers, "cpus_per_worker": self.cpus}

    def start(self, objectives: Sequence[Any]) -> None:
        ray = self.ray
        self._objectives_ref = ray.put(list(objectives))
        self._cls = ray.remote(num_cpus=self.cpus, max_restarts=0)(_Worker)
        self._actors = [self._new_actor() for _ in range(self.workers)]
        # wait until every worker has loaded the objectives, so that a missing resource is a clear error
        ready, pending = ray.wait([a.pid.remote() for a in self._actors], num_returns=len(self._actors),
                                  timeout=self.start_timeout_s)
        if pending:
            raise ClusterError(f"{len(pending)} of {self.workers} evaluation workers did not start within "
                               f"{self.start_timeout_s:.0f} s: the cluster has fewer than "
                               f"{self.workers * self.cpus:g} free CPUs; pass fewer --workers")
        ray.get(ready)

    def _new_actor(self) -> Any:
        return self._cls.remote(self._objectives_ref, max(1, int(self.cpus)))

    def worker_pids(self) -> list[int]:
        return [int(p) for p in self.ray.get([a.pid.remote() for a in self._actors])]

    def map_unordered(self, archs: Sequence[Any]) -> Iterator[Result]:
        ray = self.ray
        queue = list(range(len(archs)))
        attempts = [0] * len(archs)
        running: dict[Any, tuple[int, int]] = {}  # object ref -> (arch index, actor slot)
        idle = list(range(len(self._actors)))

        def submit() -> None:
            while queue and idle:
                i, slot = queue.pop(0), idle.pop(0)
                attempts[i] += 1
                running[self._actors[slot].evaluate.remote(archs[i])] = (i, slot)

        submit()
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            ref = done[0]
            i, slot = running.pop(ref)
            try:
                values, took, where = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError) as exc:
                if attempts[i] >= self.max_attempts:
                    raise ClusterError(f"arch {getattr(archs[i], 'key', i)} lost its worker {attempts[i]} times "
                                       f"({type(exc).__name__}); check the cluster's nodes (`ray status`)") from None
                self._actors[slot] = self._new_actor()  # Ray places it on any node with a free CPU
                self.replaced += 1
                self.retried += 1
                queue.insert(0, i)
            except ray.exceptions.RayTaskError as exc:  # the evaluation itself raised: the same error as in-process
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, Exception) else exc) from None
            else:
                yield i, values, took, where
            idle.append(slot)
            submit()

    def close(self) -> None:
        for actor in self._actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - an actor already gone needs no kill
                pass
        self._actors = []
