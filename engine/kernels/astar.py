"""A* with a great-circle lower bound, and the largest admissible bound factor.

Why: a goal-directed search scans far fewer nodes than Dijkstra when the
heuristic is tight. ``factor * haversine(v, target)`` never overestimates as
long as ``factor <= weight / straight_distance`` on every edge (a route is at
least as long as the straight line), and the triangle inequality then makes it
consistent, so every node is normally settled once.
"""

import math

import numpy as np
from numba import njit

from .checks import check_graph, check_nodes, check_workspace, float_array, index_array
from .heap import heap_pop
from .workspace import _mark_targets, _relax, _reset, _unmark_targets

EARTH_RADIUS_M = 6371008.8
"""Mean Earth radius (IUGG), metres."""


@njit(cache=True, nogil=True)
def _haversine(lat1, lon1, cos_lat1, lat2, lon2, cos_lat2):
    """Great-circle distance in metres; latitudes/longitudes in radians."""
    s_lat = math.sin(0.5 * (lat2 - lat1))
    s_lon = math.sin(0.5 * (lon2 - lon1))
    a = s_lat * s_lat + cos_lat1 * cos_lat2 * s_lon * s_lon
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


@njit(cache=True, nogil=True)
def _heuristic(v, lat, lon, t_lat, t_lon, t_cos, factor):
    if factor == 0.0:
        return 0.0
    la = math.radians(lat[v])
    lo = math.radians(lon[v])
    c = math.cos(la)
    h = np.inf
    for i in range(len(t_lat)):
        h = min(h, _haversine(la, lo, c, t_lat[i], t_lon[i], t_cos[i]))
    return factor * h


@njit(cache=True, nogil=True)
def _astar(first_out, head, weight, lat, lon, seeds, seed_cost, targets, target_cost, factor, ws):
    _reset(ws)
    dist = ws[0]
    heap_node, heap_key, heap_pos = ws[2], ws[3], ws[4]
    mark = ws[7]
    t_lat = np.empty(len(targets))
    t_lon = np.empty(len(targets))
    for i in range(len(targets)):
        t_lat[i] = math.radians(lat[targets[i]])
        t_lon[i] = math.radians(lon[targets[i]])
    t_cos = np.cos(t_lat)
    size = 0
    for i in range(len(seeds)):
        v = seeds[i]
        c = seed_cost[i]
        if c < dist[v]:
            h = _heuristic(v, lat, lon, t_lat, t_lon, t_cos, factor)
            size = _relax(ws, size, v, c, c + h, -1)
    next_entry, _ = _mark_targets(ws, targets)
    best = np.inf
    best_i = -1
    while size > 0 and len(targets) > 0:
        u, key, size = heap_pop(heap_node, heap_key, heap_pos, size)
        if key >= best:
            break  # key is a lower bound on every route through u
        d = dist[u]
        i = mark[u]
        while i >= 0:
            if d + target_cost[i] < best:
                best = d + target_cost[i]
                best_i = i
            i = next_entry[i]
        for e in range(first_out[u], first_out[u + 1]):
            nd = d + weight[e]
            v = head[e]
            if nd < dist[v]:
                h = _heuristic(v, lat, lon, t_lat, t_lon, t_cos, factor)
                size = _relax(ws, size, v, nd, nd + h, e)
    _unmark_targets(ws, targets)
    return best, best_i


def astar(first_out, head, weight, lat, lon, seeds, seed_cost, targets, target_cost, factor, ws):
    """Same answer as :func:`dijkstra`, guided by ``factor * great-circle distance``.

    Parameters
    ----------
    first_out, head, weight, seeds, seed_cost, targets, target_cost, ws
        As in :func:`dijkstra`.
    lat, lon : float64[n]
        Node coordinates in degrees.
    factor : float
        Weight units per metre; must not exceed :func:`astar_factor` for this
        ``weight`` array or the route may not be optimal. ``0`` gives Dijkstra.
        The heuristic costs one haversine per target per relaxation, so use
        :func:`dijkstra` for nearest-of-many-targets queries.

    Returns
    -------
    cost : float
        Best total cost, ``inf`` if unreachable.
    target_index : int
        Index into ``targets`` of the best target, ``-1`` if unreachable.
    """
    first_out, head, weight, n = check_graph(first_out, head, weight)
    lat = float_array(lat, "lat")
    lon = float_array(lon, "lon")
    if len(lat) != n or len(lon) != n:
        raise ValueError(f"lat and lon must have n = {n} entries")
    seeds, seed_cost = check_nodes(seeds, seed_cost, n, "seeds", "seed_cost")
    targets, target_cost = check_nodes(targets, target_cost, n, "targets", "target_cost")
    factor = float(factor)
    if not (0.0 <= factor < np.inf):
        raise ValueError(f"factor must be finite and >= 0, got {factor}")
    w = check_workspace(ws, n)
    cost, idx = _astar(
        first_out, head, weight, lat, lon, seeds, seed_cost, targets, target_cost, factor, w
    )
    return float(cost), int(idx)


@njit(cache=True, nogil=True)
def _astar_factor(weight, tail, head, lat, lon):
    best = np.inf
    for e in range(len(weight)):
        if weight[e] == np.inf:
            continue
        u, v = tail[e], head[e]
        la, lb = math.radians(lat[u]), math.radians(lat[v])
        d = _haversine(
            la, math.radians(lon[u]), math.cos(la), lb, math.radians(lon[v]), math.cos(lb)
        )
        if d > 0.0:
            best = min(best, weight[e] / d)
    return 0.0 if best == np.inf else best


def astar_factor(weight, tail, head, lat, lon):
    """Largest admissible ``factor`` for :func:`astar` with this weight array.

    The minimum over open edges of positive length of ``weight / haversine``,
    shrunk by ``1 - 1e-9`` to absorb rounding in the heuristic. It is 0 (A*
    becomes Dijkstra, still correct) when some such edge has weight 0, or when
    no edge qualifies. Recompute it whenever the weight array changes: it is
    O(m), so do it when a traffic update is installed, not per query.
    """
    weight = float_array(weight, "weight")
    tail = index_array(tail, "tail")
    head = index_array(head, "head")
    lat = float_array(lat, "lat")
    lon = float_array(lon, "lon")
    if not (len(tail) == len(head) == len(weight)):
        raise ValueError("weight, tail and head must have the same length")
    if len(lat) != len(lon):
        raise ValueError("lat and lon must have the same length")
    if len(head) and max(tail.max(), head.max()) >= len(lat):
        raise ValueError("tail/head refer to nodes beyond len(lat)")
    if len(head) and min(tail.min(), head.min()) < 0:
        raise ValueError("tail/head must be non-negative")
    return float(_astar_factor(weight, tail, head, lat, lon)) * (1.0 - 1e-9)
