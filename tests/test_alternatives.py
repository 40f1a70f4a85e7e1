"""Alternative routes (via-node alternatives on the CCH, :mod:`engine.alternatives`): every
alternative is a valid path under the same weights whose cost recomputes, and the quality
criteria hold when checked independently of the kernel, on random pairs of real extracts:

* stretch against scipy's best cost on the turn graph (``tests/oracle.py``);
* sharing from the legs' driven fractions and the turns, written from the definition;
* local optimality from scipy's distances: every stretch of an alternative shorter than
  ``alpha`` times the best cost is a shortest path;
* the detour bound between where an alternative leaves the best route and rejoins it.

Then the dispatcher's case: with the best route closed, the former alternative is at least as
good as the new best route. Last, the service: ``/v1/route`` with ``alternatives`` and OSRM's
``alternatives=true|N``, their bodies matching the declared models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from engine.alternatives import DEFAULT_PARAMS, AlternativeParams, search_alternatives
from engine.cch import via
from engine.changes import Closure
from engine.graph import RoadGraph
from engine.profiles import Weights
from engine.query import Route, Router, Unreachable
from engine.traffic import TrafficOverlay
from oracle import oracle_route_cost, recompute_route_cost, turn_arc_weights, turn_rows

A = (43.7384, 7.4246)  # (lat, lon): README's route across Monaco
B = (43.7313, 7.4197)
N_PAIRS = 120


@pytest.fixture(scope="module", params=["monaco", "andorra"])
def case(request: pytest.FixtureRequest):
    graph = request.getfixturevalue(request.param)
    router = Router(graph)
    return request.param, graph, router, router.weights("car")


def _points(graph: RoadGraph, W: Weights, n: int, seed: int) -> list[tuple[tuple[float, float],
                                                                         tuple[float, float]]]:
    """Random pairs near junctions of car roads, jittered up to ~60 m (mid-edge)."""
    rng = np.random.default_rng(seed)
    nodes = np.unique(graph.tail[np.isfinite(W.values)])
    idx = nodes[rng.integers(0, len(nodes), size=(n, 2))]
    jitter = rng.uniform(-0.0005, 0.0005, size=(n, 2, 2))
    return [((graph.lat[i] + j[0, 0], graph.lon[i] + j[0, 1]),
             (graph.lat[k] + j[1, 0], graph.lon[k] + j[1, 1])) for (i, k), j in zip(idx, jitter)]


def _walk(route: Route, graph: RoadGraph, W: Weights) -> tuple[np.ndarray, np.ndarray]:
    """``(nodes, cum)``: the route's turn nodes (tails of its turns) and the cost of
    reaching the end of each (the first road's driven part included)."""
    tg = graph.turns
    E, S, T = route.legs
    arcs = np.asarray(route.turn_arcs, dtype=np.int64)
    nodes = tg.tail[arcs].astype(np.int64)
    cum = np.empty(len(nodes))
    if len(nodes):
        cum[0] = W.values[E[0]] * (T[0] - S[0])
        for k in range(1, len(nodes)):
            cum[k] = cum[k - 1] + W.arc[arcs[k - 1]]
    return nodes, cum


def _shared(route: Route, before: list[Route], W: Weights) -> float:
    """Cost ``route`` shares with the routes ``before``: every road for the overlap of the
    fractions driven (the union of theirs), every turn taken by one of them for its turn
    cost."""
    E, S, T = route.legs
    covered: dict[int, list[tuple[float, float]]] = {}
    turns: set[int] = set()
    for other in before:
        for e, s, t in zip(*other.legs):
            covered.setdefault(int(e), []).append((float(s), float(t)))
        turns.update(int(a) for a in other.turn_arcs)
    total = 0.0
    for e, s, t in zip(E, S, T):
        pieces = sorted((max(a, s), min(b, t)) for a, b in covered.get(int(e), []))
        length, reach = 0.0, s
        for a, b in pieces:
            a = max(a, reach)
            if b > a:
                length += b - a
                reach = b
        total += length * W.values[e]
    total += sum(W.turn[a] for a in route.turn_arcs if int(a) in turns)
    return float(total)


def _check_valid(route: Route, best: Route, graph: RoadGraph, W: Weights) -> None:
    """Same weights, a connected path of allowed turns on finite roads, its cost recomputes,
    it joins the same two snapped points, and no road is driven twice."""
    tg = graph.turns
    assert route.weights_version == best.weights_version and route.profile == best.profile
    cost = recompute_route_cost(route, W.values, W.turn, graph)  # asserts the turns join
    np.testing.assert_allclose(cost, route.cost, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(route.duration_s, route.cost, rtol=1e-9, atol=1e-9)
    arcs = np.asarray(route.turn_arcs, dtype=np.int64)
    assert np.isfinite(W.turn[arcs]).all() and np.isfinite(W.arc[arcs]).all()
    E, S, T = route.legs
    assert np.isfinite(W.values[E]).all()
    assert np.all(tg.head[arcs[:-1]] == tg.tail[arcs[1:]]), "turn nodes do not connect"
    assert route.origin is best.origin and route.destination is best.destination
    assert any(e == E[0] and f == pytest.approx(S[0]) for e, f in _ends(best.origin))
    assert any(e == E[-1] and f == pytest.approx(T[-1]) for e, f in _ends(best.destination))
    nodes = tg.node_road[tg.tail[arcs]]
    assert len(np.unique(nodes)) == len(nodes), "a road driven twice"


def _ends(snap) -> list[tuple[int, float]]:
    """(road, fraction) where a route may start or end at this snap: either direction."""
    out = []
    for edge, twin, f in snap.positions():
        out.append((int(edge), float(f)))
        if twin >= 0:
            out.append((int(twin), 1.0 - float(f)))
    return out


# ----------------------------------------------------------------------------- quality
def test_alternatives_are_valid_and_admissible(case) -> None:
    """Random pairs: every alternative valid (above), within the stretch bound of scipy's best
    cost, sharing at most 80 % with the best route and those before it, locally optimal
    (every stretch < alpha x best cost is a shortest path, scipy), its detour bounded; and
    there are alternatives to check."""
    name, g, router, W = case
    p = DEFAULT_PARAMS
    arc_w = turn_arc_weights(g, W.turn, W.values)
    counts = np.zeros(4, dtype=int)
    checked = 0
    for origin, destination in _points(g, W, N_PAIRS, seed=13):
        routes = router.alternatives(origin, destination, 3)
        if not routes:
            assert isinstance(router.route(origin, destination), Unreachable)
            continue
        best = routes[0]
        assert best.cost == pytest.approx(router.route(origin, destination).cost, rel=1e-12)
        assert "alternative" not in best.extra
        counts[len(routes) - 1] += 1
        if len(routes) == 1:
            continue
        expected = oracle_route_cost(g, W.values, W.turn, best.origin, best.destination)
        np.testing.assert_allclose(best.cost, expected, rtol=1e-9, atol=1e-9)
        best_nodes, _ = _walk(best, g, W)
        on_best = set(best_nodes.tolist())
        for k, alt in enumerate(routes[1:], start=1):
            _check_valid(alt, best, g, W)
            # bounded stretch, against the oracle's best cost
            assert alt.cost <= p.max_stretch * expected * (1 + 1e-9), name
            assert alt.cost >= best.cost * (1 - 1e-12)
            info = alt.extra["alternative"]
            assert info["rank"] == k
            assert info["stretch"] == pytest.approx(alt.cost / best.cost, abs=1e-4)
            # limited sharing, from the legs
            shared = _shared(alt, routes[:k], W)
            assert shared <= p.max_sharing * best.cost * (1 + 1e-9) + 1e-9, name
            assert info["shared"] == pytest.approx(shared / best.cost, abs=2e-4)
            nodes, cum = _walk(alt, g, W)
            # local optimality: the longest window from each node shorter than T
            T = p.alpha * best.cost
            D = turn_rows(g, arc_w, nodes)
            for i in range(len(nodes)):
                j = int(np.searchsorted(cum, cum[i] + T * (1 - 1e-9), side="left")) - 1
                if j > i:
                    np.testing.assert_allclose(D[i, nodes[j]], cum[j] - cum[i], rtol=1e-9,
                                               atol=1e-9, err_msg=f"{name}: window {i}-{j}")
            # the detour: from the last node of the prefix on the best route to the first
            # node of the suffix on it
            a = 0
            if nodes[0] in on_best:
                while a + 1 < len(nodes) and nodes[a + 1] in on_best:
                    a += 1
            b = len(nodes) - 1
            if nodes[b] in on_best:
                while b - 1 > a and nodes[b - 1] in on_best:
                    b -= 1
            if b > a:
                assert cum[b] - cum[a] <= p.max_detour * D[a, nodes[b]] * (1 + 1e-9) + 1e-9
            checked += 1
    assert checked >= N_PAIRS // 8, f"{name}: only {checked} alternatives ({counts})"
    assert counts[2] > 0, f"{name}: never two alternatives ({counts})"


def test_closing_the_best_route_leaves_the_alternative(monaco: RoadGraph) -> None:
    """A dispatcher's best route is blocked by an incident: close one road of it that the
    first alternative does not use (live overlay, a closure by edge id). The new best route
    avoids it and costs at most the former alternative, which is unchanged and still valid;
    and the engine still finds alternatives."""
    router = Router(monaco, overlay=TrafficOverlay(monaco))
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    tested = 0
    for origin, destination in _points(monaco, router.weights("car", at=t0), 80, seed=5):
        before = router.alternatives(origin, destination, 1, at=t0)
        if len(before) < 2:
            continue
        best, alt = before
        alt_roads = set(np.asarray(alt.legs[0]).tolist())
        own = [e for e in np.asarray(best.legs[0])[1:-1].tolist() if e not in alt_roads]
        if not own:
            continue
        entry = router.overlay.apply(Closure(edges=[own[len(own) // 2]]), at=t0)
        try:
            W = router.weights("car", at=t0)
            assert not np.isfinite(W.values[own[len(own) // 2]])
            after = router.alternatives(origin, destination, 2, at=t0)
            assert after, "the former alternative still joins the points"
            new_best = after[0]
            assert own[len(own) // 2] not in np.asarray(new_best.legs[0]).tolist()
            assert new_best.cost <= alt.cost * (1 + 1e-9) + 1e-9
            # the former alternative did not change and is still a valid route
            np.testing.assert_allclose(recompute_route_cost(alt, W.values, W.turn, monaco),
                                       alt.cost, rtol=1e-9, atol=1e-9)
            for other in after[1:]:
                _check_valid(other, new_best, monaco, W)
            tested += 1
        finally:
            router.overlay.remove(entry)
        if tested >= 10:
            break
    assert tested >= 5


# ----------------------------------------------------------------------------- edge cases
def test_small_cases(monaco_router: Router, monaco: RoadGraph) -> None:
    """n = 0, origin = destination, bad n and parameters, no hierarchy, no route, other
    profiles, metrics and algorithms."""
    routes = monaco_router.alternatives(A, B, 0)
    assert len(routes) == 1 and routes[0].cost == monaco_router.route(A, B).cost
    assert monaco_router.alternatives(A, A, 2)[0].cost == pytest.approx(0.0, abs=1e-9)
    assert len(monaco_router.alternatives(A, A, 2)) == 1
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="integer"):
            monaco_router.alternatives(A, B, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_stretch"):
        AlternativeParams(max_stretch=0.9)
    with pytest.raises(ValueError, match="max_sharing"):
        AlternativeParams(max_sharing=1.5)
    with pytest.raises(ValueError, match="hierarchy"):
        Router(monaco, cch=False).alternatives(A, B)
    # no route (as the router says): no alternative either
    found = monaco_router.route(A, B)
    router = Router(monaco, cch=monaco_router.cch, overlay=monaco_router.overlay)
    router.route = lambda *args, **kwargs: Unreachable(  # type: ignore[method-assign]
        found.origin, found.destination, "time")
    assert router.alternatives(A, B, 2) == []
    # other weights (ambulance, distance) and the other algorithms' best routes
    for kwargs in ({"profile": "ambulance"}, {"metric": "distance"},
                   {"algorithm": "dijkstra"}):
        routes = monaco_router.alternatives(A, B, 2, **kwargs)
        W = monaco_router.weights(kwargs.get("profile", "car"),
                                  kwargs.get("metric", "time"))
        for alt in routes[1:]:
            np.testing.assert_allclose(recompute_route_cost(alt, W.values, W.turn, monaco),
                                       alt.cost, rtol=1e-9)
            assert alt.metric == W.metric and alt.profile == W.profile


def test_stricter_parameters_never_give_more(monaco_router: Router, monaco: RoadGraph) -> None:
    W = monaco_router.weights("car")
    strict = AlternativeParams(max_stretch=1.1, max_sharing=0.5)
    for origin, destination in _points(monaco, W, 30, seed=3):
        best = monaco_router.route(origin, destination)
        if not isinstance(best, Route):
            continue
        found = search_alternatives(monaco_router, best, W, 3, strict)
        for alt in found.routes[1:]:
            assert alt.cost <= 1.1 * best.cost * (1 + 1e-9)
            assert _shared(alt, found.routes[:alt.extra["alternative"]["rank"]], W) \
                <= 0.5 * best.cost * (1 + 1e-9) + 1e-9
        assert found.stats["accepted"] == len(found.routes) - 1
        assert found.stats["examined"] <= strict.max_examined


def test_kernel_on_a_ladder() -> None:
    """Two corridors from s to the destination road (3): upper s=0 -> 1 -> 2 (cost 10 with
    the last turn), lower 0 -> 4 -> 5 (12), and a rung 1 -> 4. The alternative is the lower
    corridor, sharing nothing; with the lower corridor at 16 (and 15 through the rung:
    stretch 1.5) there is none. The workspace is left clean."""
    from engine.cch import CCHIndex

    class Ladder:
        tail = np.array([0, 0, 1, 1, 2, 4, 5], dtype=np.int32)
        head = np.array([1, 4, 2, 4, 3, 5, 3], dtype=np.int32)
        first_out = np.array([0, 2, 4, 5, 5, 6, 7], dtype=np.int32)
        n_nodes, n_edges = 6, 7

    g = Ladder()
    index = CCHIndex.build(g)
    for lower, expected in ((4.0, 12.0), (6.0, None)):
        w = np.array([3.0, lower, 4.0, 2.0, 3.0, 4.0, lower])
        metric = index.customize(w)
        ws = via.ViaWorkspace(6, 6, 7)
        res = via.via_alternatives(
            index.topology, metric, edge_head=g.head, group=np.arange(6, dtype=np.int32),
            group_weight=np.zeros(6), edge_extra=w, seeds=[0], seed_cost=[0.0],
            seed_start=[1.0], targets=[2, 5], target_cost=[3.0, lower], target_edge=[4, 6],
            target_end=[1.0, 1.0], best_cost=10.0, best_groups=[0, 1, 2, 3],
            best_lo=[1.0, 0.0, 0.0, 0.0], best_hi=[1.0, 1.0, 1.0, 1.0], best_edges=[0, 2, 4],
            best_nodes=[0, 1, 2], anchors=[], n=2, max_stretch=1.4, max_sharing=0.8, alpha=0.25,
            max_detour=1.4, max_examined=8, max_cell=10, ws=ws,
            query_ws=index.workspace())
        if expected is None:
            assert len(res.cost) == 0
        else:
            assert res.cost.tolist() == [expected]
            assert res.edges.tolist() == [1, 5] and res.first.tolist() == [0, 2]
            assert res.seed.tolist() == [0] and res.target.tolist() == [1]
            assert res.shared.tolist() == [0.0]
        assert res.stats[via.STATS.index("accepted")] == len(res.cost)
        assert np.isinf(ws.dist).all() and (ws.pred == -1).all() and not ws.flag.any()
        assert not ws.node_mark.any() and not ws.arc_mark.any() and not ws.group_seen.any()
        assert np.isinf(ws.cov[0]).all() and np.isinf(ws.cov[1]).all()
        assert np.isinf(ws.node_cost).all()


def test_no_kernel_compiles_on_a_request(monaco_router: Router) -> None:
    """The Router's warm-up compiled the alternatives kernel: a query compiles nothing."""
    from numba.core.dispatcher import Dispatcher

    from engine.cch import search

    def overloads() -> dict[str, int]:
        return {f"{mod.__name__}.{name}": len(obj.overloads) for mod in (via, search)
                for name, obj in vars(mod).items() if isinstance(obj, Dispatcher)}

    before = overloads()
    monaco_router.alternatives(A, B, 3)
    monaco_router.alternatives(A, B, 1, profile="ambulance")
    assert overloads() == before


# ----------------------------------------------------------------------------- the service
def _conforms(body, model) -> None:
    adapter = TypeAdapter(model)
    assert json.loads(adapter.dump_json(adapter.validate_python(body),
                                        exclude_unset=True)) == body


@pytest.fixture(scope="module")
def client(monaco):
    from api.app import create_app
    from api.settings import Settings
    from api.store import EmbeddedStore

    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(None))
    with TestClient(app) as c:
        yield c


def test_v1_route_alternatives(client: TestClient) -> None:
    from api.models import routing as routing_models

    plain = client.post("/v1/route", json={"origin": [A[1], A[0]],
                                            "destination": [B[1], B[0]]}).json()
    assert "alternatives" not in plain
    body = client.post("/v1/route", json={"origin": [A[1], A[0]], "destination": [B[1], B[0]],
                                           "alternatives": 3}).json()
    _conforms(body, routing_models.RouteResponse)
    assert body["duration_s"] == plain["duration_s"]
    alts = body["alternatives"]
    assert 1 <= len(alts) <= 3
    for k, alt in enumerate(alts, start=1):
        assert alt["alternative"]["rank"] == k
        assert 1.0 <= alt["alternative"]["stretch"] <= 1.4
        assert alt["alternative"]["shared"] <= 0.8
        assert alt["duration_s"] >= body["duration_s"]
        assert alt["signal_plan"] is not None and alt["steps"]
    for bad in (4, -1, 1.5):
        answer = client.post("/v1/route", json={"origin": [A[1], A[0]],
                                                 "destination": [B[1], B[0]],
                                                 "alternatives": bad})
        assert answer.status_code == 422


def test_osrm_alternatives(client: TestClient) -> None:
    from api.models import osrm as osrm_models

    url = f"/route/v1/driving/{A[1]},{A[0]};{B[1]},{B[0]}"
    one = client.get(url, params={"overview": "full", "steps": "true"}).json()
    assert len(one["routes"]) == 1
    for value, most in (("true", 1), ("2", 2), ("3", 3), ("false", 0), ("0", 0)):
        body = client.get(url, params={"alternatives": value, "overview": "full",
                                       "steps": "true", "geometries": "geojson"}).json()
        _conforms(body, osrm_models.RouteResponse)
        routes = body["routes"]
        assert 1 <= len(routes) <= 1 + most
        assert routes[0]["duration"] == one["routes"][0]["duration"]
        for r in routes[1:]:
            assert r["duration"] >= routes[0]["duration"]
            assert r["geometry"]["coordinates"] != routes[0]["geometry"]["coordinates"]
            assert len(r["legs"]) == 1 and r["legs"][0]["steps"]
    assert len(client.get(url, params={"alternatives": "3"}).json()["routes"]) > 1
    # several waypoints: OSRM computes alternatives for two coordinates only
    three = client.get(f"{url};7.4200,43.7350", params={"alternatives": "2"}).json()
    assert len(three["routes"]) == 1


def test_leaflet_routing_machine_request(client: TestClient) -> None:
    """The request Leaflet Routing Machine 3.2 sends (``L.Routing.OSRMv1.buildRouteUrl``:
    ``overview=false&alternatives=true&steps=true&hints=;``) and what it reads back
    (``_routeDone`` / ``_convertRoute``): every route's line is its steps' polylines joined,
    from the origin to the destination, with depart and arrive maneuvers; the second route
    is the alternative it draws in grey."""
    import polyline

    url = (f"/route/v1/driving/{A[1]},{A[0]};{B[1]},{B[0]}"
           "?overview=false&alternatives=true&steps=true&hints=;")
    body = client.get(url).json()
    assert body["code"] == "Ok" and len(body["waypoints"]) == 2
    routes = body["routes"]
    assert len(routes) == 2, "LRM asks for one alternative"
    lines = []
    for route in routes:
        assert "geometry" not in route  # overview=false: LRM joins the steps' geometries
        coords = [p for leg in route["legs"] for step in leg["steps"]
                  for p in polyline.decode(step["geometry"], 5)]
        types = [step["maneuver"]["type"] for step in route["legs"][0]["steps"]]
        assert types[0] == "depart" and types[-1] == "arrive"
        assert haversine(coords[0], A) < 30 and haversine(coords[-1], B) < 30
        lines.append(coords)
    assert lines[0] != lines[1]
    assert routes[1]["duration"] >= routes[0]["duration"]


def haversine(p: tuple[float, float], q: tuple[float, float]) -> float:
    from engine.graph import haversine_m

    return float(haversine_m(p[0], p[1], q[0], q[1]))


def test_dispatch_alternatives(client: TestClient) -> None:
    """``POST /v1/dispatch`` with ``alternatives``: alternative routes to the chosen hospital,
    from the decision's route, under the same (ambulance) weights."""
    from api.models import routing as routing_models

    body = client.post("/v1/dispatch", json={"incident": [A[1], A[0]], "alternatives": 2,
                                              "need": {"bed_type": "AdultICU"},
                                              "register": False}).json()
    _conforms(body, routing_models.DispatchResponse)
    route = body["route"]
    assert len(body["alternatives"]) <= 2
    for alt in body["alternatives"]:
        assert alt["profile"] == "ambulance" and alt["weights_version"] == route["weights_version"]
        assert alt["origin"] == route["origin"] and alt["destination"] == route["destination"]
        assert route["duration_s"] <= alt["duration_s"] <= 1.4 * route["duration_s"] + 1e-6
    plain = client.post("/v1/dispatch", json={"incident": [A[1], A[0]], "register": False,
                                               "need": {"bed_type": "AdultICU"}}).json()
    assert "alternatives" not in plain
