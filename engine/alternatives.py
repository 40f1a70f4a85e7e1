"""Alternative routes: a dispatcher whose best route is blocked by an unreported incident needs a
second choice at once.

:func:`alternatives` (also :meth:`engine.query.Router.alternatives`) returns the best route
and up to ``n`` alternatives, each a full :class:`~engine.results.Route` (geometry, steps,
signals, both ETAs) under the same live weights and turn rules. An alternative is
*admissible* in the sense of Abraham, Delling, Goldberg & Werneck, "Alternative routes in
road networks" (SEA 2010; ACM J. Exp. Algorithmics 18, 2013):

* **limited sharing**: it shares at most ``max_sharing`` (80 %) of the best route's cost with
  the best route and the alternatives before it;
* **local optimality**: every stretch of it shorter than ``alpha`` (25 %) of the best cost is
  a shortest path (no silly detours), proven by its plateau or checked by their T-test;
* **bounded stretch**: it costs at most ``max_stretch`` (1.4x) the best route, and its
  detour (from where it leaves the best route to where it rejoins it) at most
  ``max_detour`` (1.4x) the shortest path between those two points.

The method is their *via-node* method, evaluated with the CCH (:mod:`engine.cch.via`): one
upward walk from the origin's roads and one from the destination's in the elimination tree
(plus small nested-dissection cells: the one holding both ends, or some along the best
route), made exact by a
downward pass, give ``d(s, v) + d(v, t)`` for every candidate ``v`` (a separator that every
path between the ends crosses is among them); candidates are ranked by their plateau score
``2 l(v) + sigma(v) - pl(v)`` read off the hierarchy, then unpacked and tested, the T-test and
the detour test each costing one point-to-point CCH query. Costs are in the query's metric
(seconds for ``time``); sharing counts each shared road for the fraction both drive and each
shared turn for its turn cost.

Limits: candidates are the nodes of the two search spaces and of a few small cells (a common
one for short trips, some along the best route for long ones: their X-CHV trade-off,
widened), so a long trip may get fewer alternatives than a search of every node would give
(``benchmarks/results/alternatives.md`` measures how many); :class:`AlternativeParams` sets
the budget. No penalty method runs as a fallback.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.cch.via import STATS, ViaResult, WorkspacePool, via_alternatives
from engine.profiles import Metric, ProfileOptions, Weights
from engine.results import Route

if TYPE_CHECKING:
    from engine.query import Algorithm, Coordinate, Router


@dataclass(frozen=True, slots=True)
class AlternativeParams:
    """The admissibility thresholds and the search budget (Abraham et al.'s names).

    Attributes
    ----------
    max_stretch
        An alternative costs at most this times the best route (their ``1 + epsilon``).
    max_sharing
        It shares at most this share of the best route's cost with the best route and the
        alternatives before it (their ``gamma``).
    alpha
        T-test window: every stretch of an alternative up to ``alpha`` times the best cost
        (around its via node) must be a shortest path.
    max_detour
        Its detour, from the last point of its prefix on the best route to the first point
        of its suffix on it, costs at most this times the shortest path between them
        (their approximation of uniformly bounded stretch); ``inf`` skips the test.
    max_examined
        Candidate via nodes unpacked and tested at most per query (best ranked first).
    max_cell
        Besides the two search spaces, candidates come from the smallest cell of the nested
        dissection holding both ends (an elimination subtree) when it has at most this many
        nodes: short trips get every node around them as a candidate. 0: the search spaces
        only; at least the graph's node count: every node (an exhaustive reference, slow on
        large maps). The query time grows with the cell.
    anchors, anchor_cell
        When that cell is larger (a long trip), the cells of at most ``anchor_cell`` nodes
        around ``anchors`` points of the best route (evenly spread by cost) join the
        candidates instead, with their ancestors: the corridors alongside the route. 0: none.
    """

    max_stretch: float = 1.4
    max_sharing: float = 0.8
    alpha: float = 0.25
    max_detour: float = 1.4
    max_examined: int = 32
    max_cell: int = 10_000
    anchors: int = 3
    anchor_cell: int = 1_000

    def __post_init__(self) -> None:
        checks = (("max_stretch", self.max_stretch >= 1.0), ("max_sharing",
                  0.0 <= self.max_sharing <= 1.0), ("alpha", 0.0 <= self.alpha <= 1.0),
                  ("max_detour", self.max_detour >= 1.0), ("max_examined",
                  isinstance(self.max_examined, int) and self.max_examined >= 1),
                  ("max_cell", isinstance(self.max_cell, int) and self.max_cell >= 0),
                  ("anchors", isinstance(self.anchors, int) and self.anchors >= 0),
                  ("anchor_cell", isinstance(self.anchor_cell, int) and self.anchor_cell >= 0))
        for name, ok in checks:
            if not ok:
                raise ValueError(f"AlternativeParams.{name}: got {getattr(self, name)!r} "
                                 "(max_stretch and max_detour >= 1, max_sharing and alpha in "
                                 "[0, 1], max_examined an int >= 1, max_cell, anchors and "
                                 "anchor_cell ints >= 0)")


DEFAULT_PARAMS = AlternativeParams()


@dataclass
class AlternativesFound:
    """What :func:`search_alternatives` found: ``routes`` (best first), and the kernel's
    counts (``stats``, named by :data:`engine.cch.via.STATS`: candidate via nodes, within the
    stretch bound, examined, rejected per test, accepted)."""

    routes: list[Route]
    stats: dict[str, int] = field(default_factory=dict)


_POOLS: weakref.WeakKeyDictionary[Any, WorkspacePool] = weakref.WeakKeyDictionary()
_POOLS_LOCK = threading.Lock()


def _anchors(nodes: np.ndarray, arc_cost: np.ndarray, k: int) -> np.ndarray:
    """``k`` nodes of the best route evenly spread by cost (at 1/(k+1), 2/(k+1)...)."""
    if k <= 0 or not len(nodes):
        return np.zeros(0, dtype=np.int32)
    cum = np.concatenate([[0.0], np.cumsum(arc_cost)])
    at = np.searchsorted(cum, cum[-1] * np.arange(1, k + 1) / (k + 1))
    return np.asarray(nodes, dtype=np.int32)[np.minimum(at, len(nodes) - 1)]


def _pool(router: Router) -> WorkspacePool:
    with _POOLS_LOCK:
        pool = _POOLS.get(router)
        if pool is None:
            tg = router.turns
            pool = _POOLS[router] = WorkspacePool(tg.n_nodes, router.graph.n_edges,
                                                  tg.n_edges)
        return pool


def alternatives(router: Router, origin: Coordinate, destination: Coordinate, n: int = 2, *,
                 profile: str = "car", metric: Metric = "time", at: datetime | None = None,
                 contraflow: bool = False, restricted_turns: bool = False,
                 weights: Weights | np.ndarray | None = None,
                 algorithm: Algorithm | None = None,
                 params: AlternativeParams = DEFAULT_PARAMS) -> list[Route]:
    """The best route from ``origin`` to ``destination`` and up to ``n`` admissible
    alternatives (module docstring), best first, all under the same weights; ``[]`` when no
    route joins them (:meth:`Router.route` says why).

    The arguments are :meth:`Router.route`'s (``algorithm`` finds the best route; the
    alternatives always use the CCH). Each alternative has ``extra["alternative"]``:
    ``rank`` (1, 2, ...), ``stretch`` (its cost over the best route's) and ``shared`` (the
    share of the best route's cost it shares with the routes before it).

    Raises
    ------
    ValueError
        ``n`` is not an integer >= 0, or the router has no CCH.
    InvalidCoordinate, PointOffNetwork
        As :meth:`Router.route`.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n (alternatives wanted) must be an integer >= 0, got {n!r}")
    if router.cch is None:
        raise ValueError("alternatives need the routing hierarchy (Router(graph, cch=True))")
    W = router._resolve(profile, metric, weights, at,
                        ProfileOptions(contraflow=contraflow, restricted_turns=restricted_turns))
    best = router.route(origin, destination, weights=W, algorithm=algorithm)
    if not isinstance(best, Route):
        return []
    return search_alternatives(router, best, W, int(n), params).routes


def search_alternatives(router: Router, best: Route, W: Weights, n: int,
                        params: AlternativeParams = DEFAULT_PARAMS) -> AlternativesFound:
    """Up to ``n`` alternatives to ``best``, a route the router found with the weights ``W``
    (between its snaps ``best.origin`` and ``best.destination``), with the kernel's counts."""
    if router.cch is None:
        raise ValueError("alternatives need the routing hierarchy (Router(graph, cch=True))")
    found = AlternativesFound([best], dict.fromkeys(STATS, 0))
    if n <= 0 or not best.cost > 0 or best.legs is None:
        return found
    o, d = best.origin, best.destination
    src, dst = router._sources(o, W), router._targets(d, W)
    if not src or not dst:
        return found
    tg = router.turns
    E, S, T = best.legs
    best_arcs = np.asarray(best.turn_arcs, dtype=np.int64)
    best_nodes = tg.tail[best_arcs] if len(best_arcs) else np.asarray(E[:1])
    cch_metric = router._cch_metric(W)
    assert router.cch is not None
    pool = _pool(router)
    ws = pool.acquire()
    try:
        res: ViaResult = via_alternatives(
            router.cch.topology, cch_metric, edge_head=tg.head, group=tg.node_road,
            group_weight=W.values, edge_extra=W.turn,
            seeds=np.array([e.node for e in src], dtype=np.int32),
            seed_cost=np.array([e.cost for e in src]),
            seed_start=np.array([e.leg.start for e in src]),
            targets=np.array([e.node for e in dst], dtype=np.int32),
            target_cost=np.array([e.cost for e in dst]),
            target_edge=np.array([e.arc for e in dst], dtype=np.int64),
            target_end=np.array([e.leg.end for e in dst]), best_cost=float(best.cost),
            best_groups=E, best_lo=S, best_hi=T, best_edges=best_arcs, best_nodes=best_nodes,
            anchors=_anchors(best_nodes, W.arc[best_arcs[:-1]], params.anchors),
            n=n, max_stretch=params.max_stretch, max_sharing=params.max_sharing,
            alpha=params.alpha, max_detour=params.max_detour,
            max_examined=params.max_examined, max_cell=params.max_cell,
            anchor_cell=params.anchor_cell, ws=ws,
            query_ws=router.cch.workspace())
    finally:
        pool.release(ws)
    found.stats = dict(zip(STATS, res.stats.tolist(), strict=True))
    for k in range(len(res.cost)):
        arcs = res.edges[res.first[k]:res.first[k + 1]]
        legs = router._legs(src[int(res.seed[k])], arcs, dst[int(res.target[k])])
        route = router._assemble(*legs, float(res.cost[k]), W, o, d)
        route.extra["alternative"] = {"rank": k + 1,
                                      "stretch": round(float(res.cost[k] / best.cost), 4),
                                      "shared": round(float(res.shared[k] / best.cost), 4)}
        found.routes.append(route)
    return found
