"""gyrophare against OSRM (car.lua, CH), in one process, on the same coordinate pairs.

Usage (the Python 3.12 venv with the ``bench-osrm`` extra, from the repository root)::

    .venv312/bin/python benchmarks/bench_osrm.py
    .venv312/bin/python benchmarks/bench_osrm.py \\
        --osm ../shared/data/osm/monaco_osrm-bindings.osm.pbf --pairs 1000 --seed 42 \\
        --out benchmarks/results/osrm-monaco.md

Why: gyrophare's car profile is meant to behave like OSRM's stock ``car.lua`` (speeds per
highway class, turn penalties, signals; ``engine/profiles.py`` "Turn model",
``engine/extract/tags.py``), because OSRM is what dispatch front ends are used to. This script
measures how far the two engines' ETAs are apart on the same trips, takes the gap apart, and
times both engines on identical queries.

1. **Pairs.** ``--pairs`` origin/destination pairs (seed ``--seed``), each point on a
   car-usable road of the extract: a random road piece (probability proportional to its
   length), a random position between 10 % and 90 % of its length (away from junctions, so
   neither engine has a tie to break), optionally moved up to ``--jitter`` metres. Both
   engines thus snap to the same street unless one of them moves the point (a road cut off
   from its main network); pairs one engine cannot route are counted with the reason.
2. **ETAs.** Ratios gyrophare/OSRM of durations and distances (median, p10, p90, share within
   ±10 % / ±25 %) on all pairs and on three disjoint groups: *same roads* (identical sequences
   of OSM node ids, OSRM ``annotation.nodes`` vs ``Route.osm_nodes``, allowing one extra node
   at an end), *other roads from the same snapped points*, and *different snapped points*
   (> 5 m apart at an end). The gap is split per route into three additive parts:

   * **speeds**: on OSRM's own segments, time at gyrophare's speed for that segment (the
     gyrophare edge with the same two OSM nodes, same direction) minus OSRM's segment
     duration; also tabulated per highway class and speed source (``maxspeed`` or default);
   * **turns**: gyrophare ``Route.turn_delay_s`` minus OSRM's turn time, which OSRM does not
     report: its route duration minus the sum of ``annotation.duration`` (segments only);
   * **route & ends**: the rest of the driving-time gap (other roads, other snapped points).

   Per turn, on the same-roads pairs: OSRM routes the same path again through a waypoint in
   the middle of every road of it (``continue_straight``), so each leg holds one junction and
   its duration minus its segment durations is OSRM's cost of that turn, set against
   gyrophare's cost of the same turn arc, grouped by kind (angle, roundabout, signal).
   Where the roads differ from the same snapped points, each engine prices the other's path:
   gyrophare by routing with every road off OSRM's path closed (its own turn costs kept),
   OSRM through waypoints on every road of gyrophare's path; a priced path counts only when
   it comes out with the identical node sequence. Snapping differences are sorted by which
   engine moved the point. The pairs with the biggest gaps get a one-line explanation.
3. **Timing**, interleaved pair by pair (rotating order) on the same pairs after a warm-up:
   (a) a full route, coordinates in, geometry + steps + OSM nodes out: OSRM's raw
   ``engine.Route`` (steps, GeoJSON, ``annotations=nodes``, ``overview=full``; parameters
   built in the timed region; the ``osrm.Object`` result is *not* converted to Python, which
   costs 4-6x the query) vs ``Router.route``; (b) duration only: OSRM's 1x1 table vs
   ``Router.table([a], [b])``. ``Router`` caches snaps per coordinate (hospitals and stations
   repeat), so that cache is cleared (untimed) before every gyrophare call: both engines snap
   every time; the figure with the cache warm (``Router.snap`` of both points just before)
   is shown for information. ``os.getloadavg()`` is recorded at the start and the end.
4. Markdown tables are printed and written to ``--out`` (``benchmarks/_common.emit``).

Both engines run in this process, single-threaded calls. Not imported by the tests.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _osrm
from _common import emit

from engine import PointOffNetwork, Route, Router, Unreachable, load_graph
from engine.extract import tags
from engine.graph import RoadGraph, haversine_m
from engine.profiles import CAR_TURNS, Weights
from engine.turns import ARC_GIVE_WAY, ARC_ROUNDABOUT, ARC_SIGNAL, ARC_STOP, ARC_UTURN

REPO = Path(__file__).resolve().parent.parent
LatLon = tuple[float, float]
Pair = tuple[LatLon, LatLon]
#: OSRM annotations of the analysis call (not the timed one)
ANALYSIS_ANNOTATIONS = ("nodes", "duration", "distance", "weight")
#: both engines' snapped points farther apart than this (at an end): "different snaps"
SNAP_GAP_M = 5.0
#: a road shorter than this gets no via waypoint when OSRM re-routes a path (the leg around
#: it then holds two turns)
VIA_MIN_M = 2.0
#: a turn whose two costs differ by at most this much "agrees" (OSRM rounds to 0.1 s)
TURN_TOL_S = 0.3
#: an OSRM turn cost in this range is its U-turn (20 s + up to 7.5 s for the angle, maybe a
#: signal); at or above the upper bound it is car.lua's 60 s gate penalty
OSRM_UTURN_S = (20.0, 50.0)


# ------------------------------------------------------------------------------------ inputs
def default_pbf() -> Path:
    """The Monaco extract of OSRM's own tests in the shared data directory
    (``$GYROPHARE_DATA_DIR`` or ``<repo>/../shared/data``)."""
    env = os.environ.get("GYROPHARE_DATA_DIR")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    return root / "osm" / "monaco_osrm-bindings.osm.pbf"


def git_head() -> str:
    """Short HEAD commit, with a note when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty.strip() else "")


def _point_along(g: RoadGraph, e: int, share: float) -> LatLon:
    """The point ``share`` (0..1) of the way along edge ``e``'s geometry."""
    pts = g.edge_points(e)
    lat, lon = g.point_lat[pts], g.point_lon[pts]
    seg = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    at = share * cum[-1]
    k = int(min(np.searchsorted(cum, at, side="right") - 1, len(seg) - 1))
    t = (at - cum[k]) / seg[k] if seg[k] > 0 else 0.0
    return (float(lat[k] + t * (lat[k + 1] - lat[k])), float(lon[k] + t * (lon[k + 1] - lon[k])))


def random_pairs(g: RoadGraph, n: int, seed: int, jitter_m: float = 0.0) -> list[Pair]:
    """``n`` pairs of points on car-usable roads (see the module docstring)."""
    rng = np.random.default_rng(seed)
    e = np.arange(g.n_edges)
    car = g.car_allowed() & (g.highway != tags.HIGHWAY_CODE["barrier"]) & (g.length_m > 1.0)
    twin = g.twin.astype(np.int64)
    # one entry per road piece: a two-way piece once, a one-way one in its legal direction
    twin_car = (twin >= 0) & car[np.maximum(twin, 0)]
    pieces = e[car & (~twin_car | (e < twin))]
    p = g.length_m[pieces] / g.length_m[pieces].sum()

    def point() -> LatLon:
        lat, lon = _point_along(g, int(rng.choice(pieces, p=p)), float(rng.uniform(0.1, 0.9)))
        if jitter_m > 0:
            r, a = jitter_m * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
            lat += r * math.cos(a) / 111_195.0
            lon += r * math.sin(a) / (111_195.0 * math.cos(math.radians(lat)))
        return (round(lat, 7), round(lon, 7))

    return [(point(), point()) for _ in range(n)]


# ------------------------------------------------------------------------------ per engine
@dataclass
class GyroResult:
    """What the analysis needs from one gyrophare route."""

    ok: bool
    reason: str = ""
    duration: float = math.nan
    distance: float = math.nan
    turn: float = math.nan
    nodes: list[int] = field(default_factory=list)
    ends: list[tuple[float, float, float]] = field(default_factory=list)  #: lat, lon, dist
    fallback: tuple[bool, bool] = (False, False)  #: end moved off a cut-off road
    names: dict[str, float] = field(default_factory=dict)  #: street -> metres
    destination_roads: list[str] = field(default_factory=list)  #: access=destination crossed
    route: Route | None = None


@dataclass
class OsrmResult:
    """What the analysis needs from one OSRM route (converted to Python)."""

    ok: bool
    reason: str = ""
    duration: float = math.nan
    distance: float = math.nan
    weight: float = math.nan
    seg_duration: float = math.nan  #: sum of ``annotation.duration``: driving, no turns
    nodes: list[int] = field(default_factory=list)
    segs: list[tuple[int, int, float, float]] = field(default_factory=list)  #: a, b, m, s
    ends: list[tuple[float, float, float]] = field(default_factory=list)  #: lat, lon, dist
    names: dict[str, float] = field(default_factory=dict)

    @property
    def turn(self) -> float:
        return self.duration - self.seg_duration


def gyro_route(router: Router, a: LatLon, b: LatLon) -> GyroResult:
    """gyrophare's car route with the figures the comparison reads."""
    try:
        res = router.route(a, b)
    except PointOffNetwork as exc:
        return GyroResult(False, f"off network: {exc}")
    if isinstance(res, Unreachable):
        return GyroResult(False, f"isolated {res.isolated}" if res.isolated else "no path")
    g = router.graph
    names: dict[str, float] = defaultdict(float)
    for s in res.steps:
        names[s.name] += s.distance_m
    edges = np.asarray(res.edges, dtype=np.int64)
    dest = (g.flags[edges] & np.uint32(tags.F_DESTINATION)) != 0
    crossed = [] if dest[0] or dest[-1] else sorted(
        {g.edge_name(int(e)) or f"way {g.way_id[e]}" for e in edges[dest]})
    return GyroResult(
        True, duration=res.duration_s, distance=res.distance_m, turn=res.turn_delay_s,
        nodes=list(res.osm_nodes),
        ends=[(s.lat, s.lon, s.distance_m) for s in (res.origin, res.destination)],
        fallback=(res.origin.fallback is not None, res.destination.fallback is not None),
        names=dict(names), destination_roads=crossed, route=res)


def osrm_route(engine: Any, a: LatLon, b: LatLon) -> OsrmResult:
    """OSRM's car route, converted to Python (outside any timed region)."""
    try:
        res = _osrm.route(engine, a, b, steps=True, geometry="geojson",
                          annotations=ANALYSIS_ANNOTATIONS, overview="false")
    except RuntimeError as exc:
        return OsrmResult(False, str(exc).split(" - ")[0])
    r = res["routes"][0]
    nodes: list[int] = []
    segs: list[tuple[int, int, float, float]] = []
    names: dict[str, float] = defaultdict(float)
    seg_dur = 0.0
    for leg in r["legs"]:
        ann = leg["annotation"]
        ln = ann["nodes"]
        nodes.extend(ln if not nodes else ln[1:] if ln[:1] == nodes[-1:] else ln)
        for k, (d, t) in enumerate(zip(ann["distance"], ann["duration"], strict=True)):
            segs.append((ln[k], ln[k + 1], float(d), float(t)))
        seg_dur += float(sum(ann["duration"]))
        for s in leg["steps"]:
            names[s["name"]] += float(s["distance"])
    ends = [(w["location"][1], w["location"][0], float(w["distance"])) for w in res["waypoints"]]
    return OsrmResult(True, duration=float(r["duration"]), distance=float(r["distance"]),
                      weight=float(r["weight"]), seg_duration=seg_dur, nodes=nodes, segs=segs,
                      ends=ends, names=dict(names))


def same_roads(a: Sequence[int], b: Sequence[int]) -> bool:
    """Identical OSM node sequences, allowing one extra node at either end of either one
    (gyrophare lists the node beyond a snapped point lying within ~0.5 m of a node; OSRM,
    whose coordinates are fixed-point, puts the point on the node and does not)."""
    if list(a) == list(b):
        return True
    for a0 in (0, 1):
        for a1 in (0, 1):
            for b0 in (0, 1):
                for b1 in (0, 1):
                    if (a0 and b0) or (a1 and b1) or not (a0 or a1 or b0 or b1):
                        continue
                    x, y = a[a0:len(a) - a1], b[b0:len(b) - b1]
                    if len(x) >= 2 and list(x) == list(y):
                        return True
    return False


# ------------------------------------------------------------------- the other's path
def segment_index(g: RoadGraph) -> dict[tuple[int, int], int]:
    """``(OSM node, next OSM node)`` -> the gyrophare edge driving that segment in that
    direction (a car-usable edge when there are several)."""
    car = g.car_allowed()
    out: dict[tuple[int, int], int] = {}
    ids = g.point_osm_id[g.geom_point]
    for e in np.argsort(~car, kind="stable"):  # car-usable edges first: they win
        lo, hi = int(g.geom_offset[e]), int(g.geom_offset[e + 1])
        for k in range(lo, hi - 1):
            out.setdefault((int(ids[k]), int(ids[k + 1])), int(e))
    return out


def gyro_on_path(router: Router, W: Weights, index: dict[tuple[int, int], int], a: LatLon,
                 b: LatLon, o: OsrmResult) -> float | None:
    """gyrophare's duration (its speeds and turn costs) of OSRM's path, or ``None`` when it
    does not reproduce that path (a segment gyrophare lacks or forbids, another snap)."""
    w = np.full(router.graph.n_edges, np.inf)
    for u, v, _, _ in o.segs:
        e = index.get((u, v))
        if e is None or not np.isfinite(W.values[e]):
            return None
        w[e] = W.values[e]
    try:
        res = router.route(a, b, weights=w, algorithm="dijkstra")
    except PointOffNetwork:
        return None
    if not isinstance(res, Route) or not same_roads(res.osm_nodes, o.nodes):
        return None
    return res.duration_s


@dataclass
class Via:
    """OSRM re-routing gyrophare's path through a waypoint on each of its roads."""

    duration: float
    weight: float
    #: per OSRM leg: (gyrophare turn arcs inside it, OSRM turn seconds inside it)
    legs: list[tuple[list[int], float]]


def osrm_via(engine: Any, g: RoadGraph, a: LatLon, b: LatLon, gr: GyroResult) -> Via | None:
    """OSRM along gyrophare's path (waypoints in the middle of every road of it at least
    :data:`VIA_MIN_M` long, going straight through them), or ``None`` if OSRM's node
    sequence comes out different."""
    route = gr.route
    if route is None or route.legs is None:
        return None
    E, S, T_ = route.legs
    arcs = list(route.turn_arcs)  # arcs[k - 1] enters leg k
    inner = [k for k in range(1, len(E) - 1)
             if S[k] == 0.0 and T_[k] == 1.0 and g.length_m[E[k]] >= VIA_MIN_M]
    coords = [a, *(_point_along(g, int(E[k]), 0.5) for k in inner), b]
    params = sys.modules["osrm"].RouteParameters(
        coordinates=[(p[1], p[0]) for p in coords], annotations=["nodes", "duration"],
        overview="false", continue_straight=True, generate_hints=False)
    try:
        res = _osrm.to_python(engine.Route(params))
    except RuntimeError:
        return None
    r = res["routes"][0]
    nodes: list[int] = []
    bounds = [0, *inner, len(E) - 1]
    legs: list[tuple[list[int], float]] = []
    for j, leg in enumerate(r["legs"]):
        ln = [int(x) for x in leg["annotation"]["nodes"]]
        k = next((k for k in (2, 1) if len(nodes) >= k and nodes[-k:] == ln[:k]), 0)
        nodes.extend(ln[k:])
        turn = float(leg["duration"]) - float(sum(leg["annotation"]["duration"]))
        legs.append(([int(arcs[k - 1]) for k in range(bounds[j] + 1, bounds[j + 1] + 1)],
                     turn))
    if not same_roads(nodes, gr.nodes):
        return None
    return Via(float(r["duration"]), float(r["weight"]), legs)


def turn_kind(router: Router, W: Weights, arcs: list[int]) -> tuple[str, float]:
    """What kind of turn a span of gyrophare turn arcs is, and its angle (degrees)."""
    if len(arcs) != 1:
        return "two turns (a road < 2 m between them)", math.nan
    tg, g = router.turns, router.graph
    a = arcs[0]
    k, angle = int(tg.kind[a]), float(tg.angle[a])
    if k & ARC_UTURN:
        return "U-turn", angle
    control = (CAR_TURNS.signal_s * bool(k & ARC_SIGNAL) + CAR_TURNS.stop_s * bool(k & ARC_STOP)
               + CAR_TURNS.give_way_s * bool(k & ARC_GIVE_WAY))
    junction = float(W.turn[a]) - control > 1e-9  # the angle term only applies at junctions
    if k & ARC_ROUNDABOUT:
        ring = np.uint32(tags.F_ROUNDABOUT)
        r_in = bool(g.flags[tg.node_road[tg.tail[a]]] & ring)
        r_out = bool(g.flags[tg.node_road[tg.head[a]]] & ring)
        what = "round the ring" if r_in and r_out else "entering" if r_out else "leaving"
        return f"roundabout, {what}{'' if junction else ' (no junction)'}", angle
    if k & ARC_SIGNAL:
        return f"traffic signal{' at a junction' if junction else ', no junction'}", angle
    if k & (ARC_STOP | ARC_GIVE_WAY):
        return f"stop / give-way{' at a junction' if junction else ', no junction'}", angle
    if not junction:
        return "no junction (two roads meet)", angle
    size = abs(angle)
    if size < 20:
        return "junction, straight on (< 20°)", angle
    side = "right" if angle > 0 else "left"
    band = "20-60°" if size < 60 else "60-120°" if size < 120 else "≥ 120°"
    return f"junction, {side} {band}", angle


# --------------------------------------------------------------------------------- analysis
@dataclass
class Compared:
    """One pair routed by both engines, with the parts of its ETA gap."""

    i: int
    pair: Pair
    g: GyroResult
    o: OsrmResult
    same: bool  #: same roads (:func:`same_roads`)
    speed_delta: float  #: s: gyrophare speeds minus OSRM's on OSRM's segments
    speed_by_class: dict[str, float]  #: the same per highway class
    snap_gap: tuple[float, float]  #: metres between both engines' snapped points (o, d)
    g_on_o: float | None = None  #: gyrophare's duration of OSRM's path
    via: Via | None = None  #: OSRM along gyrophare's path
    #: same roads: turn-time gap per kind of turn (:func:`turn_kind`), and how many turns
    #: OSRM charged as a U-turn where gyrophare's turn is not one
    turn_by_kind: dict[str, float] = field(default_factory=dict)
    osrm_uturns: int = 0

    @property
    def ratio(self) -> float:
        return self.g.duration / self.o.duration if self.o.duration > 0 else math.nan

    @property
    def g_drive(self) -> float:
        return self.g.duration - self.g.turn

    @property
    def route_delta(self) -> float:
        """Driving-time gap not explained by speeds: other roads, other snapped ends."""
        return (self.g_drive - self.o.seg_duration) - self.speed_delta

    @property
    def snapped_apart(self) -> bool:
        return max(self.snap_gap) > SNAP_GAP_M


def speed_class(g: RoadGraph, e: int) -> tuple[str, str]:
    """``(highway class, speed source)`` of edge ``e``: ``maxspeed`` when its speed differs
    from the class default (that is how gyrophare set it), else ``default``."""
    cls = tags.HIGHWAY_CLASSES[int(g.highway[e])]
    src = "default" if abs(float(g.speed_kmh[e]) - tags.DEFAULT_SPEED_KMH[cls]) < 0.01 \
        else "maxspeed"
    return cls, src


@dataclass
class Tally:
    """Sums over OSRM segments (speeds) or turns."""

    n: int = 0
    metres: float = 0.0
    osrm_s: float = 0.0
    gyro_s: float = 0.0
    agree: int = 0
    angles: list[float] = field(default_factory=list)


def compare(i: int, pair: Pair, gr: GyroResult, orr: OsrmResult, g: RoadGraph,
            index: dict[tuple[int, int], int], car: np.ndarray,
            speed: dict[tuple[str, str], Tally]) -> Compared:
    """Take one pair's gap apart (adding its OSRM segments to the per-class ``speed``)."""
    delta = 0.0
    by_class: dict[str, float] = defaultdict(float)
    for u, v, d, t in orr.segs:
        e = index.get((u, v))
        if e is None or not car[e]:
            key, gt = ("(no car edge in gyrophare)", "-"), t
        else:
            key, gt = speed_class(g, e), d / (float(g.speed_kmh[e]) / 3.6)
            delta += gt - t
            by_class[f"{key[0]} ({key[1]})"] += gt - t
        row = speed[key]
        row.n += 1
        row.metres += d
        row.osrm_s += t
        row.gyro_s += gt
    gaps = [float(haversine_m(ge[0], ge[1], oe[0], oe[1]))
            for ge, oe in zip(gr.ends, orr.ends, strict=True)]
    return Compared(i, pair, gr, orr, same_roads(gr.nodes, orr.nodes), delta, dict(by_class),
                    (gaps[0], gaps[1]))


def snap_kind(c: Compared, end: int) -> str:
    """Which engine moved the point at ``end`` (0 origin, 1 destination)."""
    g_moved = c.g.fallback[end]
    o_moved = c.o.ends[end][2] > c.g.ends[end][2] + 1.0 if not g_moved else c.o.ends[end][2] > 1
    if g_moved and o_moved:
        return "both moved the point (nearest road cut off), to different roads"
    if g_moved:
        return ("gyrophare moved the point (nearest road cut off for its car), OSRM routes "
                "from the nearest road")
    if o_moved:
        return ("OSRM moved the point (nearest road outside its big strongly connected "
                "component, e.g. a one-way motorway cut by the extract's border), gyrophare "
                "routes from the nearest road")
    return "neither moved the point: another nearest road"


def _stats(x: Sequence[float]) -> tuple[float, float, float]:
    a = np.asarray(x, dtype=float)
    if not len(a):
        return (math.nan,) * 3
    return (float(np.median(a)), float(np.percentile(a, 10)), float(np.percentile(a, 90)))


def _mean(x: Sequence[float]) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def ratio_row(label: str, g: Sequence[float], o: Sequence[float]) -> str:
    gv, ov = np.asarray(g, dtype=float), np.asarray(o, dtype=float)
    ok = ov > 0
    r = gv[ok] / ov[ok]
    if not len(r):
        return f"| {label} | 0 | | | | | |"
    med, p10, p90 = _stats(r)
    w10 = float(np.mean(np.abs(r - 1) <= 0.10)) * 100
    w25 = float(np.mean(np.abs(r - 1) <= 0.25)) * 100
    return (f"| {label} | {len(r)} | {med:.3f} | {p10:.3f} | {p90:.3f} | {w10:.0f} % "
            f"| {w25:.0f} % |")


def top_names(mine: dict[str, float], theirs: dict[str, float], k: int = 2) -> str:
    """The streets one route drives much more than the other, longest first."""
    diff = sorted(((d - theirs.get(n, 0.0), n) for n, d in mine.items()
                   if d - theirs.get(n, 0.0) > 30.0), reverse=True)
    return ", ".join(f"{n or 'unnamed'} {d:.0f} m" for d, n in diff[:k])


def explain(c: Compared) -> str:
    """One line on why this pair's ETAs differ, biggest part first."""
    parts: list[tuple[float, str]] = []
    for end, name in ((0, "origin"), (1, "destination")):
        if c.snap_gap[end] > SNAP_GAP_M:
            who = snap_kind(c, end).split(" (")[0].split(",")[0]
            parts.append((1e9 - end, f"{name} snapped {c.snap_gap[end]:.0f} m apart: {who} "
                                     f"(gyrophare {c.g.ends[end][2]:.0f} m from the point, "
                                     f"OSRM {c.o.ends[end][2]:.0f} m)"))
    if abs(c.speed_delta) >= 1:
        cls = max(c.speed_by_class.items(), key=lambda kv: abs(kv[1]), default=("", 0.0))
        parts.append((abs(c.speed_delta),
                      f"speeds {c.speed_delta:+.0f} s on OSRM's roads (mostly {cls[0]} "
                      f"{cls[1]:+.0f} s)"))
    dturn = c.g.turn - c.o.turn
    if abs(dturn) >= 1:
        text = f"turns {c.g.turn:.0f} s vs {c.o.turn:.0f} s"
        if c.turn_by_kind:
            kind, d = max(c.turn_by_kind.items(), key=lambda kv: abs(kv[1]))
            text += f" (mostly {kind} {d:+.0f} s"
            if c.osrm_uturns:
                text += (f"; OSRM charges a U-turn at {c.osrm_uturns} turn(s) gyrophare "
                         "prices as ordinary")
            text += ")"
        parts.append((abs(dturn), text))
    if not c.same:
        via = [f"{who} via {names}" for who, names in (
            ("gyrophare", top_names(c.g.names, c.o.names)),
            ("OSRM", top_names(c.o.names, c.g.names))) if names]
        text = "other roads: " + ("; ".join(via) if via else "small detours")
        if c.g.destination_roads:
            text += (f"; gyrophare drives through access=destination "
                     f"{', '.join(c.g.destination_roads)}")
        if not c.snapped_apart:
            cross = []
            if c.g_on_o is not None:
                cross.append(f"gyrophare prices OSRM's path {c.g_on_o - c.g.duration:+.0f} s")
            if c.via is not None:
                cross.append(f"OSRM prices gyrophare's {c.via.duration - c.o.duration:+.0f} s"
                             f", weight {c.via.weight - c.o.weight:+.0f}")
            if cross:
                text += " (" + "; ".join(cross) + ")"
        parts.append((abs(c.route_delta) + 0.5, text))
    parts.sort(key=lambda p: -p[0])
    return "; ".join(p[1] for p in parts) or "rounding"


# ----------------------------------------------------------------------------------- timing
def time_pairs(pairs: Sequence[Pair], calls: dict[str, Callable[[LatLon, LatLon], object]],
               before: dict[str, Callable[[LatLon, LatLon], object]],
               warm: int) -> dict[str, np.ndarray]:
    """Milliseconds per call of every function in ``calls`` on every pair, interleaved pair by
    pair (rotating order), after ``warm`` untimed pairs (taken from the end of ``pairs``);
    ``before[name](a, b)`` runs untimed just before each call of ``name``."""
    names = list(calls)

    def nothing(a: LatLon, b: LatLon) -> None:
        return None

    for a, b in list(pairs[-warm:]) if warm else []:
        for name in names:
            before.get(name, nothing)(a, b)
            calls[name](a, b)
    out = {name: np.empty(len(pairs)) for name in names}
    for i, (a, b) in enumerate(pairs):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            before.get(name, nothing)(a, b)
            fn = calls[name]
            t0 = time.perf_counter_ns()
            fn(a, b)
            out[name][i] = (time.perf_counter_ns() - t0) / 1e6
    return out


def _load(t: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in t)


# ------------------------------------------------------------------------------ the study
@dataclass
class Study:
    """Both engines' answers on every pair, taken apart (what the report reads)."""

    pairs: list[Pair]
    compared: list[Compared] = field(default_factory=list)
    #: outcome -> OSRM's farthest snap distance on each failed pair (NaN if OSRM failed)
    failures: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    speed: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    turns: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    osrm_uturn: Tally = field(default_factory=Tally)  #: OSRM charged a U-turn, gyrophare not
    osrm_gate: Tally = field(default_factory=Tally)  #: OSRM charged car.lua's gate penalty
    turn_pairs: int = 0  #: same-roads pairs priced turn by turn

    @property
    def same(self) -> list[Compared]:
        return [c for c in self.compared if c.same]

    @property
    def other(self) -> list[Compared]:
        return [c for c in self.compared if not c.same and not c.snapped_apart]

    @property
    def apart(self) -> list[Compared]:
        return [c for c in self.compared if c.snapped_apart]

    def groups(self) -> list[tuple[str, list[Compared]]]:
        return [("all", self.compared), ("same roads", self.same),
                ("other roads, same snapped points", self.other),
                (f"snapped points > {SNAP_GAP_M:g} m apart", self.apart)]

    def add_turns(self, c: Compared, router: Router, W: Weights) -> None:
        """Tally a same-roads pair's turns, OSRM's cost of each against gyrophare's."""
        assert c.via is not None
        self.turn_pairs += 1
        by_kind: dict[str, float] = defaultdict(float)
        for arcs, osrm_s in c.via.legs:
            kind, angle = turn_kind(router, W, arcs)
            gyro_s = float(W.turn[arcs].sum())
            rows = [self.turns[kind]]
            if OSRM_UTURN_S[0] <= osrm_s < OSRM_UTURN_S[1] and kind != "U-turn":
                rows.append(self.osrm_uturn)
                c.osrm_uturns += 1
            elif osrm_s >= OSRM_UTURN_S[1]:
                rows.append(self.osrm_gate)
            for row in rows:
                row.n += 1
                row.gyro_s += gyro_s
                row.osrm_s += osrm_s
                row.agree += abs(gyro_s - osrm_s) <= TURN_TOL_S
                row.angles.append(angle)
            by_kind[kind] += gyro_s - osrm_s
        c.turn_by_kind = dict(by_kind)


def run_study(router: Router, engine: Any, pairs: list[Pair]) -> Study:
    """Route every pair with both engines and take each gap apart."""
    g = router.graph
    W = router.weights("car")
    index = segment_index(g)
    car = g.car_allowed()
    st = Study(pairs)
    for i, (a, b) in enumerate(pairs):
        gr = gyro_route(router, a, b)
        orr = osrm_route(engine, a, b)
        if not (gr.ok and orr.ok):
            what = ("both failed" if not gr.ok and not orr.ok else
                    f"gyrophare: {gr.reason}; OSRM routed" if not gr.ok else
                    f"OSRM: {orr.reason}; gyrophare routed")
            st.failures[what].append(max(e[2] for e in orr.ends) if orr.ok else math.nan)
            continue
        c = compare(i, (a, b), gr, orr, g, index, car, st.speed)
        if not c.snapped_apart:
            c.via = osrm_via(engine, g, a, b, gr)
            if not c.same:
                c.g_on_o = gyro_on_path(router, W, index, a, b, orr)
            elif c.via is not None:
                st.add_turns(c, router, W)
        st.compared.append(c)
    return st


def time_engines(router: Router, engine: Any, pairs: Sequence[Pair],
                 warm: int) -> dict[str, np.ndarray]:
    """Milliseconds per call of both engines' full route and duration-only calls."""
    pkg = sys.modules["osrm"]
    snaps = getattr(router, "_snaps", None)  # Router's per-coordinate snap cache

    def clear_snaps(a: LatLon, b: LatLon) -> None:
        if snaps is not None:
            snaps.clear()

    def warm_snaps(a: LatLon, b: LatLon) -> None:
        router.snap(a)
        router.snap(b)

    def osrm_full(a: LatLon, b: LatLon) -> object:
        return engine.Route(_osrm.route_params(a, b))

    def osrm_table(a: LatLon, b: LatLon) -> object:
        params = pkg.TableParameters(coordinates=[(a[1], a[0]), (b[1], b[0])], sources=[0],
                                     destinations=[1], generate_hints=False)
        params.skip_waypoints = True
        return engine.Table(params)["durations"][0][0]

    def gyro_table(a: LatLon, b: LatLon) -> object:
        return router.table([a], [b]).values[0, 0]

    def gyro_full(a: LatLon, b: LatLon) -> object:
        # steps are built when first read (Route.steps): read them, as OSRM builds its own
        r = router.route(a, b)
        return r.all_steps if isinstance(r, Route) else r

    gc.collect()
    out = time_pairs(
        pairs,
        {"osrm_route": osrm_full, "gyro_route": gyro_full,
         "gyro_route_cached": gyro_full, "osrm_table": osrm_table,
         "gyro_table": gyro_table},
        {"gyro_route": clear_snaps, "gyro_table": clear_snaps,
         "gyro_route_cached": warm_snaps}, warm)
    # a second pass: gyrophare's guidance table now knows the junctions of these routes (a
    # service's steady state; the first pass asked the rules about each junction once)
    again = time_pairs(pairs, {"osrm_route_2": osrm_full, "gyro_route_2": gyro_full},
                       {"gyro_route_2": clear_snaps}, 0)
    out.update(again)
    return out


# ------------------------------------------------------------------------------- report
def _worst(sub: Sequence[Compared], k: int) -> list[Compared]:
    """The ``k`` pairs with the largest ratio either way."""
    return sorted(sub, key=lambda c: -abs(math.log(c.ratio)) if c.ratio > 0 else 0.0)[:k]


def section_pairs(st: Study, fallback_radius_m: float) -> list[str]:
    same = st.same
    exact = sum(1 for c in same if c.g.nodes == c.o.nodes)
    n_fb = sum(c.g.fallback[0] + c.g.fallback[1] for c in st.compared)
    L = ["## Pairs", "", "| outcome | pairs | note |", "|---|---:|---|",
         f"| routed by both | {len(st.compared)} | |"]
    for what, dists in sorted(st.failures.items(), key=lambda kv: -len(kv[1])):
        d = np.asarray(dists)
        note = ""
        if np.isfinite(d).any():
            lo, hi = float(np.nanmin(d)), float(np.nanmax(d))
            span = f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}"
            note = (f"OSRM snapped it {span} m from the point (it has no snapping radius); "
                    f"gyrophare falls back at most {fallback_radius_m:.0f} m")
        L.append(f"| {what} | {len(d)} | {note} |")
    return [
        *L,
        f"| … same roads | {len(same)} | {exact} identical node sequences, "
        f"{len(same) - exact} with one extra node at an end in gyrophare's (a point within "
        "~0.5 m of a node) |",
        f"| … other roads from the same snapped points | {len(st.other)} | |",
        f"| … snapped points > {SNAP_GAP_M:g} m apart at an end | {len(st.apart)} | |",
        f"| gyrophare ends moved off a road cut off from its main network (fallback) "
        f"| {n_fb} | ends, among pairs routed by both |", ""]


def section_eta(st: Study) -> list[str]:
    same = st.same
    L = ["## ETA: gyrophare / OSRM", "",
         "| ratio gyrophare / OSRM | pairs | median | p10 | p90 | within ±10 % | "
         "within ±25 % |", "|---|---:|---:|---:|---:|---:|---:|"]
    L += [ratio_row(f"duration, {label}", [c.g.duration for c in sub],
                    [c.o.duration for c in sub]) for label, sub in st.groups()]
    L += [ratio_row(f"distance, {label}", [c.g.distance for c in sub],
                    [c.o.distance for c in sub]) for label, sub in st.groups()]
    return [
        *L,
        ratio_row("driving time (no turns), same roads",
                  [c.g_drive for c in same], [c.o.seg_duration for c in same]),
        ratio_row("turn time, same roads (OSRM turn time > 0)",
                  [c.g.turn for c in same if c.o.turn > 0],
                  [c.o.turn for c in same if c.o.turn > 0]), ""]


def section_gap(st: Study) -> list[str]:
    L = ["## Where the gap comes from (mean seconds per route, Δ = gyrophare − OSRM)", "",
         "Δ total = Δ speeds (gyrophare's edge speed vs OSRM's, on OSRM's own segments) "
         "+ Δ route & ends (the rest of the driving-time gap: other roads, other snapped "
         "points) + Δ turns (gyrophare `turn_delay_s` vs OSRM duration − Σ "
         "`annotation.duration`).", "",
         "| pairs | n | gyrophare s | OSRM s | Δ total | Δ speeds | Δ route & ends | "
         "Δ turns | gyrophare turns | OSRM turns |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, sub in st.groups():
        if sub:
            L.append(
                f"| {label} | {len(sub)} | {_mean([c.g.duration for c in sub]):.1f} "
                f"| {_mean([c.o.duration for c in sub]):.1f} "
                f"| {_mean([c.g.duration - c.o.duration for c in sub]):+.1f} "
                f"| {_mean([c.speed_delta for c in sub]):+.1f} "
                f"| {_mean([c.route_delta for c in sub]):+.1f} "
                f"| {_mean([c.g.turn - c.o.turn for c in sub]):+.1f} "
                f"| {_mean([c.g.turn for c in sub]):.1f} "
                f"| {_mean([c.o.turn for c in sub]):.1f} |")
    return [*L, ""]


def section_speeds(st: Study) -> list[str]:
    n_routes = max(len(st.compared), 1)
    L = ["## Speeds per road class, on OSRM's segments of all pairs routed by both", "",
         "Each OSRM segment (two consecutive OSM nodes, `annotation.distance` / `.duration`) "
         "is matched to the gyrophare edge through the same two nodes in the same direction. "
         "Speed source: how gyrophare set the edge's speed (a `maxspeed` tag, else the class "
         "default). car.lua drives at 0.8 × `maxspeed` where one is tagged, at the class "
         "default otherwise (then caps by surface, tracktype, smoothness).", "",
         "| class | speed source | km | segments | OSRM km/h | gyrophare km/h | "
         "gyrophare / OSRM speed | Δ s per route |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    rows = sorted(st.speed.items(), key=lambda kv: -kv[1].metres)
    tot = Tally(sum(r.n for _, r in rows), sum(r.metres for _, r in rows),
                sum(r.osrm_s for _, r in rows), sum(r.gyro_s for _, r in rows))
    for (cls, src), row in [*rows, (("**all**", ""), tot)]:
        if row.metres <= 0 or row.osrm_s <= 0 or row.gyro_s <= 0:
            continue
        vo, vg = row.metres / row.osrm_s * 3.6, row.metres / row.gyro_s * 3.6
        L.append(f"| {cls} | {src} | {row.metres / 1000:.1f} | {row.n} | {vo:.1f} | {vg:.1f} "
                 f"| {vg / vo:.3f} | {(row.gyro_s - row.osrm_s) / n_routes:+.2f} |")
    return [*L, ""]


def _turn_row(label: str, row: Tally, per_route: int) -> str:
    ang = np.asarray(row.angles, dtype=float)
    ang_txt = f"{np.nanmean(ang):+.0f}" if np.isfinite(ang).any() else ""
    return (f"| {label} | {row.n} | {ang_txt} | {row.gyro_s / row.n:.2f} "
            f"| {row.osrm_s / row.n:.2f} | {(row.gyro_s - row.osrm_s) / row.n:+.2f} "
            f"| {(row.gyro_s - row.osrm_s) / max(per_route, 1):+.2f} "
            f"| {row.agree / row.n * 100:.0f} % |")


def section_turns(st: Study) -> list[str]:
    if not st.turns:
        return []
    L = ["## Turn costs per turn, same-roads pairs", "",
         f"{st.turn_pairs} same-roads pairs re-routed by OSRM through a waypoint on every road "
         f"of the path (roads shorter than {VIA_MIN_M:g} m excepted): each OSRM leg holds one "
         "junction, and its duration minus its segment durations is OSRM's cost of that turn. "
         "gyrophare's cost is its turn arc's (`Weights.turn`). Angle: gyrophare's (positive = "
         f"right). Agree: within {TURN_TOL_S:g} s.", "",
         "| turn | turns | mean angle ° | gyrophare s | OSRM s | Δ s per turn | "
         "Δ s per route | agree |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = sorted(st.turns.items(), key=lambda kv: -kv[1].n)
    L += [_turn_row(kind, row, st.turn_pairs) for kind, row in rows]
    tot = Tally(sum(r.n for _, r in rows), 0.0, sum(r.osrm_s for _, r in rows),
                sum(r.gyro_s for _, r in rows), sum(r.agree for _, r in rows))
    L.append(_turn_row("**all**", tot, st.turn_pairs))
    for row, label in (
            (st.osrm_uturn, f"OSRM charged {OSRM_UTURN_S[0]:g}-{OSRM_UTURN_S[1]:g} s (its "
                            "U-turn penalty) where gyrophare's turn is no U-turn"),
            (st.osrm_gate, f"OSRM charged ≥ {OSRM_UTURN_S[1]:g} s (car.lua's 60 s penalty "
                           "for a `barrier=gate` / `lift_gate`; gyrophare passes gates free)")):
        if row.n:
            L.append(_turn_row(f"*of all: {label}*", row, st.turn_pairs))
    return [*L, ""]


def section_snapping(st: Study) -> list[str]:
    if not st.compared:
        return []
    gaps = np.array([max(c.snap_gap) for c in st.compared])
    dsnap = np.array([ge[2] - oe[2] for c in st.compared
                      for ge, oe in zip(c.g.ends, c.o.ends, strict=True)])
    L = ["## Snapping", "",
         "| measure | median | p90 | p99 | max | > 1 m | > 5 m |",
         "|---|---:|---:|---:|---:|---:|---:|",
         f"| distance between both engines' snapped points (worse end of a pair), m "
         f"| {np.median(gaps):.2f} | {np.percentile(gaps, 90):.2f} "
         f"| {np.percentile(gaps, 99):.2f} | {gaps.max():.1f} | {int((gaps > 1).sum())} "
         f"pairs | {int((gaps > 5).sum())} pairs |",
         f"| gyrophare snap distance − OSRM waypoint distance, m (per end) "
         f"| {np.median(dsnap):+.2f} | {np.percentile(dsnap, 90):+.2f} "
         f"| {np.percentile(dsnap, 99):+.2f} | {dsnap.max():+.1f} "
         f"| {int((np.abs(dsnap) > 1).sum())} ends | {int((np.abs(dsnap) > 5).sum())} ends |", ""]
    kinds: dict[str, list[float]] = defaultdict(list)
    for c in st.apart:
        for end in (0, 1):
            if c.snap_gap[end] > SNAP_GAP_M:
                kinds[snap_kind(c, end)].append(abs(c.g.duration - c.o.duration))
    if kinds:
        L += [f"Ends snapped more than {SNAP_GAP_M:g} m apart, by which engine moved the "
              "point:", "", "| what happened | ends | mean \\|Δ duration\\| of the pair, s |",
              "|---|---:|---:|"]
        L += [f"| {k} | {len(v)} | {_mean(v):.0f} |"
              for k, v in sorted(kinds.items(), key=lambda kv: -len(kv[1]))]
        L.append("")
    return L


def section_other(st: Study) -> list[str]:
    other = st.other
    if not other:
        return []
    g_worse = [c.g_on_o - c.g.duration for c in other if c.g_on_o is not None]
    o_worse = [c.via.duration - c.o.duration for c in other if c.via is not None]
    o_worse_w = [c.via.weight - c.o.weight for c in other if c.via is not None]
    dest = [c for c in other if c.g.destination_roads]
    return [
        "## Other roads from the same snapped points: each engine prices the other's", "",
        "gyrophare prices OSRM's path by routing with every other road closed (its own speeds "
        "and turn costs); OSRM prices gyrophare's through waypoints on each of its roads. "
        "Counted when the path comes out with the same node sequence.", "",
        "| measure | pairs | median | p10 | p90 |", "|---|---:|---:|---:|---:|",
        "| gyrophare: OSRM's path − its own, s | {} | {:+.1f} | {:+.1f} | {:+.1f} |"
        .format(len(g_worse), *_stats(g_worse)),
        "| OSRM duration: gyrophare's path − its own, s | {} | {:+.1f} | {:+.1f} | {:+.1f} |"
        .format(len(o_worse), *_stats(o_worse)),
        "| OSRM weight: gyrophare's path − its own | {} | {:+.1f} | {:+.1f} | {:+.1f} |"
        .format(len(o_worse_w), *_stats(o_worse_w)), "",
        "| check | pairs |", "|---|---:|",
        f"| gyrophare finds OSRM's path cheaper than its own by > 0.5 s (its search would be "
        f"suboptimal) | {sum(1 for x in g_worse if x < -0.5)} |",
        f"| gyrophare's path within 2 s of OSRM's by gyrophare's costs (near tie) "
        f"| {sum(1 for x in g_worse if x <= 2.0)} |",
        f"| OSRM: gyrophare's path shorter in duration by > 0.5 s (OSRM minimises its "
        f"routability weight, not duration) | {sum(1 for x in o_worse if x < -0.5)} |",
        f"| OSRM: gyrophare's path lower in weight by > 0.5 (OSRM suboptimal) "
        f"| {sum(1 for x in o_worse_w if x < -0.5)} |",
        f"| gyrophare's route drives through an `access=destination` road (car.lua enters one "
        f"only at max weight) | {len(dest)}, mean Δ duration "
        f"{_mean([c.g.duration - c.o.duration for c in dest]):+.0f} s |",
        f"| OSRM route weight > duration (routability penalties) | "
        f"{sum(1 for c in other if c.o.weight > c.o.duration + 0.5)} |", ""]


def section_examples(st: Study, k: int) -> list[str]:
    L = [f"## The {k} pairs with the biggest gaps", "",
         "| # | origin (lat, lon) | destination | gyrophare s | OSRM s | ratio | same roads | "
         "why |", "|---:|---|---|---:|---:|---:|---|---|"]
    for c in _worst(st.compared, k):
        (la, lo), (lb, lob) = c.pair
        L.append(f"| {c.i} | {la:.5f}, {lo:.5f} | {lb:.5f}, {lob:.5f} | {c.g.duration:.1f} "
                 f"| {c.o.duration:.1f} | {c.ratio:.2f} | {'yes' if c.same else 'no'} "
                 f"| {explain(c)} |")
    for label, sub in (("Same roads", st.same),
                       ("Other roads from the same snapped points", st.other)):
        top = _worst(sub, 4)
        if top:
            L += ["", f"{label}, the {len(top)} biggest gaps:", "",
                  "| # | gyrophare s | OSRM s | ratio | why |", "|---:|---:|---:|---:|---|"]
            L += [f"| {c.i} | {c.g.duration:.1f} | {c.o.duration:.1f} | {c.ratio:.2f} "
                  f"| {explain(c)} |" for c in top]
    return [*L, ""]


def section_timing(timed: dict[str, np.ndarray], n: int, warm: int,
                   load: tuple[tuple[float, float, float], ...], checks: str) -> list[str]:
    def row(label: str, gk: str, ok: str) -> str:
        gm, om = float(np.median(timed[gk])), float(np.median(timed[ok]))
        return (f"| {label} | {gm:.3f} | {np.percentile(timed[gk], 99):.3f} | {om:.3f} "
                f"| {np.percentile(timed[ok], 99):.3f} | {gm / om:.2f} |")

    return [
        "## Timing (ms per call, same pairs, interleaved, single-threaded calls)", "",
        f"{n} pairs (failed ones included: both engines answer them) after {warm} warm-up "
        f"pairs per call. Load (1 / 5 / 15 min) at start {_load(load[0])}, at end "
        f"{_load(load[1])}.", "",
        "| call | gyrophare median | gyrophare p99 | OSRM median | OSRM p99 | "
        "gyrophare / OSRM (medians) |", "|---|---:|---:|---:|---:|---:|",
        row("(a) full route, coordinates in: geometry, steps, OSM nodes (OSRM: raw `Route`, "
            "no dict conversion)", "gyro_route", "osrm_route"),
        row("(a′) the same, gyrophare's per-coordinate snap cache warm (`Router.snap` of both "
            "points just before, untimed; information)", "gyro_route_cached", "osrm_route"),
        row("(a″) full route again, second pass over the same pairs (gyrophare's guidance "
            "table has met these junctions: a service's steady state)", "gyro_route_2",
            "osrm_route_2"),
        row("(b) duration only: `Router.table([a], [b])` vs OSRM 1x1 table",
            "gyro_table", "osrm_table"),
        "", checks, ""]


def consistency_checks(st: Study, router: Router, engine: Any, k: int = 200) -> str:
    """Each engine's table against its route, and OSRM's via-route against its own route."""
    check = st.compared[:k]
    tab = max((abs(float(router.table([c.pair[0]], [c.pair[1]]).values[0, 0]) - c.g.duration)
               for c in check), default=0.0)
    otab = max((abs(float(_osrm.duration_only_table(engine, *c.pair) or math.nan)
                    - c.o.duration) for c in check), default=0.0)
    vias = [abs(c.via.duration - c.o.duration) for c in st.same if c.via is not None]
    return (f"Checks: gyrophare table vs route duration, max |Δ| {tab:.2g} s; OSRM table vs "
            f"route, max |Δ| {otab:.2g} s (first {len(check)} pairs routed by both); OSRM "
            f"through the via waypoints vs its own route on same-roads pairs, max |Δ| "
            f"{max(vias, default=0.0):.2g} s ({len(vias)} pairs: the waypoints add nothing).")


# ------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--osm", type=Path, default=None,
                    help="an .osm.pbf (default: Monaco from the shared data directory)")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jitter", type=float, default=0.0,
                    help="move each point up to this many metres off its road (default 0)")
    ap.add_argument("--warm", type=int, default=50, help="untimed warm-up pairs per call")
    ap.add_argument("--examples", type=int, default=8, help="pairs with the biggest gaps shown")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "osrm-monaco.md"))
    args = ap.parse_args(argv)

    if not _osrm.available():
        print(f"osrm-bindings is not importable here (Python {sys.version.split()[0]}); run "
              "with .venv312/bin/python (the bench-osrm extra)", file=sys.stderr)
        return 2
    pbf = (args.osm or default_pbf()).resolve()
    load_start = os.getloadavg()
    started = datetime.now().astimezone()

    def log(s: str) -> None:
        print(s, file=sys.stderr)

    t0 = time.perf_counter()
    g = load_graph(pbf)
    router = Router(g)
    log(f"gyrophare: {g!r} loaded and warmed in {time.perf_counter() - t0:.1f} s")
    build = _osrm.build(pbf, "CH", log=log)
    engine = _osrm.load_engine(build.base, build.algorithm)
    pairs = random_pairs(g, args.pairs, args.seed, args.jitter)

    log(f"routing {len(pairs)} pairs with both engines ...")
    st = run_study(router, engine, pairs)
    log("timing ...")
    timed = time_engines(router, engine, pairs, args.warm)
    load_end = os.getloadavg()
    checks = consistency_checks(st, router, engine)

    cmd = " ".join([".venv312/bin/python", "benchmarks/bench_osrm.py",
                    *[shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv)]])
    L: list[str] = [
        f"# gyrophare vs OSRM (car): {pbf.name}", "",
        f"- command: `{cmd}`",
        f"- date: {started:%Y-%m-%d %H:%M %Z}; gyrophare git HEAD {git_head()}; "
        f"osrm-bindings {_osrm.bindings_version()} ({_osrm.backend_version()}), its stock "
        f"`car.lua`, CH; Python {sys.version.split()[0]}",
        f"- N = {len(pairs)} pairs (seed {args.seed}, jitter {args.jitter:g} m) of random points "
        f"on car-usable roads; graph {g.n_nodes:,} nodes, {g.n_edges:,} edges, turn graph "
        f"{router.turns.n_nodes:,} nodes / {router.turns.n_edges:,} arcs",
        f"- machine load (1 / 5 / 15 min) at start {_load(load_start)}, at end "
        f"{_load(load_end)}; {os.cpu_count()} CPUs", "",
        *section_pairs(st, router.fallback_radius_m), *section_eta(st), *section_gap(st),
        *section_speeds(st), *section_turns(st), *section_snapping(st), *section_other(st),
        *section_examples(st, args.examples),
        *section_timing(timed, len(pairs), args.warm, (load_start, load_end), checks)]
    emit(L, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
