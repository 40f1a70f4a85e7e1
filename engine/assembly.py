"""Route assembly: a path of legs on the turn graph becomes a :class:`~engine.results.Route`
(times and distances per geometry point, GeoJSON coordinates, OSM nodes, guidance steps
(:mod:`engine.guidance`), traffic signals passed), vectorised over every geometry point."""

from __future__ import annotations

import numpy as np

from engine.extract.tags import F_AGAINST_ONEWAY
from engine.graph import RoadGraph, bearing_deg, haversine_m
from engine.guidance import build_steps
from engine.profiles import Weights
from engine.results import Route, Signal
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
    leg_turn = np.concatenate([[0.0], turn_s])
    span_all = T - S
    leg_len_all = g.length_m[E] * span_all
    time_w = W.time
    leg_time_all = time_w[E] * span_all
    # time at which each leg starts (its entering turn done), metres before it
    before_all = np.cumsum(leg_time_all + leg_turn) - leg_time_all
    before_m_all = np.cumsum(leg_len_all) - leg_len_all
    keep_leg = T > S
    if not keep_leg.any():  # origin and destination at the same point
        keep_leg[0] = True
    E, S, T = E[keep_leg], S[keep_leg], T[keep_leg]
    span = span_all[keep_leg]
    leg_len, leg_time = leg_len_all[keep_leg], leg_time_all[keep_leg]
    before, before_m = before_all[keep_leg], before_m_all[keep_leg]
    kept_turn = leg_turn[keep_leg]
    # every geometry entry of every leg's edge, with its position along the edge
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
    # consecutive legs share their junction: keep it once (arrival, before the turn)
    dup = np.zeros(len(pts), dtype=bool)
    dup[1:] = pts[1:] == pts[:-1]
    pts, t_at, m_at = pts[~dup], t_at[~dup], m_at[~dup]

    lon, lat = g.point_lon[pts], g.point_lat[pts]
    xy = np.empty((len(pts) + 2, 2))
    xy[0] = o.lon, o.lat
    xy[1:-1, 0], xy[1:-1, 1] = lon, lat
    xy[-1] = d.lon, d.lat
    same = np.zeros(len(xy), dtype=bool)
    same[1:] = (xy[1:] == xy[:-1]).all(axis=1)
    xy = xy[~same]
    coords = xy.tolist() if len(xy) > 1 else [xy[0].tolist(), xy[0].tolist()]
    # OSM nodes: as OSRM, the nodes of every segment touched (incl. around the snaps)
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
    # traffic signals reached after the start (barrier copies share an OSM id)
    sig = np.flatnonzero(g.point_signal[pts] & (t_at > 0))
    signals: list[Signal] = []
    for k in sig:
        oid = int(g.point_osm_id[pts[k]])
        if not signals or signals[-1].osm_id != oid:
            prev: tuple[float, float] = (lat[k - 1], lon[k - 1]) if k > 0 else (o.lat, o.lon)
            nxt: tuple[float, float] = ((lat[k + 1], lon[k + 1]) if k + 1 < len(pts)
                                        else (d.lat, d.lon))
            signals.append(Signal(oid, float(lat[k]), float(lon[k]), float(t_at[k]),
                                  float(m_at[k]), bearing(*prev, lat[k], lon[k]),
                                  bearing(lat[k], lon[k], *nxt)))
    # steps: one per decision point (engine.guidance); a step owns the turn starting it
    steps, arrival = build_steps(g, E, leg_len, leg_time, kept_turn, coords, o.location(),
                                 d.location(), float(leg_turn.sum() - kept_turn.sum()))
    turn_total = float(leg_turn.sum())
    return Route(duration_s=float(leg_time_all.sum()) + turn_total,
                 distance_m=float(leg_len_all.sum()),
                 cost=float(cost), metric=W.metric, edges=E.tolist(), osm_nodes=ids.tolist(),
                 coordinates=coords, steps=steps, signals=signals, origin=o, destination=d,
                 profile=W.profile, weights_version=W.version,
                 eta_normal_s=float((W.normal_time[E] * span).sum()
                                    + tc.normal[turn_arcs].sum()),
                 contraflow_edges=int(((g.flags[E] & np.uint32(F_AGAINST_ONEWAY)) != 0).sum()),
                 turn_arcs=turn_arcs.tolist(), turn_delay_s=turn_total, legs=legs,
                 restricted_turns=int(tc.restricted[turn_arcs].sum())
                 if tc.restricted_penalty_s is not None else 0, arrival=arrival)


def bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north."""
    return float(bearing_deg(lat1, lon1, lat2, lon2))


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
