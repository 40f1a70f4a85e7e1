"""The grid behind snapping (engine.kernels.nearest) against brute force over every segment,
and the Snapper on a real extract against the same brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernels.nearest import build_grid, nearest_edges, nearest_segments
from engine.profiles import car_weights
from engine.snap import Snapper


def brute(ax, ay, bx, by, px, py, ok):
    """Squared distance from the point to every segment (inf where not usable), and t."""
    dx, dy = bx - ax, by - ay
    den = dx * dx + dy * dy
    t = np.where(den > 0, ((px - ax) * dx + (py - ay) * dy) / np.where(den > 0, den, 1), 0.0)
    t = np.clip(t, 0.0, 1.0)
    d2 = (ax + t * dx - px) ** 2 + (ay + t * dy - py) ** 2
    return np.where(ok, d2, np.inf), t


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 300), cell=st.sampled_from([8.0, 64.0]),
       radius=st.sampled_from([50.0, 400.0, np.inf]))
def test_grid_matches_brute_force(seed: int, n: int, cell: float, radius: float) -> None:
    rng = np.random.default_rng(seed)
    ax, ay = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    # short and long segments, some of zero length, some sharing end points (ties)
    ln = rng.choice([0.0, 5.0, 40.0, 300.0], n)
    ang = rng.uniform(0, 2 * np.pi, n)
    bx, by = ax + ln * np.cos(ang), ay + ln * np.sin(ang)
    share = rng.random(n) < 0.2
    ax[share], ay[share] = ax[0], ay[0]
    edge = rng.integers(0, max(1, n // 2), n).astype(np.int32)  # several segments per edge
    m = int(edge.max()) + 1
    twin = np.full(m, -1, dtype=np.int32)
    usable = rng.random(m) < 0.7
    grid = build_grid(ax, ay, bx, by, cell)
    for _ in range(20):
        px, py = rng.uniform(-100, 1100, 2)
        if rng.random() < 0.2:
            px, py = ax[0], ay[0]  # on a shared end point: ties
        segs, ts, d2 = nearest_segments(grid, px, py, radius, edge, twin, usable,
                                        max_ties=n + 1)
        want, t = brute(ax, ay, bx, by, px, py, usable[edge])
        best = want.min()
        if not np.isfinite(best) or best > radius * radius:
            assert len(segs) == 0
            continue
        assert len(segs) >= 1
        np.testing.assert_allclose(d2[0], best, rtol=1e-9, atol=1e-9)
        ties = set(np.flatnonzero(want <= best + 1e-6).tolist())
        assert set(segs.tolist()) == ties
        few = nearest_segments(grid, px, py, radius, edge, twin, usable, max_ties=2)[0]
        assert 1 <= len(few) <= 2 and set(few.tolist()) <= ties  # capped ties: a subset
        for s, u in zip(segs, ts, strict=True):  # the position along the segment agrees
            np.testing.assert_allclose(
                [ax[s] + u * (bx[s] - ax[s]), ay[s] + u * (by[s] - ay[s])],
                [ax[s] + t[s] * (bx[s] - ax[s]), ay[s] + t[s] * (by[s] - ay[s])],
                atol=1e-6)


def brute_edges(d2: np.ndarray, edge: np.ndarray, radius: float) -> dict[int, float]:
    """Per edge within ``radius``: the squared distance of its nearest segment."""
    best: dict[int, float] = {}
    for s in np.flatnonzero(np.isfinite(d2) & (d2 <= radius * radius)).tolist():
        e = int(edge[s])
        best[e] = min(best.get(e, np.inf), float(d2[s]))
    return best


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 300), cell=st.sampled_from([8.0, 64.0]),
       radius=st.sampled_from([50.0, 400.0, np.inf]), k=st.sampled_from([1, 2, 5, 40]))
def test_k_nearest_edges_match_brute_force(seed: int, n: int, cell: float, radius: float,
                                           k: int) -> None:
    rng = np.random.default_rng(seed)
    ax, ay = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    ln = rng.choice([0.0, 5.0, 40.0, 300.0], n)
    ang = rng.uniform(0, 2 * np.pi, n)
    bx, by = ax + ln * np.cos(ang), ay + ln * np.sin(ang)
    share = rng.random(n) < 0.2
    ax[share], ay[share] = ax[0], ay[0]
    edge = rng.integers(0, max(1, n // 2), n).astype(np.int32)  # several segments per edge
    m = int(edge.max()) + 1
    twin = np.full(m, -1, dtype=np.int32)
    usable = rng.random(m) < 0.7
    grid = build_grid(ax, ay, bx, by, cell)
    for _ in range(20):
        px, py = rng.uniform(-100, 1100, 2)
        if rng.random() < 0.2:
            px, py = ax[0], ay[0]  # on a shared end point: ties between edges
        segs, ts, d2 = nearest_edges(grid, px, py, radius, edge, twin, usable, k)
        want_d2, t = brute(ax, ay, bx, by, px, py, usable[edge])
        per_edge = brute_edges(want_d2, edge, radius)
        ranked = sorted(per_edge.values())
        assert len(segs) == min(k, len(per_edge))
        edges = edge[segs].tolist()
        assert len(set(edges)) == len(edges)  # one answer per edge
        assert np.all(np.diff(d2) >= 0)  # nearest first
        np.testing.assert_allclose(d2, ranked[:len(segs)], rtol=1e-9, atol=1e-6)
        for s, e, u, dist in zip(segs, edges, ts, d2, strict=True):
            assert dist == pytest.approx(per_edge[e], rel=1e-9, abs=1e-6)  # its nearest segment
            assert want_d2[s] == pytest.approx(per_edge[e], rel=1e-9, abs=1e-6)
            np.testing.assert_allclose(  # the position along the segment agrees
                [ax[s] + u * (bx[s] - ax[s]), ay[s] + u * (by[s] - ay[s])],
                [ax[s] + t[s] * (bx[s] - ax[s]), ay[s] + t[s] * (by[s] - ay[s])], atol=1e-6)
        if len(segs) < len(per_edge):  # every edge left out is at least as far as the last
            left = [v for e, v in per_edge.items() if e not in set(edges)]
            assert min(left) >= d2[-1] - 1e-6
        if len(segs):  # the first answer is the nearest segment of every kind
            one = nearest_segments(grid, px, py, radius, edge, twin, usable)[2]
            assert d2[0] == pytest.approx(one[0], rel=1e-9, abs=1e-9)


def test_snapper_on_monaco_matches_brute_force(monaco) -> None:
    s = Snapper(monaco)
    usable = np.isfinite(car_weights(monaco))
    rng = np.random.default_rng(3)
    e = s.seg_edge
    tw = monaco.twin[e]
    ok = usable[e] | ((tw >= 0) & usable[np.maximum(tw, 0)])
    for _ in range(500):
        lat, lon = rng.uniform(43.72, 43.76), rng.uniform(7.40, 7.45)
        px, py = s._project(lat, lon)
        d2, _ = brute(s.ax, s.ay, s.bx, s.by, px, py, ok)
        if np.sqrt(d2.min()) > 500:
            continue
        snap = s.snap(lat, lon, usable=usable, radius_m=500)
        # the snap's own distance is great-circle; the projection differs by < 0.1 %
        assert abs(snap.distance_m - np.sqrt(d2.min())) <= 0.5 + 1e-3 * snap.distance_m
        assert ok[np.flatnonzero(e == snap.edge)].any()


def test_snapper_nearest_on_monaco(monaco) -> None:
    """``Snapper.nearest``: distinct road pieces, nearest first, the first one is ``snap``'s,
    and each piece's distance is brute force's for that piece."""
    s = Snapper(monaco)
    usable = np.isfinite(car_weights(monaco))
    rng = np.random.default_rng(4)
    e = s.seg_edge
    tw = monaco.twin[e]
    ok = usable[e] | ((tw >= 0) & usable[np.maximum(tw, 0)])
    for _ in range(200):
        lat, lon = rng.uniform(43.72, 43.76), rng.uniform(7.40, 7.45)
        px, py = s._project(lat, lon)
        d2, _ = brute(s.ax, s.ay, s.bx, s.by, px, py, ok)
        per_edge = brute_edges(d2, e, 300.0)
        found = s.nearest(lat, lon, 8, usable=usable, radius_m=300.0)
        assert len(found) == min(8, len(per_edge))
        if not found:
            continue
        assert len({snap.edge for snap in found}) == len(found)
        distances = [snap.distance_m for snap in found]
        assert distances == sorted(distances) or np.allclose(distances, sorted(distances),
                                                             atol=0.5)
        for snap in found:
            assert abs(snap.distance_m - np.sqrt(per_edge[snap.edge])) <= (
                0.5 + 1e-3 * snap.distance_m)
            a, b = snap.segment
            assert (s.seg_a[e == snap.edge] == a).any() and (s.seg_b[e == snap.edge] == b).any()
        one = s.snap(lat, lon, usable=usable, radius_m=300.0)
        assert found[0].distance_m == pytest.approx(one.distance_m, abs=1e-6)
        assert s.nearest(lat, lon, 1, usable=usable, radius_m=300.0) == found[:1]


def test_scalar_haversine_is_the_vectorised_one():
    """A snap measures its distance with the scalar twin of ``haversine_m``: the same
    formula in Python floats, so the same value."""
    from engine.graph import haversine_m, haversine_one

    rng = np.random.default_rng(4)
    pts = rng.uniform([-89, -180, -89, -180], [89, 180, 89, 180], size=(20_000, 4))
    vec = haversine_m(pts[:, 0], pts[:, 1], pts[:, 2], pts[:, 3])
    one = np.array([haversine_one(*map(float, p)) for p in pts])
    np.testing.assert_allclose(one, vec, rtol=1e-12, atol=1e-6)
    assert haversine_one(43.7, 7.4, 43.7, 7.4) == 0.0
