"""OpenStreetMap tags: which roads a vehicle may use, in which direction, how fast.

This is the only place in gyrophare that knows OSM tagging. Everything downstream sees
highway class codes, speeds in km/h and bit flags on edges, so that live traffic and
vehicle profiles (ambulance, car) can be computed vectorised over arrays.

Defaults follow OSRM's ``car.lua`` profile (speeds per highway class, access tag black list,
barrier white list) because OSRM is what dispatch front ends are used to; where OSRM has no
opinion (busways, emergency access links) the choice is written next to the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Highway classes. The code of a class is its index in this tuple (stored as uint8 per edge).
HIGHWAY_CLASSES: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "service",
    "road",
    "busway",
    "pedestrian",
    "track",
    "barrier",  # zero-length edge through a barrier node (bollard, block, ...)
)
HIGHWAY_CODE: dict[str, int] = {name: i for i, name in enumerate(HIGHWAY_CLASSES)}

#: Free-flow speed (km/h) when a way has no usable ``maxspeed``: OSRM car.lua defaults;
#: ``road`` (unknown class) as unclassified-ish 20; ``busway`` 25 (urban bus corridors);
#: ``pedestrian`` and ``track`` 10 (only reachable by emergency vehicles, at walking pace x2).
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 90.0,
    "motorway_link": 45.0,
    "trunk": 85.0,
    "trunk_link": 40.0,
    "primary": 65.0,
    "primary_link": 30.0,
    "secondary": 55.0,
    "secondary_link": 25.0,
    "tertiary": 40.0,
    "tertiary_link": 20.0,
    "unclassified": 25.0,
    "residential": 25.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 20.0,
    "busway": 25.0,
    "pedestrian": 10.0,
    "track": 10.0,
    "barrier": 5.0,
}

#: Classes open to general motor traffic (subject to access tags).
MOTOR_CLASSES = frozenset(HIGHWAY_CLASSES[:15])
#: Classes kept only when emergency vehicles (or motor vehicles) are explicitly allowed.
EMERGENCY_ONLY_CLASSES = frozenset({"pedestrian", "footway", "cycleway", "track"})

# ---------------------------------------------------------------------------------------------
# Edge flags (uint32 bit field).
F_ONEWAY = 1 << 0  #: the edge is the legal direction of a one-way road
F_AGAINST_ONEWAY = 1 << 1  #: the edge runs against a one-way road (contraflow only)
F_REVERSIBLE = 1 << 2  #: ``oneway=reversible|alternating``: direction changes with time
F_ROUNDABOUT = 1 << 3
F_CAR_NO = 1 << 4  #: general motor traffic forbidden by access tags (no, private, psv, ...)
F_DESTINATION = 1 << 5  #: access=destination (allowed, local traffic only)
F_EMERGENCY_YES = 1 << 6  #: emergency=yes|designated
F_EMERGENCY_NO = 1 << 7  #: emergency=no: not even emergency vehicles
F_PSV = 1 << 8  #: psv / bus allowed (yes or designated)
F_BUS_LANE = 1 << 9  #: the road has a bus lane in this direction
F_BUSWAY = 1 << 10  #: highway=busway
F_EMERGENCY_ACCESS = 1 << 11  #: service=emergency_access
F_BARRIER = 1 << 12  #: crosses a barrier that stops cars (bollard, block, ...)
F_BARRIER_LOWERABLE = 1 << 13  #: that barrier can be lowered/opened for emergency vehicles
F_PRIVATE = 1 << 14  #: access=private (hospital grounds often are)
F_SERVICE_DRIVEWAY = 1 << 15  #: service=driveway|parking_aisle
#: the edge runs against its way's node order (the twin built reversed): a node control
#: tagged ``forward`` / ``backward`` applies to edges without / with this flag
F_REVERSED = 1 << 16
F_TOLL = 1 << 17  #: ``toll=yes``: OSRM's ``toll`` class (guidance, intersections)
F_TUNNEL = 1 << 18  #: ``tunnel=*`` other than ``no``: OSRM's ``tunnel`` class

FLAG_NAMES: dict[int, str] = {
    F_ONEWAY: "oneway",
    F_AGAINST_ONEWAY: "against_oneway",
    F_REVERSIBLE: "reversible",
    F_ROUNDABOUT: "roundabout",
    F_CAR_NO: "car_no",
    F_DESTINATION: "destination",
    F_EMERGENCY_YES: "emergency_yes",
    F_EMERGENCY_NO: "emergency_no",
    F_PSV: "psv",
    F_BUS_LANE: "bus_lane",
    F_BUSWAY: "busway",
    F_EMERGENCY_ACCESS: "emergency_access",
    F_BARRIER: "barrier",
    F_BARRIER_LOWERABLE: "barrier_lowerable",
    F_PRIVATE: "private",
    F_SERVICE_DRIVEWAY: "driveway",
    F_REVERSED: "reversed",
    F_TOLL: "toll",
    F_TUNNEL: "tunnel",
}

#: Flags that forbid an edge for ordinary cars (the ``car`` profile).
CAR_FORBIDDEN = F_AGAINST_ONEWAY | F_REVERSIBLE | F_CAR_NO | F_BARRIER

# OSRM car.lua: access values that forbid a car.
ACCESS_BLACKLIST = frozenset(
    {"no", "agricultural", "forestry", "emergency", "psv", "customers", "private", "delivery",
     "bus", "discouraged", "permit", "military"}
)
ACCESS_ALLOW = frozenset({"yes", "permissive", "designated", "destination", "official"})
# OSRM car.lua barrier_whitelist: barriers a car can pass.
BARRIER_PASSABLE = frozenset(
    {"cattle_grid", "border_control", "toll_booth", "sally_port", "gate", "lift_gate", "no",
     "entrance", "height_restrictor", "arch", "kerb", "swing_gate", "cycle_barrier"}
)
LOWERABLE_BOLLARDS = frozenset({"rising", "removable", "foldable", "flexible"})

ONEWAY_FORWARD = frozenset({"yes", "1", "true"})
ONEWAY_BACKWARD = frozenset({"-1", "reverse"})
ONEWAY_REVERSIBLE = frozenset({"reversible", "alternating"})

# ---------------------------------------------------------------------------------------------
# maxspeed
MPH = 1.609344
#: Implicit limits written as ``CC:zone`` (OSM wiki "Default speed limits"), km/h.
ZONE_SPEEDS: dict[str, float] = {
    "urban": 50.0,
    "rural": 80.0,
    "trunk": 110.0,
    "motorway": 130.0,
    "living_street": 20.0,
    "walk": 7.0,
    "school": 30.0,
    "bicycle_road": 30.0,
    "pedestrian_zone": 10.0,
}
#: Country overrides of ``ZONE_SPEEDS``.
COUNTRY_ZONE_SPEEDS: dict[str, dict[str, float]] = {
    "FR": {"rural": 80.0, "motorway": 130.0, "trunk": 110.0, "living_street": 20.0},
    "DE": {"rural": 100.0, "motorway": 130.0, "trunk": 100.0, "living_street": 7.0},
    "AT": {"rural": 100.0, "motorway": 130.0, "trunk": 100.0},
    "BE": {"rural": 90.0, "motorway": 120.0, "trunk": 120.0},
    "CH": {"rural": 80.0, "motorway": 120.0, "trunk": 100.0},
    "IT": {"rural": 90.0, "motorway": 130.0, "trunk": 110.0},
    "ES": {"rural": 90.0, "motorway": 120.0, "trunk": 100.0},
    "NL": {"rural": 80.0, "motorway": 100.0, "trunk": 100.0},
    "FI": {"rural": 80.0, "motorway": 120.0, "trunk": 100.0},
    "GB": {"urban": 30 * MPH, "rural": 60 * MPH, "motorway": 70 * MPH, "trunk": 70 * MPH,
           "nsl_single": 60 * MPH, "nsl_dual": 70 * MPH},
    "UK": {"urban": 30 * MPH, "rural": 60 * MPH, "motorway": 70 * MPH, "nsl_single": 60 * MPH,
           "nsl_dual": 70 * MPH},
    "AD": {"rural": 90.0},
    "MC": {"urban": 50.0},
}
#: Tags giving a way's speed, first found wins (OSRM car.lua ``WayHandlers.maxspeed``).
MAXSPEED_KEYS = ("maxspeed:advisory", "maxspeed", "source:maxspeed", "maxspeed:type")
#: A speed limit is not the speed driven: car.lua's ``speed_reduction`` (0.8) applies to
#: every speed read from these tags (class defaults are already typical speeds).
MAXSPEED_REDUCTION = 0.8
#: ``maxspeed=none`` (no limit, German Autobahn): the advisory speed, 130 km/h.
NO_LIMIT_KMH = 130.0
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(km/h|kmh|kph|mph|knots)?\s*$")
_ZONE = re.compile(r"^([A-Za-z]{2}):(?:zone:?)?([A-Za-z_]*?)(\d+)?$")


def parse_maxspeed(value: str | None) -> float | None:
    """Parse an OSM ``maxspeed`` value into km/h, or ``None`` when it gives no usable number.

    Handles plain numbers, units (``mph``, ``knots``), country zone codes (``FR:urban``,
    ``DE:rural``, ``DE:zone30``, ``FR:zone:30``, ``GB:nsl_single``), ``walk`` and ``none``.
    Several values separated by ``;`` (a limit that changes with time) give the lowest one:
    an emergency router must not assume the faster one.
    """
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if ";" in value or "|" in value:
        parsed = [parse_maxspeed(v) for v in re.split(r"[;|]", value)]
        numbers = [p for p in parsed if p is not None]
        return min(numbers) if numbers else None
    low = value.lower()
    if low == "none":
        return NO_LIMIT_KMH
    if low == "walk":
        return ZONE_SPEEDS["walk"]
    m = _NUMBER.match(low)
    if m:
        speed = float(m.group(1))
        unit = m.group(2)
        if unit == "mph":
            speed *= MPH
        elif unit == "knots":
            speed *= 1.852
        return speed if 0.0 < speed < float("inf") else None
    m = _ZONE.match(value)
    if m:
        country, zone, number = m.group(1).upper(), m.group(2).lower(), m.group(3)
        if number is not None:
            return float(number) if 0.0 < float(number) < float("inf") else None
        if zone:
            table = COUNTRY_ZONE_SPEEDS.get(country, {})
            if zone in table:
                return table[zone]
            return ZONE_SPEEDS.get(zone)
    return None


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WayRule:
    """What a highway way means for routing, before it is split into edges.

    ``forward`` / ``backward`` say whether general traffic may drive along / against the
    node order; the edges against the legal direction are still built (flagged
    ``F_AGAINST_ONEWAY``) so that contraflow for ambulances is a weight change, not a rebuild.
    """

    highway: str
    speed_forward: float
    speed_backward: float
    flags_forward: int
    flags_backward: int
    name: str
    #: guidance tags per direction (:func:`guidance_info`, JSON text, ``""`` when none)
    info: tuple[str, str] = ("", "")


def _first(value: object) -> str | None:
    """osmnx collapses merged ways' tags into lists; take the first value."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return str(value[0]) if value else None
    text = str(value)
    if text.startswith("[") and text.endswith("]"):  # GraphML stores lists as their repr
        text = text[1:-1].split(",")[0].strip().strip("'\"")
    return text


def _access_value(tags: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    """The most specific access tag present wins (OSM access hierarchy)."""
    for key in keys:
        v = _first(tags.get(key))
        if v is not None:
            return v.lower()
    return None


def road_class(tags: Mapping[str, object]) -> str | None:
    """The highway class a way is routed as, or ``None`` if no emergency vehicle may use it."""
    highway = _first(tags.get("highway"))
    if highway is None:
        return None
    if _first(tags.get("area")) == "yes":
        return None
    if highway in MOTOR_CLASSES or highway == "busway":
        return highway
    if highway in EMERGENCY_ONLY_CLASSES:
        emergency = _access_value(tags, ("emergency",))
        motor = _access_value(tags, ("motor_vehicle", "vehicle"))
        if emergency in ("yes", "designated") or motor in ACCESS_ALLOW:
            return "pedestrian" if highway != "track" else "track"
    return None


def interpret_way(tags: Mapping[str, object]) -> WayRule | None:
    """Turn a way's tags into a :class:`WayRule`, or ``None`` when it is not a road for us."""
    highway = road_class(tags)
    if highway is None:
        return None
    default = DEFAULT_SPEED_KMH[highway]
    base = next((v for v in (parse_maxspeed(_first(tags.get(k))) for k in MAXSPEED_KEYS)
                 if v), None)
    fwd = parse_maxspeed(_first(tags.get("maxspeed:forward"))) or base
    bwd = parse_maxspeed(_first(tags.get("maxspeed:backward"))) or base
    fwd_speed = fwd * MAXSPEED_REDUCTION if fwd else default
    bwd_speed = bwd * MAXSPEED_REDUCTION if bwd else default

    flags = 0
    access = _access_value(tags, ("motorcar", "motor_vehicle", "vehicle", "access"))
    if highway in EMERGENCY_ONLY_CLASSES or highway in ("pedestrian", "track"):
        if access not in ACCESS_ALLOW:
            flags |= F_CAR_NO
    if highway == "busway":
        flags |= F_BUSWAY | F_CAR_NO | F_PSV
    if access is not None:
        if access in ACCESS_BLACKLIST:
            flags |= F_CAR_NO
        if access == "destination":
            flags |= F_DESTINATION
        if access == "private":
            flags |= F_PRIVATE
    emergency = _access_value(tags, ("emergency",))
    if emergency in ("yes", "designated", "permissive"):
        flags |= F_EMERGENCY_YES
    elif emergency == "no":
        flags |= F_EMERGENCY_NO
    psv = _access_value(tags, ("bus", "psv"))
    if psv in ("yes", "designated", "permissive"):
        flags |= F_PSV
    service = _first(tags.get("service"))
    if service == "emergency_access":
        flags |= F_EMERGENCY_ACCESS | F_CAR_NO
    elif service in ("driveway", "parking_aisle"):
        flags |= F_SERVICE_DRIVEWAY
    junction = _first(tags.get("junction"))
    if junction in ("roundabout", "circular"):
        flags |= F_ROUNDABOUT
    if (_first(tags.get("toll")) or "").lower() == "yes":
        flags |= F_TOLL
    if (_first(tags.get("tunnel")) or "no").lower() not in ("no", "false", "0"):
        flags |= F_TUNNEL

    oneway = (_first(tags.get("oneway")) or "").lower()
    if oneway in ONEWAY_FORWARD:
        direction = 1
    elif oneway in ONEWAY_BACKWARD:
        direction = -1
    elif oneway in ONEWAY_REVERSIBLE:
        direction = 2
    elif oneway in ("no", "false", "0"):
        direction = 0
    elif junction in ("roundabout", "circular") or highway in ("motorway", "motorway_link"):
        direction = 1  # implied oneway
    else:
        direction = 0

    fwd, bwd = flags, flags
    if direction == 1:
        fwd |= F_ONEWAY
        bwd |= F_AGAINST_ONEWAY
    elif direction == -1:
        fwd |= F_AGAINST_ONEWAY
        bwd |= F_ONEWAY
    elif direction == 2:
        fwd |= F_REVERSIBLE
        bwd |= F_REVERSIBLE

    # Bus lanes: busway=lane (legacy), busway:{right,left,both}=lane, lanes:bus / lanes:psv.
    bus_fwd = bus_bwd = False
    if _first(tags.get("busway")) == "lane" or _first(tags.get("busway:both")) == "lane":
        bus_fwd = bus_bwd = True
    if _first(tags.get("busway:right")) == "lane":
        bus_fwd = True
    if _first(tags.get("busway:left")) == "lane":
        # right-hand traffic: the left lane of a two-way road runs backward
        if direction == 0:
            bus_bwd = True
        else:
            bus_fwd = True
    for key, side in (("lanes:bus", 0), ("lanes:psv", 0), ("lanes:bus:forward", 1),
                      ("lanes:psv:forward", 1), ("lanes:bus:backward", -1),
                      ("lanes:psv:backward", -1)):
        v = _first(tags.get(key))
        if v is not None and v.isascii() and v.isdigit() and int(v) > 0:
            if side >= 0:
                bus_fwd = True
            if side <= 0:
                bus_bwd = True
    for key, is_fwd in (("bus:lanes", None), ("bus:lanes:forward", True),
                        ("bus:lanes:backward", False), ("psv:lanes", None),
                        ("psv:lanes:forward", True), ("psv:lanes:backward", False)):
        v = _first(tags.get(key))
        if v is not None and "designated" in v:
            if is_fwd in (None, True):
                bus_fwd = True
            if is_fwd in (None, False):
                bus_bwd = True
    if bus_fwd:
        fwd |= F_BUS_LANE
    if bus_bwd:
        bwd |= F_BUS_LANE

    name = _first(tags.get("name")) or _first(tags.get("ref")) or ""
    return WayRule(highway, float(fwd_speed), float(bwd_speed), fwd, bwd, name,
                   guidance_info(tags, direction))


def _directed(tags: Mapping[str, object], key: str, forward: bool, direction: int
              ) -> str | None:
    """``key:forward`` / ``key:backward``, else ``key`` itself where it applies to this
    direction (a one-way road's tag is for its legal direction; a two-way road's plain
    ``turn:lanes`` / ``destination`` is read as both, as OSRM's car.lua does)."""
    value = _first(tags.get(f"{key}:{'forward' if forward else 'backward'}"))
    if value:
        return value
    plain = _first(tags.get(key))
    if not plain:
        return None
    if (direction == 1 and not forward) or (direction == -1 and forward):
        return None
    return plain


def guidance_info(tags: Mapping[str, object], direction: int = 0) -> tuple[str, str]:
    """The tags turn-by-turn guidance reads, per direction ``(forward, backward)``, as
    compact JSON (``""`` when there are none): ``ref``, ``destinations`` (OSRM's string:
    ``destination:ref`` then ``destination``, ``"A 8: Nice, Menton"``), ``exits``
    (``junction:ref``), ``pronunciation`` (``name:pronunciation``), ``lanes``
    (``turn:lanes`` for that direction). ``direction``: 1 one-way forward, -1 backward."""
    import json

    out: list[str] = []
    for forward in (True, False):
        info: dict[str, str] = {}
        for key, tag in (("ref", "ref"), ("exits", "junction:ref"),
                         ("pronunciation", "name:pronunciation")):
            value = _first(tags.get(tag))
            if value:
                info[key] = value.strip()
        dest = _directed(tags, "destination", forward, direction)
        dest_ref = _directed(tags, "destination:ref", forward, direction)
        dest = dest.replace(";", ", ") if dest else None
        dest_ref = dest_ref.replace(";", ", ") if dest_ref else None
        if dest or dest_ref:
            info["destinations"] = (f"{dest_ref}: {dest}" if dest and dest_ref
                                    else str(dest or dest_ref))
        lanes = _directed(tags, "turn:lanes", forward, direction)
        if lanes:
            info["lanes"] = lanes
        out.append(json.dumps(info, ensure_ascii=False, sort_keys=True) if info else "")
    return out[0], out[1]


def interpret_barrier(tags: Mapping[str, object]) -> int:
    """Flags for a node's ``barrier`` tag: 0 when cars pass, else F_BARRIER (+ lowerable)."""
    barrier = _first(tags.get("barrier"))
    if barrier is None:
        return 0
    access = _access_value(tags, ("motorcar", "motor_vehicle", "vehicle", "access"))
    # OSRM car.lua: a passable barrier type still stops cars when its access is blacklisted
    if barrier in BARRIER_PASSABLE and access not in ACCESS_BLACKLIST:
        return 0
    if access in ACCESS_ALLOW:
        return 0
    flags = F_BARRIER
    emergency = _access_value(tags, ("emergency",))
    if (
        _first(tags.get("bollard")) in LOWERABLE_BOLLARDS
        or emergency in ("yes", "designated", "permissive")
    ):
        flags |= F_BARRIER_LOWERABLE
    return flags


def is_traffic_signal(tags: Mapping[str, object]) -> bool:
    """``highway=traffic_signals`` (or ``crossing=traffic_signals`` on the road itself)."""
    return _first(tags.get("highway")) == "traffic_signals"


# ---------------------------------------------------------------------------------------------
# Traffic controls on nodes (uint8 bit field per point).
CTRL_SIGNAL = 1  #: highway=traffic_signals
CTRL_STOP = 2  #: highway=stop
CTRL_GIVE_WAY = 4  #: highway=give_way
CTRL_FORWARD = 8  #: applies only to traffic along the way's node order
CTRL_BACKWARD = 16  #: applies only to traffic against the way's node order
CTRL_STOP_MINOR = 32  #: highway=stop + stop=minor (only the minor roads stop)
CTRL_STOP_ALL = 64  #: highway=stop + stop=all (all-way stop)
CTRL_GATE = 128  #: a gate cars may pass (barrier=gate|lift_gate): it must be opened
#: barrier values that cost time to pass although cars may (car.lua ``barrier_penalties``)
GATE_BARRIERS = frozenset({"gate", "lift_gate"})
#: ``highway`` values that :func:`interpret_control` reads.
CONTROL_HIGHWAYS = frozenset({"traffic_signals", "stop", "give_way"})


def interpret_gate(tags: Mapping[str, object]) -> int:
    """``CTRL_GATE`` for a gate cars may pass (``barrier=gate|lift_gate`` that
    :func:`interpret_barrier` lets through): OSRM car.lua charges 60 s to open it."""
    if _first(tags.get("barrier")) in GATE_BARRIERS and not interpret_barrier(tags):
        return CTRL_GATE
    return 0


def interpret_control(tags: Mapping[str, object]) -> int:
    """``CTRL_*`` bits for a node: signals, stop and give-way signs and their direction.

    Direction (OSRM ``obstacles.lua``): ``traffic_signals:direction`` (falling back to
    ``direction``) for signals, ``direction`` for stop / give_way signs; ``forward`` /
    ``backward`` set ``CTRL_FORWARD`` / ``CTRL_BACKWARD``, ``both``, a bearing or nothing set
    neither (the control applies in both directions). ``stop=minor|all`` add
    ``CTRL_STOP_MINOR`` / ``CTRL_STOP_ALL`` to a ``highway=stop`` node.
    """
    highway = _first(tags.get("highway"))
    if highway not in CONTROL_HIGHWAYS:
        return 0
    direction = _first(tags.get("direction"))
    if highway == "traffic_signals":
        bits = CTRL_SIGNAL
        direction = _first(tags.get("traffic_signals:direction")) or direction
    elif highway == "stop":
        bits = CTRL_STOP
        stop = (_first(tags.get("stop")) or "").strip().lower()
        if stop == "minor":
            bits |= CTRL_STOP_MINOR
        elif stop == "all":
            bits |= CTRL_STOP_ALL
    else:
        bits = CTRL_GIVE_WAY
    direction = (direction or "").strip().lower()
    if direction == "forward":
        bits |= CTRL_FORWARD
    elif direction == "backward":
        bits |= CTRL_BACKWARD
    return bits


# ---------------------------------------------------------------------------------------------
# Driving side.
#: Coarse ``(south, west, north, east)`` boxes inside left-hand-traffic countries. They are
#: conservative (drawn inside the countries, away from right-hand neighbours such as France,
#: Belgium, China, Myanmar, Korea, Russia, Cambodia, Laos, DR Congo, Angola, Somalia), so a
#: point in a left-hand country near a border may still read "right".
LEFT_HAND_BOXES: tuple[tuple[float, float, float, float], ...] = (
    # Great Britain, Northern Ireland, Ireland, Isle of Man
    (49.85, -11.0, 61.0, -1.0),
    (50.70, -1.0, 61.0, 1.0),
    (51.00, 1.0, 61.0, 1.8),
    # Channel Islands (Guernsey, Jersey, Alderney, Sark)
    (49.15, -2.75, 49.75, -2.0),
    # Malta, Cyprus
    (35.78, 14.15, 36.10, 14.60),
    (34.55, 32.25, 35.72, 34.62),
    # Japan: Kyushu and Tsushima, Chugoku-Shikoku-Kansai, Honshu, Hokkaido, Ryukyu
    (30.0, 129.0, 34.8, 132.5),
    (31.0, 130.8, 35.7, 136.0),
    (33.4, 135.5, 41.6, 142.1),
    (41.3, 139.3, 45.6, 145.35),
    (42.9, 145.0, 43.45, 145.9),
    (24.0, 122.9, 30.9, 131.4),
    # Australia (with southern New Guinea and Timor, also left-hand), New Zealand
    (-44.0, 112.5, -9.0, 154.0),
    (-47.5, 166.0, -34.0, 178.7),
    # India, Pakistan, Nepal, Bhutan, Bangladesh, Sri Lanka
    (5.8, 63.5, 27.5, 88.0),
    (27.5, 67.0, 30.0, 80.0),
    (30.0, 70.5, 32.5, 77.5),
    (32.5, 71.5, 34.6, 75.5),
    (27.5, 80.0, 28.6, 84.0),
    (27.5, 84.0, 27.8, 88.0),
    (20.5, 88.0, 27.0, 92.0),
    (27.0, 89.3, 27.6, 92.0),
    (26.0, 92.0, 27.5, 94.5),
    # Thailand (centre, north-east, south), Malaysia, Singapore
    (13.5, 99.5, 17.0, 102.0),
    (14.5, 102.0, 17.0, 104.5),
    (7.0, 99.0, 10.5, 102.5),
    (1.15, 99.5, 7.0, 104.6),
    # Indonesia (Sumatra, Java, Lesser Sunda, Sulawesi and Maluku, Papua with Papua New
    # Guinea), Borneo (Malaysia, Brunei, Indonesia)
    (-6.0, 95.0, 5.9, 106.3),
    (-8.8, 105.1, -5.8, 114.7),
    (-11.0, 114.4, -8.0, 127.5),
    (-6.0, 118.7, 2.0, 129.0),
    (-11.0, 127.0, -0.8, 155.0),
    (-4.2, 108.5, 5.9, 118.8),
    (5.9, 115.9, 7.1, 117.3),
    # Hong Kong, Macau (kept off Shenzhen, Zhuhai and Hengqin)
    (22.15, 113.83, 22.44, 114.44),
    (22.44, 114.0, 22.50, 114.35),
    (22.185, 113.535, 22.21, 113.56),
    (22.11, 113.553, 22.17, 113.60),
    # Southern Africa: South Africa, Lesotho, Eswatini, Namibia, Botswana, Zimbabwe,
    # Mozambique; Zambia, Malawi; Tanzania, Kenya, Uganda
    (-35.0, 11.5, -18.1, 41.0),
    (-18.1, 11.8, -17.6, 18.0),
    (-18.1, 24.0, -13.7, 41.0),
    (-13.7, 30.5, -11.7, 41.0),
    (-11.7, 31.5, 3.3, 41.0),
    # Caribbean and South America: Jamaica, Bahamas, Trinidad, Barbados, Guyana, Suriname
    (17.7, -78.4, 18.6, -76.2),
    (23.5, -79.1, 27.3, -74.0),
    (10.05, -61.8, 10.85, -60.9),
    (13.0, -59.7, 13.35, -59.4),
    (4.2, -59.4, 8.3, -57.2),
    (2.7, -57.0, 6.0, -54.9),
)


def driving_side(lat: float, lon: float) -> str:
    """``"left"`` or ``"right"``: the side traffic keeps to at a point.

    Coarse: a point inside one of :data:`LEFT_HAND_BOXES` (the main left-hand-traffic
    countries, boxes drawn conservatively inside them) is ``"left"``, anything else
    ``"right"``. Small left-hand territories (Mauritius, Fiji, the US Virgin Islands, ...) and
    border strips of the listed countries read ``"right"``; a caller that knows better (a map
    or deployment setting) should override this value rather than trust it.
    """
    for south, west, north, east in LEFT_HAND_BOXES:
        if south <= lat <= north and west <= lon <= east:
            return "left"
    return "right"


def local_timezone(lat: float, lon: float) -> str:
    """IANA time zone at a point (``"Europe/Paris"``), from the ``timezonefinder`` package's
    offline boundary data; ``"UTC"`` where it finds none (the sea, missing data). Time-
    conditional restrictions and the times people read are in this zone."""
    try:
        from timezonefinder import TimezoneFinder

        return TimezoneFinder().timezone_at(lat=lat, lng=lon) or "UTC"
    except (ImportError, ValueError, OSError):
        return "UTC"


def describe_flags(flags: int) -> list[str]:
    """Names of the bits set in an edge's flag field, for humans and JSON."""
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]
