"""Route assembly: a path of legs on the turn graph becomes a :class:`~engine.results.Route`
(times and distances per geometry point, GeoJSON coordinates, OSM nodes, guidance steps
(:mod:`engine.guidance`), traffic signals passed), vectorised over every geometry point."""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.extract.tags import F_AGAINST_ONEWAY
from engine.graph import RoadGraph, haversine_m
from engine.guidance_collapse import set_relative_sides
from engine.guidance_steps import bearing, build_steps
from engine.profiles import Weights
from engine.results import Route, Signal, Step
from engine.snap import Snap


def assemble_route(graph: RoadGraph, along_frac: np.ndarray, E: np.ndarray, S: np.ndarray,
                   T: np.ndarray, turn_arcs: np.ndarray, cost: float, W: Weights, o: Snap,
                   d: Snap) -> Route:
    """Turn legs (edge ``E[k]`` from fraction ``S[k]`` to ``T[k]``, entered by turn arc
    ``turn_arcs[k-1]``) into a :class:`Route`; ``along_frac`` is :func:`along_fraction` of
    the graph, ``o`` / ``d`` the snaps the route starts and ends at."""
    g = graph
    tc = W.turns
    legs = (E, S, T)
    turn_s = (W.turn if W.metric == "time" else tc.time)[turn_arcs]
    time_w = W.time
    (keep, leg_turn, leg_len_all, leg_time_all, pts, t_at, m_at, xy, ids, sig
     ) = _geometry(E, S, T, turn_s, g.length_m, time_w, g.geom_offset, g.geom_point,
                   along_frac, g.point_lon, g.point_lat, g.point_osm_id, g.point_signal,
                   float(o.lon), float(o.lat), float(d.lon), float(d.lat))
    Ek = E[keep]
    coords = xy.tolist() if len(xy) > 1 else [xy[0].tolist(), xy[0].tolist()]
    # traffic signals reached after the start (barrier copies share an OSM id)
    signals: list[Signal] = []
    if len(sig):
        lon, lat = g.point_lon[pts], g.point_lat[pts]
        for k in sig:
            oid = int(g.point_osm_id[pts[k]])
            if not signals or signals[-1].osm_id != oid:
                prev: tuple[float, float] = ((lat[k - 1], lon[k - 1]) if k > 0
                                             else (o.lat, o.lon))
                nxt: tuple[float, float] = ((lat[k + 1], lon[k + 1]) if k + 1 < len(pts)
                                            else (d.lat, d.lon))
                signals.append(Signal(oid, float(lat[k]), float(lon[k]), float(t_at[k]),
                                      float(m_at[k]), bearing(*prev, lat[k], lon[k]),
                                      bearing(lat[k], lon[k], *nxt)))
    # steps: one per decision point (engine.guidance); a step owns the turn starting it.
    # Built when first read (Route.steps): most callers never read them
    kept_turn = leg_turn[keep]
    turn_total = float(leg_turn.sum())

    def guidance() -> tuple[list[Step], Step | None]:
        steps, arrival = build_steps(g, Ek, leg_len_all[keep], leg_time_all[keep], kept_turn,
                                     coords, o.location(), d.location(),
                                     turn_total - float(kept_turn.sum()))
        if steps:  # OSRM: on which side the points asked for lie
            set_relative_sides(steps[0], arrival, coords, [o.input_lon, o.input_lat],
                               [d.input_lon, d.input_lat])
        return steps, arrival

    span = (T - S)[keep]
    return Route(duration_s=float(leg_time_all.sum()) + turn_total,
                 distance_m=float(leg_len_all.sum()),
                 cost=float(cost), metric=W.metric, edges=Ek.tolist(), osm_nodes=ids.tolist(),
                 coordinates=coords, signals=signals, guidance=guidance, origin=o, destination=d,
                 profile=W.profile, weights_version=W.version,
                 eta_normal_s=float((W.normal_time[Ek] * span).sum()
                                    + tc.normal[turn_arcs].sum()),
                 contraflow_edges=int(((g.flags[Ek] & np.uint32(F_AGAINST_ONEWAY)) != 0).sum()),
                 turn_arcs=turn_arcs.tolist(), turn_delay_s=turn_total, legs=legs,
                 restricted_turns=int(tc.restricted[turn_arcs].sum())
                 if tc.restricted_penalty_s is not None else 0)


@njit(cache=True, nogil=True)
def _geometry(E: np.ndarray, S: np.ndarray, T: np.ndarray, turn_s: np.ndarray,
              length_m: np.ndarray, time_w: np.ndarray, geom_offset: np.ndarray,
              geom_point: np.ndarray, along_frac: np.ndarray, point_lon: np.ndarray,
              point_lat: np.ndarray, point_osm_id: np.ndarray, point_signal: np.ndarray,
              o_lon: float, o_lat: float, d_lon: float, d_lat: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                         np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The geometry of the legs, in one pass: ``(kept legs (non-empty; the first if all
    are), turn time entering each leg, leg metres, leg seconds, geometry points (a junction
    once), time and metres at each, coordinates [lon, lat] with the two snaps (no point
    twice in a row), the OSM nodes of the route (as OSRM: of every segment touched, around
    the snaps too; none twice in a row), the points with traffic signals reached after the
    start)``."""
    n = len(E)
    leg_turn = np.zeros(n)
    leg_turn[1:] = turn_s
    leg_len = np.empty(n)
    leg_time = np.empty(n)
    before = np.empty(n)  # seconds before each leg (its entering turn done)
    before_m = np.empty(n)
    keep = np.empty(n, dtype=np.bool_)
    acc = 0.0
    acc_m = 0.0
    n_pts = 0
    any_kept = False
    for i in range(n):
        span = T[i] - S[i]
        e = E[i]
        leg_len[i] = length_m[e] * span
        leg_time[i] = time_w[e] * span
        acc += leg_time[i] + leg_turn[i]
        before[i] = acc - leg_time[i]
        acc_m += leg_len[i]
        before_m[i] = acc_m - leg_len[i]
        keep[i] = T[i] > S[i]
        any_kept |= keep[i]
        n_pts += geom_offset[e + 1] - geom_offset[e]
    if not any_kept:  # origin and destination at the same point
        keep[0] = True
    pts = np.empty(n_pts, dtype=geom_point.dtype)
    t_at = np.empty(n_pts)
    m_at = np.empty(n_pts)
    m = 0
    first_kept = -1
    last_kept = -1
    for i in range(n):
        if not keep[i]:
            continue
        if first_kept < 0:
            first_kept = i
        last_kept = i
        e = E[i]
        lo_s = S[i] - 1e-12
        hi_t = T[i] + 1e-12
        for x in range(geom_offset[e], geom_offset[e + 1]):
            pos = along_frac[x]
            if pos < lo_s or pos > hi_t:
                continue
            p = geom_point[x]
            if m > 0 and pts[m - 1] == p:  # consecutive legs share their junction
                continue
            pts[m] = p
            t_at[m] = before[i] + (pos - S[i]) * time_w[e]
            m_at[m] = before_m[i] + (pos - S[i]) * length_m[e]
            m += 1
    pts = pts[:m]
    xy = np.empty((m + 2, 2))
    xy[0, 0] = o_lon
    xy[0, 1] = o_lat
    c = 1
    for j in range(m + 1):
        if j < m:
            lon = point_lon[pts[j]]
            lat = point_lat[pts[j]]
        else:
            lon = d_lon
            lat = d_lat
        if lon == xy[c - 1, 0] and lat == xy[c - 1, 1]:
            continue
        xy[c, 0] = lon
        xy[c, 1] = lat
        c += 1
    # OSM nodes: as OSRM, the nodes of every segment touched (incl. around the snaps)
    node_pts = np.empty(m + 2, dtype=geom_point.dtype)
    q = 0
    e0 = E[first_kept]
    lo0, hi0 = geom_offset[e0], geom_offset[e0 + 1]
    if hi0 > lo0 and S[first_kept] > 0:
        k = np.searchsorted(along_frac[lo0:hi0], S[first_kept]) - 1
        if k >= 0 and (m == 0 or geom_point[lo0 + k] != pts[0]):
            node_pts[q] = geom_point[lo0 + k]
            q += 1
    node_pts[q:q + m] = pts
    q += m
    e1 = E[last_kept]
    lo1, hi1 = geom_offset[e1], geom_offset[e1 + 1]
    if hi1 > lo1 and T[last_kept] < 1:
        k = np.searchsorted(along_frac[lo1:hi1], T[last_kept], side="right")
        if k < hi1 - lo1 and (m == 0 or geom_point[lo1 + k] != pts[m - 1]):
            node_pts[q] = geom_point[lo1 + k]
            q += 1
    ids = np.empty(q, dtype=point_osm_id.dtype)
    r = 0
    for j in range(q):
        oid = point_osm_id[node_pts[j]]
        if oid >= 0 and (r == 0 or ids[r - 1] != oid):
            ids[r] = oid
            r += 1
    sig = np.empty(m, dtype=np.int64)
    ns = 0
    for j in range(m):
        if point_signal[pts[j]] and t_at[j] > 0:
            sig[ns] = j
            ns += 1
    return (keep, leg_turn, leg_len, leg_time, pts, t_at[:m], m_at[:m], xy[:c], ids[:r],
            sig[:ns])


def along_fraction(graph: RoadGraph) -> np.ndarray:
    """Position (0..1 of the edge's length) of every geometry entry along its edge."""
    gp = graph.geom_point
    seg = np.zeros(len(gp))
    if len(gp) > 1:
        seg[1:] = haversine_m(graph.point_lat[gp[:-1]], graph.point_lon[gp[:-1]],
                              graph.point_lat[gp[1:]], graph.point_lon[gp[1:]])
    seg[graph.geom_offset[:-1]] = 0.0  # no segment across two edges
    cum = np.cumsum(seg)
    edge_of = np.repeat(np.arange(graph.n_edges), np.diff(graph.geom_offset))
    along = cum - cum[graph.geom_offset[:-1]][edge_of]
    total = along[graph.geom_offset[1:] - 1][edge_of]
    return np.where(total > 0, along / np.where(total > 0, total, 1.0),
                    (np.arange(len(gp)) > graph.geom_offset[:-1][edge_of]).astype(float))
