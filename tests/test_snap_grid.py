"""The grid behind snapping (engine.kernels.nearest) against brute force over every segment,
and the Snapper on a real extract against the same brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernels.nearest import build_grid, nearest_segments
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
