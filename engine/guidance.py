"""Turn-by-turn guidance: a route's legs become the steps a driver follows.

A step starts at every decision point the driver must act on, named road or not, and at
nowhere else; what happens there is an OSRM maneuver (osrm-backend ``docs/http.md``,
``StepManeuver``), decided as osrm-backend's guidance does (``src/guidance``), simplified:

* **angles** are measured between the arriving road's last 10 m and the leaving road's first
  10 m (OSRM's ``DESIRED_SEGMENT_LENGTH``); the modifier follows OSRM's
  ``getTurnDirection``: up to 10 degrees off straight ``straight``, up to 40 ``slight``,
  up to 120 plain ``left`` / ``right``, beyond ``sharp``; ``uturn`` only for a real U-turn
  (back on the same road, or onto the other carriageway of the same street);
* a junction where **no other road may be entered** is no decision: a step starts there only
  when the name changes (``new name``), the road becomes a ramp (``on ramp``) or the driving
  changes mode (``notification``: contraflow starts or ends, a road closed to cars);
* at a real junction, the road taken is **obvious** when it deviates less than 60 degrees
  and clearly less than every other road that matters (service roads do not, seen from a
  public road; a much higher road class wins; the same street name wins): OSRM's
  ``getInstructionForObvious`` then gives nothing (same name), ``new name``, or ``turn`` /
  ``merge`` onto a through street. A turn of 60 degrees or more at a junction with a
  choice is therefore always announced;
* otherwise: ``fork`` (two or three roads within 60 degrees of straight, none straight on,
  the rest far apart), ``end of road`` (a T: the road ends, one way left and one right),
  ``off ramp`` (motorway onto a ramp), ``on ramp``, ``continue`` (same name) or ``turn``;
* **roundabouts** (``junction=roundabout|circular``): one step entering with the exit number
  (exits a car may take, counted from the entry), and one ``exit roundabout`` step where
  it leaves; a named ring more than 15 m in radius is a ``rotary`` (``rotary_name``), a
  small one (15 m at most, four arms at most, one road per arm) a ``roundabout turn``
  announced as a turn, without the exit step (OSRM's ``MAX_ROUNDABOUT_RADIUS`` and
  ``MAX_ROUNDABOUT_INTERSECTION_RADIUS``).

Every step lists the junctions it passes (OSRM intersections: bearings, which roads may be
entered, in, out, the classes of the road left, lanes from ``turn:lanes``) and the OSM tags
guidance reads (``ref``, ``destinations``, ``exits``, ``pronunciation``).
:func:`instruction` writes a step in English or French.

This module holds the rules, per road pair (:func:`decide`, :func:`intersection`);
:mod:`engine.guidance_steps` turns a route into steps with them (through a table that keeps
every answer, since the rules depend on the road pair and the static graph only) and
:mod:`engine.guidance_collapse` folds the steps OSRM's post-processing would not announce.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from engine.extract import tags
from engine.graph import RoadGraph
from engine.results import Intersection, Step
from engine.turns import road_bearings

#: metres of road measured for a guidance angle (OSRM ``DESIRED_SEGMENT_LENGTH``)
BEARING_LOOKAHEAD_M = 10.0
STRAIGHT_DEV = 10.0  #: modifier "straight" up to this deviation (OSRM 170..190)
SLIGHT_DEV = 40.0  #: "slight" up to this
SHARP_DEV = 120.0  #: "sharp" beyond this
#: a road deviating this much or more is never obvious: at a junction with a choice, such a
#: turn always gets its step (the property ``tests/test_guidance.py`` checks on Monaco)
OBVIOUS_MAX_DEV = 60.0
NARROW_TURN_ANGLE = 40.0  #: OSRM: roads closer than this are hard to tell apart
FUZZY_ANGLE = 25.0
DISTINCTION_RATIO = 2.0
GROUP_ANGLE = 60.0  #: fork branches lie within this of straight
NO_TURN_DEV = 3.0  #: OSRM MAXIMAL_ALLOWED_NO_TURN_DEVIATION
MAX_ROUNDABOUT_RADIUS = 15.0  #: a named ring larger than this is a rotary
MAX_ROUNDABOUT_INTERSECTION_RADIUS = 15.0  #: a small ring is a "roundabout turn"

_HC = tags.HIGHWAY_CODE
_RAMPS = frozenset({_HC["motorway_link"], _HC["trunk_link"]})
_MOTORWAYS = frozenset({_HC["motorway"], _HC["trunk"]})
_LOW_PRIORITY = frozenset({_HC[c] for c in ("service", "track", "pedestrian", "busway")})
#: road class rank (lower: more important); a link ranks as its road
_RANK = {_HC[c]: r for c, r in (
    ("motorway", 0), ("motorway_link", 0), ("trunk", 1), ("trunk_link", 1), ("primary", 2),
    ("primary_link", 2), ("secondary", 3), ("secondary_link", 3), ("tertiary", 4),
    ("tertiary_link", 4), ("unclassified", 5), ("residential", 5), ("road", 5),
    ("living_street", 6), ("service", 7), ("busway", 7), ("pedestrian", 8), ("track", 8),
    ("barrier", 8))}


# ------------------------------------------------------------------------------ per graph
@dataclass(eq=False)
class View:
    """What guidance reads of a graph, computed once per graph."""

    g: RoadGraph
    leave: np.ndarray
    arrive: np.ndarray
    car_ok: np.ndarray
    barrier: np.ndarray
    ring: np.ndarray
    n_roads: np.ndarray
    car_forbidden_arc: np.ndarray  # per turn arc: forbidden for cars by a restriction
    rings: dict[int, tuple[str, str, float, int]]  # ring edge -> (type, name, radius, arms)
    #: ``g.edge_info`` parsed once per distinct info text (``info_id``), shared: read only
    infos: dict[int, dict[str, str]] = field(default_factory=dict)
    #: ``g.names`` as Python strings
    names: list[str] = field(default_factory=list)


_VIEWS: weakref.WeakKeyDictionary[RoadGraph, View] = weakref.WeakKeyDictionary()


def view(g: RoadGraph) -> View:
    """The guidance view of ``g`` (built on first use, kept while the graph lives)."""
    v = _VIEWS.get(g)
    if v is not None:
        return v
    leave, arrive = road_bearings(g, BEARING_LOOKAHEAD_M)
    barrier = g.highway == _HC["barrier"]
    car_ok = ((g.flags & np.uint32(tags.CAR_FORBIDDEN)) == 0) & ~barrier
    ring = (g.flags & np.uint32(tags.F_ROUNDABOUT)) != 0
    n = g.n_nodes
    real = ~barrier
    n_roads = np.bincount(g.tail[real], minlength=n)
    in_only = real & (g.twin < 0)
    n_roads += np.bincount(g.head[in_only], minlength=n)
    tg = g.turn_graph()
    from engine.extract.restrictions import RC_CAR

    forbidden = (tg.forbid & np.uint8(RC_CAR)) != 0
    v = View(g, leave, arrive, car_ok, barrier, ring, n_roads, forbidden, {},
             names=[str(x) for x in g.names])
    _VIEWS[g] = v
    return v


_NO_TAGS: dict[str, str] = {}


def edge_tags(g: RoadGraph, e: int) -> dict[str, str]:
    """``g.edge_info(e)``, its JSON parsed once per graph and distinct text (the dict is
    shared: read it, never change it)."""
    if g.info_id is None or g.infos is None:
        return _NO_TAGS
    i = int(g.info_id[e])
    infos = view(g).infos
    hit = infos.get(i)
    if hit is None:
        hit = infos[i] = g.edge_info(e)
    return hit


def _dev(x: float) -> float:
    return abs(x) if not math.isnan(x) else 0.0


def turn_angle(v: View, e_in: int, f: int) -> float:
    """Degrees from road ``e_in``'s arrival to road ``f``'s departure, positive to the
    right, in ``(-180, 180]`` (0 when a road has no length)."""
    a = ((float(v.leave[f]) - float(v.arrive[e_in]) + 180.0) % 360.0) - 180.0
    if math.isnan(a):
        return 0.0
    return 180.0 if a == -180.0 else a


def modifier(angle: float) -> str:
    """OSRM's direction modifier for a turn of ``angle`` degrees (positive: right)."""
    dev = abs(angle)
    side = "right" if angle > 0 else "left"
    if dev <= STRAIGHT_DEV:
        return "straight"
    if dev <= SLIGHT_DEV:
        return f"slight {side}"
    if dev <= SHARP_DEV:
        return side
    return f"sharp {side}"


def _out_edges(g: RoadGraph, node: int) -> range:
    return range(int(g.first_out[node]), int(g.first_out[node + 1]))


def _allowed(v: View, e_in: int, f: int) -> bool:
    """A car may turn from ``e_in`` into ``f`` (legal road, no restriction forbids it)."""
    if not v.car_ok[f]:
        return False
    tg = v.g.turn_graph()
    if e_in >= tg.n_roads:
        return True
    for a in range(int(tg.first_out[e_in]), int(tg.first_out[e_in + 1])):
        if int(tg.node_road[tg.head[a]]) == f:
            return not bool(v.car_forbidden_arc[a])
    return True


def _is_uturn(v: View, e_in: int, f: int) -> bool:
    g = v.g
    if int(g.twin[e_in]) == f:
        return True
    same = g.name_id[e_in] == g.name_id[f] and g.name_id[f] > 0
    return bool(same and _dev(turn_angle(v, e_in, f)) >= 150.0)


def choices(v: View, e_in: int, f: int) -> list[int]:
    """The other roads a car could take instead of ``f`` after ``e_in`` (no U-turn)."""
    g = v.g
    node = int(g.tail[f])
    twin = int(g.twin[e_in])
    return [h for h in _out_edges(g, node)
            if h != f and h != twin and not v.barrier[h] and _allowed(v, e_in, h)]


# ------------------------------------------------------------------------------ roundabouts
def ring_of(v: View, start: int) -> tuple[str, str, float, int]:
    """``(type, name, radius, arms)`` of the ring edge ``start`` belongs to."""
    hit = v.rings.get(start)
    if hit is not None:
        return hit
    g = v.g
    edges = [start]
    cur = start
    closed = False
    while len(edges) < 200:
        nxt = [h for h in _out_edges(g, int(g.head[cur]))
               if v.ring[h] and v.car_ok[h] and h != int(g.twin[cur])]
        if not nxt:
            break
        cur = nxt[0]
        if cur == start:
            closed = True
            break
        edges.append(cur)
    length = float(g.length_m[edges].sum())
    radius = length / (2 * math.pi) if closed else math.inf
    names = [str(g.names[g.name_id[e]]) for e in edges if g.name_id[e] > 0]
    name = max(set(names), key=names.count) if names else ""
    arms = 0
    one_road_per_arm = True
    exit_bearings = []
    for e in edges:
        node = int(g.tail[e])
        others = [h for h in _out_edges(g, node) if not v.ring[h] and not v.barrier[h]]
        if others:
            arms += 1
            one_road_per_arm &= len(others) == 1
            b = float(v.leave[others[0]])
            exit_bearings.append(0.0 if math.isnan(b) else b)
    exit_bearings.sort()
    # OSRM qualifiesAsRoundaboutIntersection: the arms leave in well distinct directions
    distinct = all(b - a > NARROW_TURN_ANGLE
                   for a, b in pairwise(exit_bearings))
    if name and radius > MAX_ROUNDABOUT_RADIUS:
        kind = "rotary"
    elif (radius <= MAX_ROUNDABOUT_INTERSECTION_RADIUS and arms <= 4 and one_road_per_arm
          and distinct):
        kind = "roundabout turn"
    else:
        kind = "roundabout"
    out = (kind, name, radius, arms)
    for e in edges:
        v.rings[e] = out
    return out


def exits_passed(v: View, E: Sequence[int], first: int, last: int) -> int:
    """Exits a car may take at the ring junctions passed from ring leg ``first`` to ring
    leg ``last`` (the junction at the end of ``last`` not included)."""
    g = v.g
    count = 0
    for i in range(first, last):
        e = E[i]
        node = int(g.head[e])
        if any(not v.ring[h] and _allowed(v, e, h) for h in _out_edges(g, node)):
            count += 1
    return count


# ------------------------------------------------------------------------------ decisions
@dataclass(frozen=True)
class Decision:
    type: str
    modifier: str | None
    exit: int | None = None
    ring_name: str = ""
    rotary: bool = False
    #: name the step takes (a roundabout step is named after its ring)
    name_edge: int = -1


def _name_ref(g: RoadGraph, e: int) -> tuple[str, str, str, str]:
    """``(name, ref, pronunciation, exits)`` as OSM tags them (the graph's name is the
    ``ref`` for a way without a ``name``)."""
    info = edge_tags(g, e)
    name = view(g).names[int(g.name_id[e])]
    ref = info.get("ref", "")
    if name and name == ref:
        name = ""
    return name, ref, info.get("pronunciation", ""), info.get("exits", "")


def requires_name_announced(g: RoadGraph, e_in: int, f: int) -> bool:
    """OSRM's ``requiresNameAnnounced`` (without its street-suffix table): whether going
    from road ``e_in`` to road ``f`` changes the name a driver must be told."""
    if g.name_id[e_in] == g.name_id[f] and edge_tags(g, e_in) == edge_tags(g, f):
        return False
    fn, fr, fp, fx = _name_ref(g, e_in)
    tn, tr, tp, tx = _name_ref(g, f)
    if not fn and not fr and (tn or tr):
        return True
    names_empty = not fn and not tn
    contained = fn.startswith(tn) or tn.startswith(fn)
    names_equal = fn == tn or contained
    name_removed = bool(fn) and not tn
    refs_empty = not fr and not tr
    ref_contained = not fr or not tr or fr in tr or tr in fr
    ref_removed = bool(fr) and not tr
    obvious_change = ((names_empty and refs_empty) or (names_equal and ref_contained)
                      or (names_equal and refs_empty) or (ref_contained and name_removed)
                      or (names_equal and ref_removed))
    needs = ((not fn and bool(fr) and bool(tn) and not tr)
             or (bool(fn) and not fr and not tn and bool(tr))
             or (names_empty and not ref_contained))
    loses_exit = names_equal and bool(fx) and not tx
    return (not obvious_change or needs or fp != tp or (fx != tx and not loses_exit))


def _same_street(g: RoadGraph, e_in: int, f: int) -> bool:
    """Both roads named and the name unchanged (OSRM's ``Continue`` test)."""
    return (g.name_id[e_in] > 0 and g.name_id[f] > 0
            and not requires_name_announced(g, e_in, f))


def _obvious_of_two(v: View, e_in: int, f: int, h: int) -> bool:
    """OSRM ``isObviousOfTwo``: taking ``f`` is obvious with ``h`` the alternative."""
    g = v.g
    rank_in, rank_f, rank_h = (_RANK.get(int(g.highway[x]), 8) for x in (e_in, f, h))
    if rank_h >= rank_f + 2 and rank_in <= rank_f + 1:
        return True
    if rank_f >= rank_h + 2 and rank_in <= rank_h + 1:
        return False
    dev_f = _dev(turn_angle(v, e_in, f))
    dev_h = _dev(turn_angle(v, e_in, h))
    if dev_f < 1.0 and _same_street(g, e_in, f):
        return True
    return (dev_h > 1.4 * dev_f) and dev_h - dev_f > FUZZY_ANGLE


def _obvious(v: View, e_in: int, f: int, others: list[int]) -> bool:
    """Taking ``f`` needs no instruction of its own: it deviates less than
    :data:`OBVIOUS_MAX_DEV` and is obvious against every other road that matters."""
    g = v.g
    dev_f = _dev(turn_angle(v, e_in, f))
    if dev_f >= OBVIOUS_MAX_DEV:
        return False
    hw = g.highway
    rel = others
    if int(hw[e_in]) not in _LOW_PRIORITY and int(hw[f]) not in _LOW_PRIORITY:
        rel = [h for h in others if int(hw[h]) not in _LOW_PRIORITY]
    if not rel:
        return True
    if all(_obvious_of_two(v, e_in, f, h) for h in rel):
        return True
    return (_same_street(g, e_in, f) and dev_f < 45.0
            and not any(_same_street(g, e_in, h) for h in rel)
            and all(_dev(turn_angle(v, e_in, h)) > dev_f for h in rel))


def _fork(v: View, e_in: int, f: int, others: list[int]) -> str | None:
    """The fork modifier of ``f`` when the roads ahead split into two or three similar
    branches (OSRM ``findFork``), else ``None``."""
    g = v.g
    ang = {h: turn_angle(v, e_in, h) for h in [f, *others]}
    cands = sorted(ang, key=lambda h: ang[h])  # left to right
    straight = min(cands, key=lambda h: abs(ang[h]))
    if abs(ang[straight]) > NARROW_TURN_ANGLE:
        return None
    i0 = cands.index(straight)
    lo = hi = i0

    def joins(prev: int, nxt: int) -> bool:
        return abs(ang[nxt]) <= NARROW_TURN_ANGLE or (
            abs(ang[nxt] - ang[prev]) <= NARROW_TURN_ANGLE and abs(ang[nxt]) <= GROUP_ANGLE)

    while hi + 1 < len(cands) and joins(cands[hi], cands[hi + 1]):
        hi += 1
    while lo - 1 >= 0 and joins(cands[lo], cands[lo - 1]):
        lo -= 1
    group = cands[lo:hi + 1]
    if f not in group or not 2 <= len(group) <= 3:
        return None
    ranks = [_RANK.get(int(g.highway[h]), 8) for h in group]
    if max(ranks) - min(ranks) > 1:
        return None
    for x in group:
        if all(_obvious_of_two(v, e_in, x, y) for y in group if y != x):
            return None
    if f == group[0]:
        return "slight left"
    if f == group[-1]:
        return "slight right"
    return "straight"


def _end_of_road(v: View, e_in: int, f: int) -> bool:
    """OSRM ``isEndOfRoad``: three roads, the one arrived by and two going off about 90
    degrees right and left, and the street arrived by does not go on along one of them
    (OSRM then finds that one obvious: ``continue`` there, ``turn`` onto the other)."""
    g = v.g
    node = int(g.tail[f])
    if int(v.n_roads[node]) != 3:
        return False
    twin = int(g.twin[e_in])
    ahead = [h for h in _out_edges(g, node) if not v.barrier[h] and h != twin]
    if any(_same_street(g, e_in, h) for h in ahead):
        return False
    sides = [turn_angle(v, e_in, h) for h in ahead]
    sides += [_reverse_angle(v, e_in, h) for h in _in_only(g, node) if h != e_in]
    if len(sides) != 2:
        return False
    right, left = max(sides), min(sides)
    return (abs(right - 90.0) < NARROW_TURN_ANGLE and abs(left + 90.0) < NARROW_TURN_ANGLE
            and right - left > 2 * NARROW_TURN_ANGLE)


def _mode_changes(g: RoadGraph, e_in: int, f: int) -> bool:
    """Contraflow starts or ends, or the road becomes (or stops being) closed to cars."""
    bits = np.uint32(tags.F_AGAINST_ONEWAY | tags.F_CAR_NO | tags.F_BUSWAY)
    return bool((g.flags[e_in] & bits) != (g.flags[f] & bits))


def decide(v: View, e_in: int, f: int) -> Decision | None:
    """The maneuver turning from road ``e_in`` into road ``f`` (neither on a ring), or
    ``None`` when the driver just drives on."""
    g = v.g
    angle = turn_angle(v, e_in, f)
    mod = modifier(angle)
    announce = requires_name_announced(g, e_in, f)
    same_street = _same_street(g, e_in, f)
    hw_in, hw_out = int(g.highway[e_in]), int(g.highway[f])
    onto_ramp = hw_out in _RAMPS and hw_in not in _RAMPS
    ramp = "off ramp" if hw_in in _MOTORWAYS else "on ramp"
    if _is_uturn(v, e_in, f):
        return Decision("continue" if same_street else "turn", "uturn")
    others = choices(v, e_in, f)
    node = int(g.tail[f])
    if onto_ramp:
        return Decision(ramp, mod)
    if not others or _obvious(v, e_in, f, others):
        # no choice, or the obvious way on: only a change the driver must know about
        if _mode_changes(g, e_in, f):
            return Decision("notification", mod)
        if not announce:
            return None
        if not others and int(v.n_roads[node]) < 3:
            return Decision("new name", mod)
        name_out = int(g.name_id[f])
        through = name_out > 0 and any(
            int(g.name_id[h]) == name_out and h not in (f, int(g.twin[f]), int(g.twin[e_in]))
            for h in _out_edges(g, node))
        if through:
            if hw_in in _RAMPS and hw_out in _MOTORWAYS:
                return Decision("merge", "slight right" if angle < 0 else "slight left")
            return Decision("turn", "straight" if abs(angle) < NARROW_TURN_ANGLE else mod)
        return Decision("new name", mod)
    fork = _fork(v, e_in, f, others)
    if fork is not None:
        return Decision("fork", fork)
    if _end_of_road(v, e_in, f):
        return Decision("end of road", "right" if angle > 0 else "left")
    return Decision("continue" if same_street else "turn", mod)


def _in_only(g: RoadGraph, node: int) -> list[int]:
    """One-way roads arriving at ``node`` that have no twin (osmnx graphs)."""
    ids = g.in_edge[int(g.first_in[node]):int(g.first_in[node + 1])]
    return [int(e) for e in ids if g.twin[e] < 0 and g.highway[e] != _HC["barrier"]]


def _reverse_angle(v: View, e_in: int, h: int) -> float:
    """Angle towards a road ``h`` that only arrives at the junction (its reverse bearing)."""
    b = (float(v.arrive[h]) + 180.0) % 360.0
    a = ((b - float(v.arrive[e_in]) + 180.0) % 360.0) - 180.0
    return 0.0 if math.isnan(a) else a


# ------------------------------------------------------------------------------ intersections
_LANE_OK = {
    "straight": {"through", "none", ""},
    "slight right": {"slight_right", "right", "through", "merge_to_right"},
    "right": {"right", "slight_right", "sharp_right"},
    "sharp right": {"sharp_right", "right"},
    "slight left": {"slight_left", "left", "through", "merge_to_left"},
    "left": {"left", "slight_left", "sharp_left"},
    "sharp left": {"sharp_left", "left"},
    "uturn": {"reverse"},
}


def lanes(turn_lanes: str, mod: str) -> list[dict[str, Any]]:
    """OSRM lanes from a ``turn:lanes`` value (left to right) for a move ``mod``."""
    out: list[dict[str, Any]] = []
    for text in turn_lanes.split("|"):
        ind = [x.strip() or "none" for x in text.split(";")]
        out.append({"indications": ind,
                    "valid": any(x in _LANE_OK.get(mod, set()) for x in ind)})
    if not any(lane["valid"] for lane in out):
        for lane in out:  # nothing marked for this move: the lanes say nothing
            lane["valid"] = "none" in lane["indications"]
    return out


def classes(g: RoadGraph, e: int) -> list[str]:
    """OSRM classes of road ``e`` (car.lua: motorway, toll, tunnel, restricted)."""
    flags = int(g.flags[e])
    out = []
    if int(g.highway[e]) in (_HC["motorway"], _HC["motorway_link"]):
        out.append("motorway")
    if flags & tags.F_TOLL:
        out.append("toll")
    if flags & tags.F_TUNNEL:
        out.append("tunnel")
    if flags & (tags.F_DESTINATION | tags.F_PRIVATE):
        out.append("restricted")
    return out


def node_location(g: RoadGraph, node: int) -> list[float]:
    return [round(float(g.point_lon[node]), 6), round(float(g.point_lat[node]), 6)]


def intersection(v: View, e_in: int, f: int) -> Intersection:
    """The junction at the end of ``e_in`` where the route takes ``f``."""
    g = v.g
    node = int(g.tail[f])
    out_b = round(float(v.leave[f])) % 360 if not math.isnan(v.leave[f]) else 0
    in_b = (round(float(v.arrive[e_in]) + 180.0) % 360
            if not math.isnan(v.arrive[e_in]) else (out_b + 180) % 360)
    twin = int(g.twin[e_in])
    items: list[tuple[int, bool, str]] = []
    for h in _out_edges(g, node):
        if v.barrier[h]:
            continue
        b = round(float(v.leave[h])) % 360 if not math.isnan(v.leave[h]) else 0
        role = "out" if h == f else "in" if h == twin else ""
        entry = h == f or (h != twin and _allowed(v, e_in, h))
        items.append((b, entry, role))
    for h in _in_only(g, node):
        b = (round(float(v.arrive[h]) + 180.0) % 360
             if not math.isnan(v.arrive[h]) else 0)
        items.append((b, False, "in" if h == e_in else ""))
    if not any(r == "in" for _, _, r in items):
        items.append((in_b, False, "in"))
    items.sort(key=lambda x: x[0])
    bearings = [b for b, _, _ in items]
    out = Intersection(node_location(g, node), bearings, [e for _, e, _ in items],
                       in_=next(i for i, x in enumerate(items) if x[2] == "in"),
                       out=next(i for i, x in enumerate(items) if x[2] == "out"),
                       classes=classes(g, f))
    info = edge_tags(g, e_in)
    if "lanes" in info:
        out.lanes = lanes(info["lanes"], modifier(turn_angle(v, e_in, f)))
    return out


# ------------------------------------------------------------------------------ checks
def unannounced_turns(graph: RoadGraph, edges: Sequence[int], steps: Sequence[Step],
                      min_angle: float = OBVIOUS_MAX_DEV) -> list[tuple[int, float]]:
    """``(edge index, angle)`` of every turn of ``min_angle`` degrees or more, at a junction
    where a car had another road to take (rings aside), that starts no step."""
    v = view(graph)
    starts = {s.first_edge for s in steps}
    out = []
    for k in range(1, len(edges)):
        e_in, f = int(edges[k - 1]), int(edges[k])
        if v.barrier[e_in] or v.barrier[f] or v.ring[e_in] or v.ring[f]:
            continue
        angle = turn_angle(v, e_in, f)
        if abs(angle) >= min_angle and k not in starts and choices(v, e_in, f):
            out.append((k, angle))
    return out


# ------------------------------------------------------------------------------ instructions
LANGUAGES = ("en", "fr")
_COMPASS = {
    "en": ("north", "northeast", "east", "southeast", "south", "southwest", "west",
           "northwest"),
    "fr": ("le nord", "le nord-est", "l'est", "le sud-est", "le sud", "le sud-ouest",
           "l'ouest", "le nord-ouest"),
}
_DIR = {
    "en": {"straight": "straight", "slight right": "slightly right", "right": "right",
           "sharp right": "sharply right", "slight left": "slightly left", "left": "left",
           "sharp left": "sharply left", "uturn": "back"},
    "fr": {"straight": "tout droit", "slight right": "légèrement à droite",
           "right": "à droite", "sharp right": "franchement à droite",
           "slight left": "légèrement à gauche", "left": "à gauche",
           "sharp left": "franchement à gauche", "uturn": "demi-tour"},
}
_ORD = {
    "en": ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
           "ninth", "tenth"),
    "fr": ("première", "deuxième", "troisième", "quatrième", "cinquième", "sixième",
           "septième", "huitième", "neuvième", "dixième"),
}


def _ordinal(n: int, lang: str) -> str:
    if 1 <= n <= 10:
        return _ORD[lang][n - 1]
    return f"{n}th" if lang == "en" else f"{n}e"


def _way(step: Step) -> str:
    if step.name and step.ref and step.ref not in step.name:
        return f"{step.name} ({step.ref})"
    return step.name or step.ref


def instruction(step: Step, language: str = "en") -> str:
    """The step in words, English (``en``) or French (``fr``), for the command-centre page
    and printouts (written for gyrophare, in the spirit of osrm-text-instructions)."""
    lang = language if language in LANGUAGES else "en"
    m = step.maneuver
    if m is None:
        return step.name
    en = lang == "en"
    way = _way(step)
    mod = m.modifier or "straight"
    d = _DIR[lang][mod]
    onto = (f" onto {way}" if way else "") if en else (f" sur {way}" if way else "")
    towards = ""
    if step.destinations:
        towards = f" towards {step.destinations}" if en else f" en direction de {step.destinations}"
    side_en = "left" if "left" in mod else "right"
    side_fr = "gauche" if "left" in mod else "droite"
    t = m.type
    if t == "depart":
        compass = _COMPASS[lang][int(((m.bearing_after + 22.5) % 360) // 45)]
        if en:
            return f"Head {compass}" + (f" on {way}" if way else "")
        return f"Dirigez-vous vers {compass}" + (f" sur {way}" if way else "")
    if t == "arrive":
        return "You have arrived at your destination" if en else \
            "Vous êtes arrivé à destination"
    if t in ("roundabout", "rotary"):
        exit_ = m.exit
        if t == "rotary" and step.rotary_name:
            head = f"Enter {step.rotary_name}" if en else f"Entrez dans {step.rotary_name}"
        else:
            head = "Enter the roundabout" if en else "Entrez dans le rond-point"
        if exit_ is None:
            return head
        if en:
            return f"{head} and take the {_ordinal(exit_, lang)} exit" + onto
        return f"{head} et prenez la {_ordinal(exit_, lang)} sortie" + onto
    if t in ("exit roundabout", "exit rotary"):
        if en:
            return "Exit the roundabout" + onto + towards
        return "Sortez du rond-point" + onto + towards
    if t == "roundabout turn":
        if en:
            return ("At the roundabout, go straight" if mod == "straight"
                    else f"At the roundabout, turn {d}") + onto
        return ("Au rond-point, continuez tout droit" if mod == "straight"
                else f"Au rond-point, tournez {d}") + onto
    if mod == "uturn":
        return ("Make a U-turn" + onto) if en else ("Faites demi-tour" + onto)
    if t == "fork":
        if en:
            keep = "straight" if mod == "straight" else side_en
            return f"Keep {keep} at the fork" + onto + towards
        keep = "tout droit" if mod == "straight" else f"à {side_fr}"
        return f"À la bifurcation, restez {keep}" + onto + towards
    if t == "end of road":
        if en:
            return f"At the end of the road, turn {d}" + onto
        return f"Au bout de la route, tournez {d}" + onto
    if t == "merge":
        if en:
            return f"Merge {side_en}" + onto
        return f"Insérez-vous par la {side_fr}" + onto
    if t in ("on ramp", "off ramp"):
        exit_ref = step.exits
        if en:
            what = f"Take exit {exit_ref}" if t == "off ramp" and exit_ref else "Take the ramp"
            side = "" if mod == "straight" else f" on the {side_en}"
            return what + side + (onto if not towards else "") + towards
        what = f"Prenez la sortie {exit_ref}" if t == "off ramp" and exit_ref else \
            "Prenez la bretelle"
        side = "" if mod == "straight" else f" à {side_fr}"
        return what + side + (onto if not towards else "") + towards
    if t == "notification":
        if step.mode == "contraflow":
            return ("Drive against the one-way traffic" + (f" on {way}" if way else "")
                    if en else "Roulez à contresens" + (f" sur {way}" if way else ""))
        return ("Continue" + onto) if en else ("Continuez" + onto)
    if t == "continue":
        if en:
            stay = f" to stay on {way}" if way else ""
            return ("Continue straight" if mod == "straight" else f"Continue {d}") + stay
        stay = f" pour rester sur {way}" if way else ""
        return ("Continuez tout droit" if mod == "straight" else f"Continuez {d}") + stay
    if t == "new name":
        if en:
            return ("Continue" if mod == "straight" else f"Continue {d}") + onto
        return ("Continuez" if mod == "straight" else f"Continuez {d}") + onto
    # turn
    if en:
        return ("Go straight" if mod == "straight" else f"Turn {d}") + onto
    return ("Continuez tout droit" if mod == "straight" else f"Tournez {d}") + onto
