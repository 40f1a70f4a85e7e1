"""Plain functions to run replays: one run, or a comparison of variants and seeds, serially or
on Dask (``distributed``), with JSON-serialisable results.

The serial and the Dask paths call the same function (:func:`engine.replay.sim.simulate`) with
the same arguments, so their results are identical; on Dask each worker process loads the
graph once (from the graph cache) and keeps it for the following runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.io import ProgressFn
from engine.replay.metrics import pooled
from engine.replay.scenario import Scenario, Variant, load_scenario, parse_variant
from engine.replay.sim import Progress, Replay, simulate
from engine.replay.world import load_map


@dataclass
class Result:
    """One run: ``to_dict()`` is the JSON-ready record (metrics, trips, timelines, map data)."""

    data: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.data["metrics"]

    @property
    def variant(self) -> Variant:
        return Variant.from_dict(self.data["variant"])

    @property
    def seed(self) -> int:
        return int(self.data["seed"])

    @property
    def trips(self) -> list[dict[str, Any]]:
        return self.data["trips"]

    def to_dict(self) -> dict[str, Any]:
        return self.data


@dataclass
class Comparison:
    """Several runs: every (variant, seed), and a pooled summary per variant."""

    scenario: str
    variants: list[Variant]
    seeds: list[int]
    results: list[Result]
    targets_min: list[float]
    info: dict[str, Any] = field(default_factory=dict)

    def by_variant(self, name: str) -> list[Result]:
        return [r for r in self.results if r.variant.name == name]

    @property
    def summary(self) -> dict[str, Any]:
        return {v.name: pooled([r.data for r in self.by_variant(v.name)], self.targets_min)
                for v in self.variants}

    def to_dict(self) -> dict[str, Any]:
        return {"format": "gyrophare-replay-comparison/1", "scenario": self.scenario,
                "variants": [v.to_dict() for v in self.variants], "seeds": self.seeds,
                "targets_min": self.targets_min, "summary": self.summary, "info": self.info,
                "runs": [r.to_dict() for r in self.results]}


def run(scenario: str | Path | Mapping[str, Any] | Scenario, *,
        policy: str | Variant | None = None, seed: int | None = None,
        progress: Progress | None = None) -> Result:
    """Replay a scenario once.

    Parameters
    ----------
    scenario
        A file path, a dict (the file's content) or a loaded :class:`Scenario`.
    policy
        A variant: ``"nearest"``, ``"saturation_aware"``, ``"nearest+normal"``,
        ``"closures-off"``... over the scenario's own ``policy`` (default: it).
    seed
        Seed of the incident generator and lengths of stay (default: the scenario's).
    progress
        ``progress(calls_done, calls_total)`` while the replay runs.

    Raises
    ------
    ScenarioError
        Invalid scenario (every problem, with field paths).
    SourceError
        The map cannot be loaded (e.g. a ``place`` without network).
    """
    sc = load_scenario(scenario)
    variant = parse_variant(policy, sc.default_variant)
    return Result(simulate(sc, variant, sc.model.seed if seed is None else int(seed),
                           progress=progress))


def _task(payload: dict[str, Any], variant: dict[str, Any], seed: int) -> dict[str, Any]:
    """One run on a worker (module-level so that Dask can pickle it by reference)."""
    sc = Scenario.from_payload(payload)
    return simulate(sc, Variant.from_dict(variant), seed)


def preflight(sc: Scenario, variant: Variant | None = None) -> None:
    """Load the map and build the world once: every map-dependent error surfaces here,
    before any worker starts."""
    graph, snapper = load_map(sc)
    Replay(sc, variant or sc.default_variant, sc.model.seed, graph, snapper)


def compare(scenario: str | Path | Mapping[str, Any] | Scenario,
            variants: Sequence[str | Variant] | None = None, *, seeds: int = 1,
            seed: int | None = None, workers: int | None = None, scheduler: str | None = None,
            client: Any = None, progress: ProgressFn | None = None) -> Comparison:
    """Replay every variant with ``seeds`` consecutive seeds (from ``seed``, default the
    scenario's), serially, or on Dask with ``workers`` local processes, an existing
    ``scheduler`` address, or a ``distributed.Client``. Results come back in the order
    (variant, seed), identical whichever path ran them."""
    sc = load_scenario(scenario)
    base = sc.default_variant
    vs = [parse_variant(v, base) for v in (variants or [base])]
    names = [v.name for v in vs]
    if len(set(names)) != len(names):
        raise ValueError(f"variants repeat: {names}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    seed0 = sc.model.seed if seed is None else int(seed)
    seed_list = [seed0 + k for k in range(seeds)]
    tasks = [(v, s) for v in vs for s in seed_list]
    targets = list(sc.model.metrics.targets_min)
    if workers is None and scheduler is None and client is None:
        results = []
        for k, (v, s) in enumerate(tasks):
            stage = f"run {k + 1}/{len(tasks)} {v.name} seed {s}"

            def step(done: int, total: int, stage: str = stage) -> None:
                if progress is not None:
                    progress(stage, done, total)

            results.append(Result(simulate(sc, v, s, progress=step)))
        return Comparison(sc.name, vs, seed_list, results, targets,
                          info={"executor": "serial"})
    preflight(sc, vs[0])
    data = _run_dask(sc, tasks, workers=workers, scheduler=scheduler, client=client,
                     progress=progress)
    return Comparison(sc.name, vs, seed_list, [Result(d) for d in data], targets,
                      info={"executor": "dask", "workers": workers, "scheduler": scheduler})


def _run_dask(sc: Scenario, tasks: list[tuple[Variant, int]], *, workers: int | None,
              scheduler: str | None, client: Any, progress: ProgressFn | None
              ) -> list[dict[str, Any]]:
    from distributed import Client, LocalCluster, as_completed

    own_cluster = own_client = None
    try:
        if client is None:
            if scheduler is not None:
                client = own_client = Client(scheduler)
            else:
                own_cluster = LocalCluster(n_workers=int(workers or 1), threads_per_worker=1,
                                           processes=True, dashboard_address=None,
                                           silence_logs=logging.ERROR)
                client = own_client = Client(own_cluster)
        payload = sc.to_payload()
        futures = [client.submit(_task, payload, v.to_dict(), s, pure=False)
                   for v, s in tasks]
        done = 0
        if progress is not None:
            progress("runs", 0, len(futures))
        for _ in as_completed(futures):
            done += 1
            if progress is not None:
                progress("runs", done, len(futures))
        return [f.result() for f in futures]
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


__all__ = ["Comparison", "Result", "compare", "preflight", "run"]
