"""OSM turn restrictions (``type=restriction`` relations) for cars and emergency vehicles.

Like :mod:`engine.extract.tags`, this is tag knowledge: the graph builder downstream sees only
:class:`TurnRestriction` records (OSM way / node ids, vehicle class bits, an opening_hours
condition) and never an OSM tag.

Rules (OSM wiki "Relation:restriction", "Conditional restrictions", and OSRM's
``restriction_parser.cpp`` with the car profile's ``restrictions = {motorcar, motor_vehicle,
vehicle}``):

* keys: ``restriction``, ``restriction:motorcar``, ``restriction:motor_vehicle`` and
  ``restriction:vehicle`` bind cars and emergency vehicles; ``restriction:emergency`` binds
  emergency vehicles only; ``restriction:hgv``, ``:bus``, ``:bicycle``... bind neither. When
  several keys bind the same vehicle class, the most specific one wins for it (OSM access
  hierarchy: ``emergency`` > ``motorcar`` > ``motor_vehicle`` > ``vehicle`` > plain). The
  deprecated ``type=restriction:<mode>`` + ``restriction=<value>`` means
  ``restriction:<mode>=<value>``.
* ``except=a;b``: ``motorcar`` / ``motor_vehicle`` / ``vehicle`` exempt cars *and* emergency
  vehicles, ``emergency`` exempts emergency vehicles; other modes change nothing here.
* members: one ``from`` way (several for ``no_entry``), one ``to`` way (several for
  ``no_exit``), and one ``via`` node or one or more ``via`` ways; other roles (e.g.
  ``location_hint``) are ignored. Whether members exist in the file is not checked here.
* time conditions: ``restriction[:<mode>]:conditional=<kind> @ (<opening_hours>)[; ...]`` and
  the deprecated ``day_on`` / ``day_off`` / ``hour_on`` / ``hour_off`` become
  :attr:`TurnRestriction.condition`, evaluated with the ``opening_hours`` library
  (opening-hours-py). Vehicle conditions (``@ (weight>7.5)``) do not concern cars. A condition
  that cannot be understood keeps the restriction *unconditional* (the safe reading for a
  router) and is reported, as is an informal ``time=`` tag (not interpreted: its ``;`` lists
  mean "or" to their authors but "override" in opening_hours). ``<kind>:conditional=none @
  ...`` (a restriction lifted at times) is not modelled: the plain restriction holds always.
* via ways: :func:`order_via_ways` puts them in driving order once the ways' nodes are known
  (``read_osm_file`` does it); a relation alone gives them as listed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

RC_CAR = 1  #: ordinary motor cars
RC_EMERGENCY = 2  #: emergency vehicles (the ambulance profile)
RC_ALL = RC_CAR | RC_EMERGENCY

NO_KINDS = frozenset(
    {"no_left_turn", "no_right_turn", "no_straight_on", "no_u_turn", "no_entry", "no_exit"}
)
ONLY_KINDS = frozenset({"only_left_turn", "only_right_turn", "only_straight_on", "only_u_turn"})
KINDS = NO_KINDS | ONLY_KINDS

#: Access modes (``restriction:<mode>``, ``except=<mode>``) that mean cars and ambulances.
CAR_MODES = frozenset({"motorcar", "motor_vehicle", "vehicle"})
EMERGENCY_MODE = "emergency"
#: Most specific first: which ``restriction[:<mode>]`` key decides for a vehicle class.
_HIERARCHY: dict[int, tuple[str | None, ...]] = {
    RC_CAR: ("motorcar", "motor_vehicle", "vehicle", None),
    RC_EMERGENCY: ("emergency", "motorcar", "motor_vehicle", "vehicle", None),
}

_NONE: Any = object()  # "no such key" marker (None is the plain ``restriction`` key's mode)

# Skip reasons (the second element of a ``(kind, reason)`` pair).
SKIP_OTHER_VEHICLES = "other vehicles"
SKIP_EXEMPT = "exempt"
SKIP_UNKNOWN_KIND = "unknown kind"
SKIP_VEHICLE_CONDITION = "vehicle condition"
KEPT_UNCONDITIONAL = "condition unparsable, kept unconditional"
KEPT_UNCONDITIONAL_TIME = "'time' tag not interpreted, kept unconditional"
SKIP_CONDITIONAL_NONE = "conditional exemption 'none' ignored"


@dataclass(frozen=True, slots=True)
class TurnRestriction:
    """One turn restriction between two ways, in OSM ids.

    ``via_ways`` are in order from the from-way to the to-way when the reader could order
    them (``read_osm_file`` does, from the ways' nodes), else as listed in the relation.
    ``condition`` is an opening_hours expression (local time) during which the restriction
    holds; ``None`` means always.
    """

    relation_id: int
    kind: str
    only: bool
    classes: int
    from_way: int
    to_way: int
    via_node: int | None = None
    via_ways: tuple[int, ...] = ()
    condition: str | None = None


# --------------------------------------------------------------------------- conditions
_VEHICLE_CONDITION = re.compile(
    r"[<>=]|\b(weight|axleload|length|height|width|wheels|axles|occupants|trailer|hazmat|"
    r"emissions|maxweight|maxheight|maxlength|maxwidth|maxaxleload)\b",
    re.IGNORECASE,
)
_DAYS = {"mo": "Mo", "tu": "Tu", "we": "We", "th": "Th", "fr": "Fr", "sa": "Sa", "su": "Su"}
_HOUR = re.compile(r"^\s*(\d{1,2})(?:\s*[:.h]\s*(\d{2}))?\s*$")


@lru_cache(maxsize=4096)
def _opening_hours(condition: str) -> Any:
    """Parsed expression (cached: a map repeats the same few conditions); raises on error."""
    import opening_hours

    return opening_hours.OpeningHours(condition)


def valid_condition(condition: str | None) -> bool:
    """Whether ``condition`` is an opening_hours expression the library can evaluate."""
    if not condition or not condition.strip():
        return False
    try:
        _opening_hours(condition.strip())
    except Exception:  # opening_hours.ParserError and friends
        return False
    return True


def condition_active(condition: str | None, local_time: datetime) -> bool:
    """Whether a restriction with ``condition`` holds at ``local_time``.

    ``local_time`` is the wall-clock time at the restriction (its ``tzinfo``, if any, is
    ignored: convert to the map's time zone first). ``None`` means always active. An
    expression whose state is *unknown* at that time (``"Mo-Fr 07:00-09:00 unknown"``, or an
    open-ended comment) counts as active, the safe reading for a router.

    Raises
    ------
    ValueError
        If the condition cannot be parsed (check with :func:`valid_condition`).
    """
    if condition is None:
        return True
    try:
        oh = _opening_hours(condition.strip())
    except Exception as exc:
        raise ValueError(f"cannot parse opening_hours condition {condition!r}: {exc}") from exc
    return not oh.is_closed(local_time.replace(tzinfo=None))


def is_vehicle_condition(condition: str) -> bool:
    """A condition about the vehicle (``weight>7.5``, ``length>12``, ``occupants<2``...), not
    the time. Weather (``wet``, ``snow``) is not one: it cannot be evaluated, so such a
    restriction is kept unconditional."""
    return bool(_VEHICLE_CONDITION.search(condition))


def parse_conditional(value: str) -> list[tuple[str, str]] | None:
    """Split ``"no_left_turn @ (Mo-Fr 07:00-09:00); no_u_turn @ Sa"`` into
    ``[(value, condition), ...]`` (OSM conditional-restriction syntax: parentheses optional,
    required when the condition itself contains ``;``). ``None`` if the syntax is broken."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        at = value.find("@", i)
        if at < 0:
            return None
        kind = value[i:at].strip()
        j = at + 1
        while j < n and value[j].isspace():
            j += 1
        if j < n and value[j] == "(":
            depth, k = 0, j
            while k < n:
                if value[k] == "(":
                    depth += 1
                elif value[k] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            if k >= n:
                return None
            condition = value[j + 1:k].strip()
            k += 1
            while k < n and value[k].isspace():
                k += 1
            if k < n and value[k] != ";":
                return None
        else:
            k = value.find(";", j)
            k = n if k < 0 else k
            condition = value[j:k].strip()
        if not kind or not condition:
            return None
        out.append((kind, condition))
        i = k + 1
    return out or None


def _legacy_day(value: str | None) -> str | None:
    if value is None:
        return None
    return _DAYS.get(value.strip()[:2].lower())


def _legacy_hour(value: str | None) -> str | None:
    if value is None:
        return None
    m = _HOUR.match(value)
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        return None
    return f"{hour:02d}:{minute:02d}"


def legacy_condition(tags: Mapping[str, str]) -> str | None:
    """The opening_hours expression equivalent to deprecated ``day_on`` / ``day_off`` /
    ``hour_on`` / ``hour_off`` tags: ``"Mo-Fr 07:00-09:00"``, ``"07:00-09:00"``,
    ``"Sa-Su"``; ``""`` when such tags are present but make no sense, ``None`` when absent.
    Hours may wrap midnight (``"22:00-06:00"``)."""
    keys = ("day_on", "day_off", "hour_on", "hour_off")
    if not any(k in tags for k in keys):
        return None
    day_on, day_off = _legacy_day(tags.get("day_on")), _legacy_day(tags.get("day_off"))
    hour_on, hour_off = _legacy_hour(tags.get("hour_on")), _legacy_hour(tags.get("hour_off"))
    if ("day_on" in tags and day_on is None) or ("day_off" in tags and day_off is None):
        return ""
    if ("hour_on" in tags) != ("hour_off" in tags) or (
        "hour_on" in tags and (hour_on is None or hour_off is None or hour_on == hour_off)
    ):
        return ""
    parts = []
    days = [d for d in (day_on, day_off) if d is not None]
    if days:
        parts.append(days[0] if len(set(days)) == 1 else f"{days[0]}-{days[1]}")
    if hour_on is not None:
        parts.append(f"{hour_on}-{hour_off}")
    return " ".join(parts)


# --------------------------------------------------------------------------- relations
def _except_mask(tags: Mapping[str, str]) -> int:
    """Vehicle classes exempted by ``except=``."""
    modes = {m.strip().lower() for m in (tags.get("except") or "").split(";")}
    mask = 0
    if modes & CAR_MODES:
        mask |= RC_ALL
    if EMERGENCY_MODE in modes:
        mask |= RC_EMERGENCY
    return mask


def interpret_restriction(
    relation_id: int,
    tags: Mapping[str, str],
    members: Sequence[tuple[str, int, str]],
) -> tuple[list[TurnRestriction], list[tuple[str, str]]]:
    """Interpret one relation as turn restrictions for cars and emergency vehicles.

    ``members`` are ``(type, ref, role)`` with type ``"n"``, ``"w"`` or ``"r"``. Returns the
    restrictions (one per from-way x to-way, and per condition) and the ``(kind, reason)``
    pairs of what was skipped or kept in a degraded form (reasons: ``"other vehicles"``,
    ``"exempt"``, ``"unknown kind"``, ``"vehicle condition"``, ``"malformed: ..."``, and
    ``"condition unparsable, kept unconditional"`` for a restriction that *is* returned,
    without its condition). A relation that is not a restriction gives ``([], [])``.
    """
    rtype = (tags.get("type") or "").strip()
    if rtype == "restriction":
        type_mode: str | None = None
    elif rtype.startswith("restriction:"):
        type_mode = rtype[len("restriction:"):].strip().lower() or None
    else:
        return [], []

    skipped: list[tuple[str, str]] = []
    # mode -> value, for plain and conditional keys (mode None = plain "restriction")
    plain: dict[str | None, str] = {}
    conditional: dict[str | None, str] = {}
    for key, value in tags.items():
        if key != "restriction" and not key.startswith("restriction:"):
            continue
        rest = key[len("restriction:"):] if key != "restriction" else ""
        target = plain
        if rest == "conditional" or rest.endswith(":conditional"):
            target = conditional
            rest = rest[: -len("conditional")].rstrip(":")
        mode = rest.lower() or type_mode
        target[mode] = value

    if not plain and not conditional:
        return [], [("", "malformed: no restriction value")]

    # (kind, condition) -> classes. condition: None = always, "" = could not be parsed
    entries: dict[tuple[str, str | None], int] = {}
    legacy = legacy_condition(tags)
    for cls, chain in _HIERARCHY.items():
        mode = next((m for m in chain if m in plain), _NONE)
        if mode is not _NONE:
            plain_key = (_norm(plain[mode]), legacy)
            entries[plain_key] = entries.get(plain_key, 0) | cls
        mode = next((m for m in chain if m in conditional), _NONE)
        if mode is not _NONE:
            for kind, when in _conditional_pairs(conditional[mode]):
                entries[(kind, when)] = entries.get((kind, when), 0) | cls

    if not entries:
        kinds = {_norm(v) for v in plain.values()}
        kinds |= {k for v in conditional.values() for k, _ in _conditional_pairs(v)}
        return [], [(k, SKIP_OTHER_VEHICLES) for k in sorted(kinds)]

    exempt = _except_mask(tags)
    from_ways, to_ways, via_nodes, via_ways, bad = _members(members)
    # (kind, condition) -> (classes, note) after dropping what does not concern us
    kept: dict[tuple[str, str | None], tuple[int, str | None]] = {}
    for (kind, cond), cls in entries.items():
        note: str | None = None
        if kind == "none" and cond is not None:
            # "restriction:conditional=none @ ..." lifts the plain restriction at those times:
            # not modelled, the plain restriction (if any) holds at all times
            skipped.append((kind, SKIP_CONDITIONAL_NONE))
            continue
        if kind not in KINDS:
            skipped.append((kind, SKIP_UNKNOWN_KIND))
            continue
        if cond is not None:
            if cond and is_vehicle_condition(cond):
                skipped.append((kind, SKIP_VEHICLE_CONDITION))
                continue
            if not valid_condition(cond):
                note, cond = KEPT_UNCONDITIONAL, None
            else:
                cond = cond.strip()
        elif "time" in tags:
            note = KEPT_UNCONDITIONAL_TIME
        cls &= ~exempt
        if not cls:
            skipped.append((kind, SKIP_EXEMPT))
            continue
        problem = bad or _member_problem(kind, from_ways, to_ways, via_nodes, via_ways)
        if problem:
            skipped.append((kind, f"malformed: {problem}"))
            continue
        old_cls, old_note = kept.get((kind, cond), (0, None))
        kept[(kind, cond)] = (old_cls | cls, old_note or note)

    found: list[TurnRestriction] = []
    for (kind, cond), (cls, note) in kept.items():
        if note:
            skipped.append((kind, note))
        for f in from_ways:
            for t in to_ways:
                found.append(TurnRestriction(
                    relation_id=int(relation_id), kind=kind, only=kind in ONLY_KINDS,
                    classes=cls, from_way=f, to_way=t,
                    via_node=via_nodes[0] if via_nodes else None,
                    via_ways=tuple(via_ways), condition=cond,
                ))
    return found, skipped


def _norm(value: str) -> str:
    return value.strip().lower()


def _conditional_pairs(value: str) -> list[tuple[str, str]]:
    """``(kind, condition)`` pairs of a conditional value; condition ``""`` when the value's
    syntax is broken (the kind is then whatever stands before ``@``)."""
    parsed = parse_conditional(value)
    if parsed is None:
        return [(_norm(value.split("@")[0]), "")]
    return [(_norm(kind), cond) for kind, cond in parsed]


def _members(members: Sequence[tuple[str, int, str]]
             ) -> tuple[list[int], list[int], list[int], list[int], str | None]:
    from_ways: list[int] = []
    to_ways: list[int] = []
    via_nodes: list[int] = []
    via_ways: list[int] = []
    bad: str | None = None
    for mtype, ref, role in members:
        role = (role or "").strip()
        if role not in ("from", "to", "via"):
            continue  # location_hint, empty roles...
        if role == "via" and mtype == "n":
            via_nodes.append(int(ref))
        elif mtype != "w":
            name = {"n": "node", "r": "relation"}.get(mtype, mtype)
            bad = bad or f"{role} member is a {name}"
        elif role == "from":
            from_ways.append(int(ref))
        elif role == "to":
            to_ways.append(int(ref))
        else:
            via_ways.append(int(ref))
    return from_ways, to_ways, via_nodes, via_ways, bad


def _member_problem(kind: str, from_ways: list[int], to_ways: list[int], via_nodes: list[int],
                    via_ways: list[int]) -> str | None:
    if not from_ways:
        return "no from way"
    if not to_ways:
        return "no to way"
    if len(from_ways) > 1 and kind != "no_entry":
        return f"{len(from_ways)} from ways"
    if len(to_ways) > 1 and kind != "no_exit":
        return f"{len(to_ways)} to ways"
    if via_nodes and via_ways:
        return "via node and via ways"
    if len(via_nodes) > 1:
        return f"{len(via_nodes)} via nodes"
    if not via_nodes and not via_ways:
        return "no via member"
    return None


def order_via_ways(from_nodes: Sequence[int] | None, via_nodes: Mapping[int, Sequence[int]],
                   via_ways: Sequence[int]) -> tuple[int, ...]:
    """Order ``via_ways`` into a chain starting at the from-way: each next via way shares a
    node with the previous way. ``via_nodes`` maps a via way id to its node ids. The listed
    order is returned when a way's nodes are unknown or the chain is not unique."""
    if len(via_ways) < 2 or from_nodes is None or any(w not in via_nodes for w in via_ways):
        return tuple(via_ways)
    current = set(from_nodes)
    left = list(dict.fromkeys(via_ways))
    if len(left) != len(via_ways):
        return tuple(via_ways)
    chain: list[int] = []
    while left:
        touching = [w for w in left if current & set(via_nodes[w])]
        if len(touching) != 1:
            return tuple(via_ways)
        w = touching[0]
        chain.append(w)
        left.remove(w)
        current = set(via_nodes[w])
    return tuple(chain)
