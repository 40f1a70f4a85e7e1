"""Scenario replay for planners: replay a crisis on the live engine's own code.

A scenario (``data/scenarios/*.yaml``, format in ``data/scenarios/README.md``) gives the map,
the hospitals, the fleet, the calls (listed, or generated from a seeded model) and a timeline
of closures, slowdowns, field reports, hospital status changes and capacity surges. The replay
is a discrete-event simulation on a simulated clock that drives the engine's
:class:`~engine.traffic.TrafficOverlay`, :class:`~engine.hospitals.HospitalBoard` and
:class:`~engine.dispatch.Dispatcher` with ``at=`` simulated times, then measures response and
transport times, hospital loads, saturation levels, diversions and the extra travel caused by
closures.

Modules, in pipeline order (each imports only those before it):

- ``scenario``: the file format, loading and validation (no map needed);
- ``generator``: the calls, listed or drawn from the seeded Poisson model;
- ``world``: the map (cached per process), hospitals, crews and traffic changes of a run,
  checked against the map;
- ``metrics``: response times, hospital loads, levels, diversions from a run's records;
- ``results``: the record of every call and the JSON-ready result of a run;
- ``sim``: the discrete-event loop (:class:`~engine.replay.sim.Replay`, ``simulate``);
- ``runner``: one run or a comparison, serially or on Dask;
- ``report``: metrics.json / CSVs / report.html; ``cli``: ``gyrophare replay``.

Typical use::

    from engine.replay import run, compare
    result = run("data/scenarios/monaco-surge.yaml", policy="nearest", seed=1)
    result.metrics["response_s"]["p90"]
    cmp = compare("data/scenarios/monaco-surge.yaml", ["nearest", "saturation_aware"],
                  seeds=4, workers=2)          # Dask LocalCluster, same results as serial
    cmp.to_dict()                              # JSON-ready
"""

from engine.replay.runner import Comparison, Result, compare, run
from engine.replay.scenario import (
    Scenario,
    ScenarioError,
    Variant,
    load_scenario,
    parse_variant,
)

__all__ = ["Comparison", "Result", "Scenario", "ScenarioError", "Variant", "compare",
           "load_scenario", "parse_variant", "run"]
