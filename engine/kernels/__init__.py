"""Numba shortest-path kernels over CSR road graphs.

Conventions shared by every function here:

* Graph: ``first_out`` int32[n+1], ``head`` int32[m], ``tail`` int32[m]; the
  edge id is the position in ``head``. Reverse CSR ``first_in`` int32[n+1] and
  ``in_edge`` int32[m] (forward edge ids grouped by head node).
* ``weight`` float64[m] is passed per call (live traffic swaps arrays); ``inf``
  closes an edge, weights are ``>= 0``.
* Routes start and end mid-edge through seeds/targets with offsets
  (``seed_cost``, ``target_cost``).
* A :class:`Workspace` holds the per-query state; one per thread.
* The public functions validate per-query inputs. :func:`validate_graph` and
  :func:`validate_weight` check the O(m) array contents once, at load time.

Call :func:`warm_up` once after loading a graph so no request pays for JIT
compilation (or for loading the on-disk numba cache).
"""

import numpy as np

from .astar import astar, astar_factor
from .bidirectional import bidirectional_dijkstra, bidirectional_path_edges
from .checks import validate_graph, validate_weight
from .dijkstra import dijkstra, path_edges
from .isochrone import isochrone
from .matrix import many_to_many, one_to_many
from .nearest import build_grid, nearest_edges, nearest_segments
from .reach import reachable
from .workspace import Workspace, WorkspacePool

__all__ = [
    "WARM_UP_PARTS",
    "Workspace",
    "WorkspacePool",
    "astar",
    "astar_factor",
    "bidirectional_dijkstra",
    "bidirectional_path_edges",
    "build_grid",
    "dijkstra",
    "isochrone",
    "many_to_many",
    "nearest_segments",
    "one_to_many",
    "path_edges",
    "reachable",
    "validate_graph",
    "validate_weight",
    "warm_up",
]


#: what :func:`warm_up` can compile, by use: ``checks`` the load-time validations,
#: ``snap`` the nearest-road grid, ``reach`` reachability, ``search`` the point-to-point
#: searches, ``matrix`` tables, ``isochrone`` isochrones
WARM_UP_PARTS = ("checks", "snap", "reach", "search", "matrix", "isochrone")


def warm_up(parts: tuple[str, ...] = WARM_UP_PARTS, *, frozen: bool = True,
            writable: bool = True) -> None:
    """Compile (or load from the numba cache) the kernels of ``parts`` on a 3-node graph.

    Call once when a graph is loaded, never inside a request: the first call of each kernel
    otherwise costs seconds. Live weights and masks arrive read-only (``frozen``: what the
    service passes); numba compiles a second specialisation for writable arrays
    (``writable``: what library callers usually pass), so each kind can be warmed alone.
    """
    unknown = set(parts) - set(WARM_UP_PARTS)
    if unknown:
        raise ValueError(f"unknown warm-up parts {sorted(unknown)}; known: {WARM_UP_PARTS}")
    first_out = np.array([0, 1, 2, 2], dtype=np.int32)
    head = np.array([1, 2], dtype=np.int32)
    tail = np.array([0, 1], dtype=np.int32)
    first_in = np.array([0, 0, 1, 2], dtype=np.int32)
    in_edge = np.array([0, 1], dtype=np.int32)
    weight = np.array([1.0, 2.0])
    lat = np.array([48.85, 48.86, 48.87])
    lon = np.array([2.35, 2.35, 2.35])
    one, zero, idx = np.ones(1), np.zeros(1), np.array([0, 1], dtype=np.int32)
    s, t = np.array([0], dtype=np.int32), np.array([2], dtype=np.int32)
    ws, ws2 = Workspace.for_graph(3), Workspace.for_graph(3)
    if "checks" in parts:
        validate_graph(first_out, head, tail, first_in, in_edge)
        validate_weight(weight, 2)
    kinds = ([weight] if writable else []) + ([_frozen(weight)] if frozen else [])
    four = np.arange(5, dtype=np.int32)  # >= SEQUENTIAL_BELOW sources: the parallel kernel
    for w in kinds:
        if "search" in parts:
            dijkstra(first_out, head, w, s, zero, t, one, ws)
            path_edges(ws.pred_edge, tail, 2)
            _, meet = bidirectional_dijkstra(
                first_out, head, first_in, in_edge, tail, w, s, zero, t, one, ws, ws2
            )
            bidirectional_path_edges(ws, ws2, tail, head, meet)
            factor = astar_factor(w, tail, head, lat, lon)
            astar(first_out, head, w, lat, lon, s, zero, t, one, factor, ws)
        if "matrix" in parts:
            one_to_many(first_out, head, w, s, zero, idx, t, one, ws, np.empty(1))
            many_to_many(first_out, head, w, idx, s, zero, idx, t, one, ws)
            many_to_many(first_out, head, w, four, np.zeros(4, np.int32), np.zeros(4), idx, t,
                         one, ws)
        if "isochrone" in parts:
            isochrone(first_out, head, w, s, zero, 10.0, ws)
        if "reach" in parts:
            reachable(first_out, head, np.arange(2, dtype=np.int32), w, 0)
    if "snap" in parts:
        # as the snapper calls them: segment ids int64 (positions in the edge list), twins
        # int32, masks read-only (every edge, or a profile's usable edges)
        grid = build_grid(np.zeros(2), np.zeros(2), np.ones(2), np.ones(2), 64.0)
        seg_edge, twin = np.arange(2, dtype=np.int64), np.full(2, -1, dtype=np.int32)
        masks = (([np.ones(2, dtype=bool)] if writable else [])
                 + ([_frozen(np.ones(2, dtype=bool))] if frozen else []))
        for usable in masks:
            nearest_segments(grid, 0.5, 0.5, 100.0, seg_edge, twin, usable)
            nearest_edges(grid, 0.5, 0.5, 100.0, seg_edge, twin, usable, 1)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a
