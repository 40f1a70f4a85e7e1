"""Live-state costs: traffic overlay updates, routes under an overlay, dispatch, coverage.

Usage::

    python benchmarks/bench_live.py ../shared/data/osm/monaco_osrm-bindings.osm.pbf
    python benchmarks/bench_live.py ../shared/data/dimacs/USA-road-t.NY.gr.gz --pairs 50
    ... --out benchmarks/results/live-monaco.md

Measures (medians over repeats, same seed):

* overlay update for 1 / 100 / 1,000 / 10,000 changed edges: ``apply`` (validation, entry
  build, recompute of the touched edges) plus the new car and ambulance weight snapshots that
  the next query needs — the cost between a traffic write and routes that honour it;
* the same update given as OSRM segment speeds (1,000 OSM node pairs; OSM sources only);
* route (coordinates in, ambulance profile) under an overlay with 200 closures, against the
  free-flow route on the same pairs;
* dispatch among 30 hospitals (one multi-target search, ranking, route, signal plan);
* coverage: area reachable within 8 minutes from 5 stations.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit

from engine.io import load_graph
from engine.query import Router
from engine.traffic import Closure, SegmentSpeeds

T0 = datetime(2026, 3, 17, 8, 0, tzinfo=UTC)


def median_ms(fn, repeat: int) -> tuple[float, float]:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    arr = np.array(times) * 1000
    return float(np.median(arr)), float(np.percentile(arr, 90))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    graph = load_graph(args.source)
    g = graph
    router = Router(g)
    rng = np.random.default_rng(args.seed)
    is_osm = bool((g.point_osm_id >= 0).any())
    tg = g.turn_graph()
    lines = [f"# Live-state benchmark: {g.meta.get('name')}", "",
             f"- graph: {g.n_nodes:,} junctions, {g.n_edges:,} directed roads; routes are "
             f"searched on the turn graph ({tg.n_nodes:,} nodes, {tg.n_edges:,} turn arcs; "
             f"CCH {router.cch.n_arcs if router.cch is not None else 0:,} arcs); "
             f"{args.repeat} repeats, seed {args.seed}; a closed road re-prices the turn arcs "
             "entering it", "",
             "| task | median ms | p90 ms |", "|---|---:|---:|"]

    # ------------------------------------------------------------ overlay updates
    overlay = router.overlay
    for profile in ("car", "ambulance"):
        overlay.weights(profile, at=T0)
    for k in (1, 100, 1000, 10_000):
        if k > g.n_edges:
            continue
        batches = [rng.choice(g.n_edges, size=k, replace=False) for _ in range(args.repeat)]
        ids: list[str] = []

        def update(i: int, batches=batches, ids=ids) -> None:
            ids.extend(overlay.apply(Closure(edges=batches[i].tolist(), source="bench"),
                                     at=T0))
            overlay.weights("car", at=T0)
            overlay.weights("ambulance", at=T0)

        med, p90 = median_ms(update, args.repeat)
        lines.append(f"| overlay update, {k:,} edges closed (+ car & ambulance snapshots) | "
                     f"{med:.3f} | {p90:.3f} |")
        overlay.remove(ids, at=T0)
        router.prepare(at=T0)
        ids.clear()

        def update_cch(i: int, batches=batches, ids=ids) -> None:
            ids.extend(overlay.apply(Closure(edges=batches[i].tolist(), source="bench"),
                                     at=T0))
            router.prepare(at=T0)  # snapshots + partial CCH customization, car and ambulance

        if router.cch is not None:
            med, p90 = median_ms(update_cch, args.repeat)
            lines.append(f"| overlay update, {k:,} edges + CCH re-customization (car & "
                         f"ambulance): write to routable | {med:.3f} | {p90:.3f} |")
            overlay.remove(ids, at=T0)
            router.prepare(at=T0)

        def apply_only(i: int, batches=batches, ids=ids) -> None:
            ids.extend(overlay.apply(Closure(edges=batches[i].tolist()), at=T0))

        ids.clear()
        med, p90 = median_ms(apply_only, args.repeat)
        lines.append(f"| overlay apply only, {k:,} edges | {med:.3f} | {p90:.3f} |")
        overlay.remove(ids, at=T0)
        overlay.weights("car", at=T0)
        overlay.weights("ambulance", at=T0)

    if is_osm:
        gp = g.geom_point
        ids_ = g.point_osm_id[gp]
        edge_of = np.repeat(np.arange(g.n_edges), np.diff(g.geom_offset))
        ok = np.flatnonzero((edge_of[:-1] == edge_of[1:]) & (ids_[:-1] >= 0) & (ids_[1:] >= 0)
                            & (ids_[:-1] != ids_[1:]))
        pick = rng.choice(ok, size=min(1000, len(ok)), replace=False)
        rows = [(int(ids_[p]), int(ids_[p + 1]), 30.0) for p in pick]
        overlay._segment_index()  # built once per graph, at the first CSV
        added: list[str] = []

        def seg_update(i: int) -> None:
            added.extend(overlay.apply(SegmentSpeeds(speeds=rows, source="bench"), at=T0))
            overlay.weights("car", at=T0)
            overlay.weights("ambulance", at=T0)

        med, p90 = median_ms(seg_update, max(5, args.repeat // 3))
        lines.append(f"| overlay update, {len(rows):,} OSRM segment speeds (+ snapshots) | "
                     f"{med:.3f} | {p90:.3f} |")
        overlay.remove(added, at=T0)

    # ------------------------------------------------------------ routes under an overlay
    # DIMACS graphs carry no road classes or seconds: route them as plain cars
    profile = "ambulance" if is_osm else "car"
    car_nodes = np.unique(g.tail[np.isfinite(router.weights(profile).values)])
    pairs = car_nodes[rng.integers(0, len(car_nodes), size=(args.pairs, 2))]
    pts = [((g.lat[a] + 5e-5, g.lon[a]), (g.lat[b], g.lon[b] + 5e-5)) for a, b in pairs]

    def route(i: int) -> None:
        try:
            router.route(*pts[i % len(pts)], profile=profile, at=T0)
        except Exception:  # a point off the network counts anyway
            pass

    med0, p900 = median_ms(route, len(pts))
    closure_nodes = rng.choice(car_nodes, 200)
    overlay.apply([Closure(geometry={"type": "Point", "coordinates": [float(g.lon[v]),
                                                                      float(g.lat[v])]},
                           radius_m=30.0) for v in closure_nodes], at=T0)
    med1, p901 = median_ms(route, len(pts))
    lines.append(f"| {profile} route, free flow (coords in, full route out) | {med0:.3f} | "
                 f"{p900:.3f} |")
    lines.append(f"| {profile} route under 200 closures | {med1:.3f} | {p901:.3f} |")

    # ------------------------------------------------------------ dispatch and coverage
    try:
        from engine.dispatch import Dispatcher, Need, NoHospitalAvailable
        from engine.hospitals import BedCapacity, BedType, Hospital, HospitalBoard
    except ImportError:  # pragma: no cover - older tree
        Dispatcher = None
    if Dispatcher is not None:
        overlay.clear(at=T0)
        idx = rng.choice(car_nodes, 30, replace=False)
        hospitals = [Hospital(id=f"h{i}", name=f"benchmark site {i} (synthetic)",
                              lat=float(g.lat[v]), lon=float(g.lon[v]),
                              beds={BedType.ADULT_ICU: BedCapacity(20, int(rng.integers(0, 20))),
                                    BedType.MEDICAL_SURGICAL: BedCapacity(80, 40)},
                              capabilities=frozenset({"emergency"}), updated_at=T0, demo=True)
                     for i, v in enumerate(idx)]
        board = HospitalBoard(hospitals)
        dispatcher = Dispatcher(router, board)
        incidents = car_nodes[rng.integers(0, len(car_nodes), size=args.repeat)]

        def dispatch(i: int) -> None:
            v = incidents[i]
            try:
                dispatcher.dispatch((g.lat[v], g.lon[v]), Need(bed_type=BedType.ADULT_ICU),
                                    at=T0, register=False)
            except NoHospitalAvailable:  # an incident on a cut-off piece of road: timed too
                pass

        med, p90 = median_ms(dispatch, args.repeat)
        lines.append(f"| dispatch among 30 hospitals (ETAs, ranking, route, signal plan) | "
                     f"{med:.3f} | {p90:.3f} |")
        stations = [(float(g.lat[v]), float(g.lon[v])) for v in rng.choice(car_nodes, 5)]

        def coverage(i: int) -> None:
            dispatcher.coverage(stations, minutes=8, at=T0)

        med, p90 = median_ms(coverage, max(5, args.repeat // 3))
        lines.append(f"| coverage, 5 stations, 8 minutes (nodes, km, polygon) | {med:.3f} | "
                     f"{p90:.3f} |")

    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
