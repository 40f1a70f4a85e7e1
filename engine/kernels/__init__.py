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
from .nearest import build_grid, nearest_segments
from .reach import reachable
from .workspace import Workspace, WorkspacePool

__all__ = [
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


def warm_up() -> None:
    """Compile (or load from the numba cache) every kernel on a 3-node graph.

    Call once when a graph is loaded, never inside a request: the first call
    of each kernel otherwise costs seconds.
    """
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

    # live weights arrive read-only (immutable snapshots): numba compiles a separate
    # specialisation for them, so warm both kinds here rather than on a first request
    frozen = weight.copy()
    frozen.flags.writeable = False
    four = np.arange(5, dtype=np.int32)  # >= SEQUENTIAL_BELOW sources: the parallel kernel
    for w in (weight, frozen):
        dijkstra(first_out, head, w, s, zero, t, one, ws)
        path_edges(ws.pred_edge, tail, 2)
        _, meet = bidirectional_dijkstra(
            first_out, head, first_in, in_edge, tail, w, s, zero, t, one, ws, ws2
        )
        bidirectional_path_edges(ws, ws2, tail, head, meet)
        factor = astar_factor(w, tail, head, lat, lon)
        astar(first_out, head, w, lat, lon, s, zero, t, one, factor, ws)
        one_to_many(first_out, head, w, s, zero, idx, t, one, ws, np.empty(1))
        many_to_many(first_out, head, w, idx, s, zero, idx, t, one, ws)
        many_to_many(first_out, head, w, four, np.zeros(4, np.int32), np.zeros(4), idx, t,
                     one, ws)
        isochrone(first_out, head, w, s, zero, 10.0, ws)
        reachable(first_out, head, np.arange(2, dtype=np.int32), w, 0)
    grid = build_grid(np.zeros(2), np.zeros(2), np.ones(2), np.ones(2), 64.0)
    for usable in (np.ones(2, dtype=bool), _frozen(np.ones(2, dtype=bool))):
        nearest_segments(grid, 0.5, 0.5, 100.0, np.arange(2, dtype=np.int32),
                         np.full(2, -1, dtype=np.int32), usable)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a
