"""OSRM's post-processing of guidance steps (osrm-backend ``src/engine/guidance``): steps a
driver does not need are folded into their neighbours, after the junction rules of
:mod:`engine.guidance` have started a step at every decision point.

* ``collapseTurnInstructions`` (``collapse_turns.cpp``, ``isUTurn`` in
  ``collapse_scenario_detection.cpp``): a turn onto a short link (at most
  :data:`MAX_COLLAPSE_DISTANCE` metres, or twice that for an unnamed link between two
  named roads, or where the turn back is the only way on) followed by the turn back onto
  the street it left, the other way round (a U-turn over a median), is one ``continue
  uturn`` step;
* ``suppressShortNameSegments`` (``verbosity_reduction.cpp``): a ``new name`` step (without
  lanes) onto the name of the step before, or shorter than
  :data:`NAME_SEGMENT_CUTOFF_LENGTH` metres, is no step of its own.

A step is only folded when its junction is no turn of 60 degrees or more where a car had
another way (the property ``tests/test_guidance.py`` checks): gyrophare's promise that such
a turn is always announced wins over OSRM's brevity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from engine.graph import EARTH_RADIUS_M
from engine.results import Maneuver, Step

MAX_COLLAPSE_DISTANCE = 30.0  #: OSRM car.lua ``max_collapse_distance`` (metres)
NAME_SEGMENT_CUTOFF_LENGTH = 105.0  #: OSRM ``NAME_SEGMENT_CUTOFF_LENGTH`` (metres)
_ROUNDABOUT_TYPES = frozenset({"roundabout", "rotary", "roundabout turn", "exit roundabout",
                               "exit rotary"})
_TURNS = frozenset({"turn", "continue", "end of road"})
_TURNS_STRAIGHT = frozenset({"turn", "continue"})  # "straight" on: a name change

#: ``must_keep(k)``: the junction before leg ``k`` is a turn that must start a step
MustKeep = Callable[[int], bool]


def collapse(steps: list[Step], must_keep: MustKeep) -> list[Step]:
    """The steps after OSRM's collapses (the first step, ``depart``, stays first); the steps
    kept are changed in place, folded steps are gone."""
    if len(steps) < 2:
        return steps
    return _short_names(_turns(steps, must_keep), must_keep)


def _same_name(a: Step, b: Step) -> bool:
    """OSRM ``haveSameName``: both have a name or a ref, and the same ones."""
    if not (a.name or a.ref) or not (b.name or b.ref):
        return False
    return a.name == b.name and a.ref == b.ref


def _type(s: Step) -> str:
    return s.maneuver.type if s.maneuver is not None else ""


def _fold(into: Step, step: Step) -> None:
    """``into`` drives on over ``step`` (OSRM ``ElongateBy``)."""
    into.distance_m += step.distance_m
    into.duration_s += step.duration_s
    into.turn_delay_s += step.turn_delay_s
    into.intersections = [*into.intersections, *step.intersections]


def _undisturbed(s: Step) -> bool:
    """No junction with a choice passed after the step's own (OSRM
    ``noIntermediaryIntersections``)."""
    return all(len(i.entry) == 2 for i in s.intersections[1:])


def _reversed(bearing_in: float, bearing_out: float) -> bool:
    """OSRM ``bearingsAreReversed``: within 35 degrees of opposite."""
    left = (bearing_in - bearing_out if 0 <= bearing_out <= bearing_in
            else bearing_in + 360 - bearing_out)
    return abs(left - 180) <= 35


def _turns(steps: list[Step], must_keep: MustKeep) -> list[Step]:
    """OSRM ``collapseTurnInstructions``, its main scenarios, in its order, over the steps
    between depart and arrive."""
    if len(steps) < 3:
        return steps
    out = [steps[0]]
    i = 1
    n = len(steps)
    while i < n:
        cur = steps[i]
        nxt = steps[i + 1] if i + 1 < n else None
        prev = out[-1]
        if nxt is None or cur.mode != nxt.mode:
            out.append(cur)
            i += 1
            continue
        mc, mn = cur.maneuver, nxt.maneuver
        assert mc is not None and mn is not None
        t_cur, t_nxt = mc.type, mn.type
        nc_cur = t_cur == "new name" or (t_cur in _TURNS_STRAIGHT and mc.modifier == "straight")
        nc_nxt = t_nxt == "new name" or (t_nxt in _TURNS_STRAIGHT and mn.modifier == "straight")
        # the cheap test first: can any scenario apply?
        back = t_cur in _TURNS and abs(abs(_angle_between(mc.bearing_before,
                                                          mn.bearing_after)) - 180.0) <= 37.0
        if t_cur in _ROUNDABOUT_TYPES or t_nxt in _ROUNDABOUT_TYPES or not (
                back or (nc_nxt and cur.distance_m <= 45.0)
                or (nc_cur and (cur.distance_m <= MAX_COLLAPSE_DISTANCE or nc_nxt))):
            out.append(cur)
            i += 1
            continue
        if back and _is_uturn(prev, cur, nxt) and not must_keep(nxt.first_edge):
            out.append(_combined(cur, nxt, "continue", "uturn"))
            i += 2
        elif _name_oscillation(prev, cur, nxt) and not must_keep(cur.first_edge) \
                and not must_keep(nxt.first_edge):
            _fold(prev, cur)  # A, B, A again: one street
            _fold(prev, nxt)
            i += 2
        elif _preceded_by_name_change(prev, cur, nxt) and not must_keep(cur.first_edge):
            _fold(prev, cur)  # the short stretch of another name belongs to the step before
            steps[i + 1] = _adjusted(prev, nxt, cur)
            i += 1
        elif _succeeded_by_name_change(cur, nxt) and not must_keep(nxt.first_edge):
            kind, mod = _adjust(prev, cur, nxt)
            steps[i + 1] = _combined(cur, nxt, kind, mod)  # may combine again
            i += 1
        else:
            out.append(cur)
            i += 1
    return out


def _combined(cur: Step, nxt: Step, kind: str, mod: str | None) -> Step:
    """One step: the maneuver of ``cur`` (as ``kind`` / ``mod``), the road and signs of
    ``nxt`` (OSRM ``combineRouteSteps`` with ``TransferSignageStrategy``)."""
    m, mn = cur.maneuver, nxt.maneuver
    assert m is not None and mn is not None
    merged = Step(nxt.name, cur.distance_m, cur.duration_s, cur.location, cur.turn_delay_s,
                  Maneuver(kind, m.location, m.bearing_before, mn.bearing_after, mod,
                           m.exit),
                  list(cur.intersections), nxt.ref, nxt.destinations, nxt.exits,
                  nxt.rotary_name, nxt.pronunciation, cur.mode, cur.first_edge)
    _fold(merged, nxt)
    return merged


def _adjusted(prev: Step, step: Step, before: Step) -> Step:
    """``step`` with the maneuver it makes from the road of ``before`` on (OSRM
    ``AdjustToCombinedTurnStrategy`` after a name change was folded)."""
    kind, mod = _adjust(prev, step, before, from_before=True)
    m = step.maneuver
    assert m is not None
    bm = before.maneuver
    b_before = bm.bearing_before if bm is not None else m.bearing_before
    return Step(step.name, step.distance_m, step.duration_s, step.location,
                step.turn_delay_s,
                Maneuver(kind, m.location, b_before, m.bearing_after, mod, m.exit),
                step.intersections, step.ref, step.destinations, step.exits,
                step.rotary_name, step.pronunciation, step.mode, step.first_edge)


def _direction(angle: float) -> str:
    """OSRM ``getTurnDirection`` for an angle positive to the right (as
    :func:`engine.guidance.modifier`)."""
    dev = abs(angle)
    side = "right" if angle > 0 else "left"
    if dev <= 10:
        return "straight"
    if dev <= 40:
        return f"slight {side}"
    if dev <= 120:
        return side
    return f"sharp {side}"


def _adjust(prev: Step, at: Step, other: Step, *, from_before: bool = False
            ) -> tuple[str, str | None]:
    """Type and modifier of the maneuver at ``at`` combined with ``other`` (OSRM
    ``AdjustToCombinedTurnStrategy``): the modifier of the whole turn when the first part
    is short, the type ``continue`` / ``turn`` by whether the street goes on."""
    m, mo = at.maneuver, other.maneuver
    assert m is not None and mo is not None
    first, last = (other, at) if from_before else (at, other)
    fm, lm = first.maneuver, last.maneuver
    assert fm is not None and lm is not None
    total = _angle_between(fm.bearing_before, lm.bearing_after)
    a_first = _angle_between(fm.bearing_before, fm.bearing_after)
    a_last = _angle_between(lm.bearing_before, lm.bearing_after)
    # OSRM findTotalTurnAngle: the whole turn unless it comes back (a U-turn) or the first
    # part is long and the two parts turn to different sides
    use_total = abs(abs(total) - 180.0) >= 20.0 and (
        first.distance_m < MAX_COLLAPSE_DISTANCE
        or (a_first >= -5 and a_last >= -5) or (a_first <= 5 and a_last <= 5))
    mod = m.modifier if m.type in ("fork", "merge") else _direction(total if use_total
                                                                     else a_first)
    kind = m.type
    target = last
    non_turn = _name_change(other) or _name_change(at)
    same = _same_name(prev, target)
    if non_turn:
        if kind == "continue" and not same:
            kind = "turn"
        elif kind == "turn" and same:
            kind = "continue"
    elif mo.type == "on ramp":
        kind = "on ramp"
    if kind == "new name" and mod != "straight":
        kind = "turn"
    return kind, mod


def _angle_between(before: float, after: float) -> float:
    """Degrees from bearing ``before`` to bearing ``after``, positive to the right."""
    a = ((after - before + 180.0) % 360.0) - 180.0
    return 180.0 if a == -180.0 else a


def _name_change(s: Step) -> bool:
    """A new name, or a turn / continue straight on (OSRM ``is_non_turn``)."""
    m = s.maneuver
    return m is not None and (m.type == "new name" or (
        m.type in ("turn", "continue") and m.modifier == "straight"))


def _bad_uturn(a: Step, b: Step) -> bool:
    """OSRM ``noBadUTurnCombination``, negated."""
    ma, mb = a.maneuver, b.maneuver
    assert ma is not None and mb is not None
    if ma.modifier != "uturn" and mb.modifier != "uturn":
        return False
    return not ((ma.type == "new name" and mb.modifier == "uturn")
                or (mb.type == "new name" and ma.modifier == "uturn"))


def _name_oscillation(prev: Step, cur: Step, nxt: Step) -> bool:
    """OSRM ``isNameOszillation``: two name changes in a row back to the first name."""
    if _type(prev) in _ROUNDABOUT_TYPES or prev.mode != cur.mode:
        return False
    if _bad_uturn(prev, cur) and _bad_uturn(cur, nxt):
        return False
    return _name_change(cur) and _name_change(nxt) and (
        (prev.name == nxt.name and prev.ref == nxt.ref) or _same_name(prev, nxt))


def _preceded_by_name_change(prev: Step, cur: Step, nxt: Step) -> bool:
    """OSRM ``maneuverPreceededByNameChange``: a short, undisturbed name change, then a
    maneuver."""
    if _type(prev) in _ROUNDABOUT_TYPES or prev.mode != cur.mode:
        return False
    if _bad_uturn(prev, cur) and _bad_uturn(cur, nxt):
        return False
    return (cur.distance_m <= MAX_COLLAPSE_DISTANCE and _undisturbed(cur)
            and _name_change(cur) and _type(nxt) not in ("", "arrive", "depart"))


def _succeeded_by_name_change(cur: Step, nxt: Step) -> bool:
    """OSRM ``maneuverSucceededByNameChange``: a maneuver onto a short stretch, then a name
    change."""
    if _bad_uturn(cur, nxt) or _type(cur) in ("depart", "notification"):
        return False
    mn = nxt.maneuver
    assert mn is not None
    follows = _name_change(nxt)
    if not follows:
        return False
    short = cur.distance_m <= MAX_COLLAPSE_DISTANCE and _undisturbed(cur)
    near = cur.distance_m <= 1.5 * MAX_COLLAPSE_DISTANCE
    strong = mn.type == "new name" and mn.modifier == "straight" and near
    choiceless = (mn.type == "new name" and sum(nxt.intersections[0].entry) == 1 and near)
    return short or strong or choiceless


def _is_uturn(prev: Step, cur: Step, nxt: Step) -> bool:
    """OSRM ``isUTurn(prev, cur, nxt)``."""
    if _type(cur) not in _TURNS or _type(prev) in _ROUNDABOUT_TYPES \
            or not prev.mode == cur.mode == nxt.mode:
        return False
    a, b = cur.intersections[0], nxt.intersections[0]
    if a.in_ is None or b.out is None:
        return False
    if not _reversed((a.bearings[a.in_] + 180) % 360, b.bearings[b.out]):
        return False
    if not _same_name(prev, nxt):
        return False
    undisturbed = _undisturbed(cur)
    short = cur.distance_m <= MAX_COLLAPSE_DISTANCE and undisturbed
    link = (cur.distance_m <= 2 * MAX_COLLAPSE_DISTANCE and not cur.name
            and bool(prev.name) and bool(nxt.name) and undisturbed)
    only_way = sum(b.entry) == 1 and undisturbed
    return short or link or only_way


def _short_names(steps: list[Step], must_keep: MustKeep) -> list[Step]:
    out = [steps[0]]
    for s in steps[1:]:
        m = s.maneuver
        if m is None or m.type != "new name":
            out.append(s)
            continue
        prev = out[-1]
        if (not s.intersections[0].lanes and s.mode == prev.mode
                and (_same_name(prev, s) or s.distance_m < NAME_SEGMENT_CUTOFF_LENGTH)
                and not must_keep(s.first_edge)):
            _fold(prev, s)
            continue
        out.append(s)
    return out


# ------------------------------------------------------------------------------ depart, arrive
MIN_RELATIVE_M = 5.0  #: OSRM ``MINIMAL_RELATIVE_DISTANCE``
MAX_RELATIVE_M = 300.0  #: OSRM ``MAXIMAL_RELATIVE_DISTANCE``


def relative_side(first: Sequence[float], second: Sequence[float],
                  third: Sequence[float], *, asked: Sequence[float]) -> str | None:
    """OSRM ``assignRelativeLocations``' modifier of a depart or arrive maneuver: where the
    point ``asked`` for (``first`` at the departure, ``third`` at the arrival) lies from the
    road at ``second`` (its snap) driven towards ``third`` or from ``first``, all
    ``[lon, lat]``; ``None`` (OSRM: no modifier) when it is less than 5 m or more than
    300 m from its snap."""
    d = _metres(asked, second)
    if not MIN_RELATIVE_M <= d <= MAX_RELATIVE_M:
        return None
    angle = _angle(first, second, third)
    if angle < 135:
        return "right"
    if angle <= 225:
        return "straight"
    return "left"


def _metres(a: Sequence[float], b: Sequence[float]) -> float:
    """Great-circle metres between two ``[lon, lat]`` points (as
    :func:`engine.graph.haversine_m`, for one pair)."""
    p1, p2 = math.radians(a[1]), math.radians(b[1])
    dp, dl = p2 - p1, math.radians(b[0] - a[0])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(h, 1.0)))


def _angle(first: Sequence[float], second: Sequence[float], third: Sequence[float]) -> float:
    """OSRM ``computeAngle`` (web Mercator, degrees in ``[0, 360)``, 180: straight on)."""
    if list(first) == list(second) or list(second) == list(third):
        return 180.0

    def y(lat: float) -> float:
        return math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))

    v1x, v1y = first[0] - second[0], y(first[1]) - y(second[1])
    v2x, v2y = third[0] - second[0], y(third[1]) - y(second[1])
    return math.degrees(math.atan2(v2y, v2x) - math.atan2(v1y, v1x)) % 360.0


def set_relative_sides(depart: Step, arrive: Step, coords: list[list[float]],
                       start_asked: Sequence[float], end_asked: Sequence[float]) -> None:
    """Give the depart and arrive maneuvers OSRM's relative modifier (their maneuvers are
    the route's own)."""
    if len(coords) < 2 or depart.maneuver is None or arrive.maneuver is None:
        return
    depart.maneuver.modifier = relative_side(start_asked, coords[0], coords[1],
                                             asked=start_asked)
    arrive.maneuver.modifier = relative_side(coords[-2], coords[-1], end_asked,
                                             asked=end_asked)
