"""Vehicle profiles: per-edge weights for a car or an ambulance, computed vectorised.

A profile turns the graph's base arrays (length, free-flow time, class, flags) plus the live
traffic state (closures, speed overrides, speed factors, barriers opened by the command
centre) into a weight array. It is always evaluated on an index array of edges, so a traffic
change recomputes only the edges it touches (``idx``), never the whole graph in Python.

Ambulance model (lights and sirens)
-----------------------------------
Speed with priority = ``min(cap[class], v_normal * factor[class])`` where ``v_normal`` is the
speed at the current traffic state. Sources for the table :data:`AMBULANCE_PRIORITY`:

* Ho & Casey (1998), "Time saved with use of emergency warning lights and sirens during
  response to requests for emergency medical aid in an urban environment", Ann. Emerg. Med.
  32(5): lights and sirens saved on average 43.5 s, about 38 % of urban travel time, i.e. a
  speed factor up to 1/(1-0.38) = 1.6; we use 1.5 on urban classes as a conservative value.
* GraphHopper pull request #3353 ("Add custom model for ambulances"), built on the Baden-
  Württemberg interior ministry's parametrisation for georeferenced dispatch (2026): ambulance
  speeds are capped per road type. The document was not available on this machine; the caps
  below (130 motorway, 100 trunk/primary, 80 secondary, 60 urban, 30 service/living street)
  are our reading of common dispatch practice and are assumptions to calibrate locally.

Access: besides every car road, an ambulance may use bus lanes (and on them it is not slowed
by congestion: ``v_normal`` is replaced by the free-flow speed), busways, ``psv``-only roads,
``emergency=yes`` roads, ``service=emergency_access`` links, and private roads (hospital
grounds). Never ``emergency=no``. Barriers stop it unless the data says they lower
(``bollard=rising`` ...) or the command centre opened them (:class:`engine.traffic.OpenBarriers`);
lowering costs :data:`BARRIER_DELAY_S`. Contraflow on one-way streets is off by default;
per request it is allowed (never on motorways or trunks) at ``CONTRAFLOW_PENALTY`` times the
priority time, capped at ``CONTRAFLOW_MAX_KMH``.

Turn model
----------
Routes run on the turn graph (:mod:`engine.turns`), and every turn has a cost per profile
(:func:`turn_costs`). The car takes OSRM's car profile as calibrated by the OSRM project
(osrm-backend 26.10, ``profiles/car.lua``, ``process_turn`` and ``lib/obstacles.lua``):

* at a real junction (more than two roads usable by the vehicle) or on a U-turn, a turn of
  angle ``a`` (degrees, positive to the right) costs
  ``7.5 / (1 + exp(-((13 / b) * a / 180 - 6.5 * b)))`` to the right and
  ``7.5 / (1 + exp(-((13 * b) * -a / 180 - 6.5 / b)))`` to the left, with the turn bias
  ``b = 1.075`` where traffic keeps right (``1 / 1.075`` where it keeps left): a sharp left
  turn across traffic is dearer than a right turn, straight on costs almost nothing;
* a turn across oncoming traffic at such a junction (a left turn where traffic keeps right),
  not on a roundabout and not a U-turn, adds ``2 s x 1 / (1 + exp(-(13 |a| / 180 - 3.25)))``;
* a U-turn adds 20 s. The car may U-turn at a junction and at a dead end (including the end
  of an extract), never where the road merely continues (a node where two roads meet with a
  way to go on: "mid-street"); OSM ``no_u_turn`` restrictions apply as any other;
* a traffic signal adds 2 s, a stop sign 2 s, a give-way sign 1 s, on every turn through its
  node in the direction the tags give, and a gate cars may pass (``barrier=gate|lift_gate``)
  60 s (car.lua ``barrier_penalties``); the extract makes every such node a graph node, so the
  delay falls exactly where the control stands, as OSRM's obstacles;
* turning back onto the other carriageway of a dual road (same name, 150 degrees or more) is
  priced as a U-turn (20 s) though it is not forbidden where the car may not U-turn;
* an OSM turn restriction that concerns the vehicle makes the turn impossible (``inf``).

The ambulance keeps the same turn geometry (turning a van takes what it takes) with shorter
control delays, our assumptions to calibrate locally: 1 s at a signal (pre-empted to green
or crossed with caution, the job of gyrophare's signal plans), 1 s at a stop, 0.5 s at a
give-way, 15 s at a gate (as for a bollard it lowers); it may U-turn anywhere (20 s); it
obeys turn restrictions unless a request opts in (``restricted_turns=True``, like
contraflow), then a restricted turn costs
:data:`RESTRICTED_TURN_PENALTY_S` more than the same turn unrestricted. For the distance
metric every allowed turn costs 0 (OSRM likewise) and forbidden ones stay ``inf``.

Graphs without geometry or turn semantics (DIMACS, PACE) use the ``"uturn-only"`` model:
turns are free, U-turns are forbidden except at dead ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from engine.extract import tags
from engine.extract.restrictions import RC_CAR, RC_EMERGENCY
from engine.graph import RoadGraph
from engine.turns import (
    ARC_BARRIER,
    ARC_GATE,
    ARC_GIVE_WAY,
    ARC_REVERSAL,
    ARC_ROUNDABOUT,
    ARC_SIGNAL,
    ARC_STOP,
    ARC_UTURN,
)

Metric = Literal["time", "distance"]
METRICS: tuple[str, ...] = ("time", "distance")
PROFILES: tuple[str, ...] = ("car", "ambulance")

#: Per highway class: (speed factor with lights and sirens, speed cap km/h).
AMBULANCE_PRIORITY: dict[str, tuple[float, float]] = {
    "motorway": (1.15, 130.0),
    "motorway_link": (1.3, 80.0),
    "trunk": (1.2, 100.0),
    "trunk_link": (1.3, 70.0),
    "primary": (1.3, 100.0),
    "primary_link": (1.4, 60.0),
    "secondary": (1.4, 80.0),
    "secondary_link": (1.4, 60.0),
    "tertiary": (1.5, 60.0),
    "tertiary_link": (1.5, 50.0),
    "unclassified": (1.5, 60.0),
    "residential": (1.5, 50.0),
    "living_street": (1.3, 30.0),
    "service": (1.3, 30.0),
    "road": (1.4, 50.0),
    "busway": (1.5, 60.0),
    "pedestrian": (1.0, 15.0),
    "track": (1.0, 20.0),
    "barrier": (1.0, 5.0),
}
BARRIER_DELAY_S = 15.0  #: lowering a rising bollard / opening a gate
#: Added to a turn an OSM restriction forbids, when an ambulance request opts in to take it
#: (slowing down, sirens, checking oncoming traffic): our assumption, 1.5 x OSRM's U-turn.
RESTRICTED_TURN_PENALTY_S = 30.0
CONTRAFLOW_PENALTY = 2.0
CONTRAFLOW_MAX_KMH = 30.0

_FACTOR = np.array([AMBULANCE_PRIORITY[c][0] for c in tags.HIGHWAY_CLASSES])
_CAP_MS = np.array([AMBULANCE_PRIORITY[c][1] for c in tags.HIGHWAY_CLASSES]) / 3.6
_NO_CONTRAFLOW = np.isin(np.arange(len(tags.HIGHWAY_CLASSES)),
                         [tags.HIGHWAY_CODE[c] for c in ("motorway", "motorway_link", "trunk",
                                                      "trunk_link")])
_AMBULANCE_ACCESS = (tags.F_EMERGENCY_YES | tags.F_PSV | tags.F_BUSWAY | tags.F_EMERGENCY_ACCESS
                     | tags.F_PRIVATE | tags.F_DESTINATION)


@dataclass
class TrafficState:
    """The live state per edge that profiles read (owned by :class:`engine.traffic.TrafficOverlay`).

    ``speed_kmh`` is NaN where no speed is reported; ``factor`` multiplies the speed (0.5 =
    half speed); ``opened`` marks barrier edges the command centre can lower.
    """

    closed: np.ndarray
    speed_kmh: np.ndarray
    factor: np.ndarray
    opened: np.ndarray

    @classmethod
    def free_flow(cls, m: int) -> TrafficState:
        return cls(np.zeros(m, dtype=bool), np.full(m, np.nan), np.ones(m),
                   np.zeros(m, dtype=bool))


@dataclass(frozen=True)
class ProfileOptions:
    """Per-request switches of a profile: for the ambulance, drive against one-way streets
    and take turns that OSM restrictions forbid (both at a documented penalty); for any
    profile, road classes closed for the request (``exclude``, OSRM's ``exclude=motorway``).

    ``exclude`` holds highway classes (:data:`engine.extract.tags.HIGHWAY_CLASSES`); their
    roads weigh ``inf`` and cannot be snapped to, as if closed, while turn costs stay the
    profile's. :meth:`engine.traffic.TrafficOverlay.weights` applies it (and caches the
    snapshot like any other option); :func:`profile_weights` does not read it.

    Raises
    ------
    ValueError
        ``exclude`` names a class the graph does not know.
    """

    contraflow: bool = False
    restricted_turns: bool = False
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.exclude:
            return
        if isinstance(self.exclude, str):
            raise ValueError(f"exclude takes a set of highway classes, got the string "
                             f"{self.exclude!r}")
        classes = frozenset(self.exclude)
        object.__setattr__(self, "exclude", classes)
        unknown = sorted(classes - set(tags.HIGHWAY_CLASSES))
        if unknown:
            raise ValueError(f"exclude: unknown highway class {', '.join(map(repr, unknown))}"
                             f" (known: {', '.join(tags.HIGHWAY_CLASSES)})")

    def key(self, profile: str) -> str:
        switches = ("contraflow", "restricted_turns") if profile == "ambulance" else ()
        out = profile + "".join(f"+{name}" for name in switches if getattr(self, name))
        if self.exclude:
            out += "-" + ",".join(sorted(self.exclude))
        return out


def excluded_edges(graph: RoadGraph, exclude: frozenset[str]) -> np.ndarray:
    """The edges of the highway classes ``exclude`` (:attr:`ProfileOptions.exclude`), as a
    boolean mask: the roads a request closes."""
    return np.isin(graph.highway, [tags.HIGHWAY_CODE[c] for c in sorted(exclude)])


@dataclass(frozen=True)
class TurnModel:
    """Seconds a turn costs, per profile (sources in the module docstring)."""

    turn_penalty_s: float = 7.5
    turn_bias: float = 1.075
    oncoming_penalty_s: float = 2.0
    u_turn_penalty_s: float = 20.0
    signal_s: float = 2.0
    stop_s: float = 2.0
    give_way_s: float = 1.0
    gate_s: float = 60.0  #: car.lua ``barrier_penalties`` for gate / lift_gate
    #: the car may not U-turn where the road merely goes on (only at junctions, dead ends)
    u_turn_mid_street: bool = False
    classes: int = RC_CAR  #: restriction classes (``RC_*``) that bind this vehicle


CAR_TURNS = TurnModel()
AMBULANCE_TURNS = TurnModel(signal_s=1.0, stop_s=1.0, give_way_s=0.5,
                            gate_s=BARRIER_DELAY_S, u_turn_mid_street=True,
                            classes=RC_EMERGENCY)
TURN_MODELS: dict[str, TurnModel] = {"car": CAR_TURNS, "ambulance": AMBULANCE_TURNS}


def normal_time(graph: RoadGraph, idx: np.ndarray, state: TrafficState) -> np.ndarray:
    """Seconds to drive edges ``idx`` at normal traffic speed (no priority, no access
    rules). Delays at junctions and traffic controls are turn costs (:func:`turn_costs`)."""
    length = graph.length_m[idx]
    free = graph.time_s[idx]
    override = state.speed_kmh[idx]
    base = np.where(np.isnan(override), free,
                    length / (np.where(np.isnan(override), 1.0, override) / 3.6))
    return base / state.factor[idx]


def profile_weights(
    profile: str,
    graph: RoadGraph,
    idx: np.ndarray,
    state: TrafficState,
    *,
    metric: Metric = "time",
    options: ProfileOptions = ProfileOptions(),
) -> np.ndarray:
    """Weights of edges ``idx`` for ``profile`` under ``state`` (``inf`` = not usable).

    Returns seconds for ``metric="time"`` and metres for ``"distance"``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    flags = graph.flags[idx]
    closed = state.closed[idx]
    if profile == "car":
        allowed = ((flags & np.uint32(tags.CAR_FORBIDDEN)) == 0) & ~closed
        value = normal_time(graph, idx, state) if metric == "time" else graph.length_m[idx]
        return np.where(allowed, value, np.inf)

    # ambulance
    cls = graph.highway[idx].astype(np.int64)
    length = graph.length_m[idx]
    car_no = (flags & np.uint32(tags.F_CAR_NO)) != 0
    special = (flags & np.uint32(_AMBULANCE_ACCESS)) != 0
    barrier = (flags & np.uint32(tags.F_BARRIER)) != 0
    lowerable = ((flags & np.uint32(tags.F_BARRIER_LOWERABLE)) != 0) | state.opened[idx]
    against = (flags & np.uint32(tags.F_AGAINST_ONEWAY | tags.F_REVERSIBLE)) != 0
    allowed = (~closed & ((flags & np.uint32(tags.F_EMERGENCY_NO)) == 0)
               & (~car_no | special) & (~barrier | lowerable))
    if options.contraflow:
        allowed &= ~against | ~_NO_CONTRAFLOW[cls]
    else:
        allowed &= ~against
    if metric == "distance":
        return np.where(allowed, length, np.inf)
    t_normal = normal_time(graph, idx, state)
    with np.errstate(divide="ignore", invalid="ignore"):
        v_normal = np.where(t_normal > 0, length / t_normal, _CAP_MS[cls])
        bus = (flags & np.uint32(tags.F_BUS_LANE | tags.F_BUSWAY)) != 0
        v_free = np.where(graph.time_s[idx] > 0, length / graph.time_s[idx], _CAP_MS[cls])
        v_base = np.where(bus, np.maximum(v_normal, v_free), v_normal)
        v = np.minimum(_CAP_MS[cls], v_base * _FACTOR[cls])
        t = np.where(length > 0, length / v, 0.0)
    t = t + np.where(barrier, BARRIER_DELAY_S, 0.0)
    if options.contraflow:
        slow = np.where(length > 0, length / (CONTRAFLOW_MAX_KMH / 3.6), 0.0)
        t = np.where(against, np.maximum(t, slow) * CONTRAFLOW_PENALTY, t)
    return np.where(allowed, t, np.inf)


@dataclass(frozen=True, eq=False)
class TurnCosts:
    """Turn costs of one profile (with its options) on every arc of the turn graph.

    They depend on the graph only (angles, junction sizes, signals, restrictions), never on
    live traffic, so they are computed once per profile; time-conditional restrictions are
    applied on top of them when weights are built for a time.
    """

    time: np.ndarray  #: seconds, ``inf`` where the turn is forbidden for this vehicle
    normal: np.ndarray  #: seconds at normal driving (car delays, restrictions ignored)
    distance: np.ndarray  #: 0 where allowed, ``inf`` where forbidden (distance metric)
    #: turns an OSM restriction forbids for this vehicle (an ambulance opting in takes them)
    restricted: np.ndarray = field(repr=False)
    classes: int = RC_CAR  #: restriction classes binding this vehicle
    restricted_penalty_s: float | None = None  #: ``None``: restricted turns are forbidden

    def metric(self, metric: str) -> np.ndarray:
        return self.time if metric == "time" else self.distance


def turn_costs(graph: RoadGraph, profile: str,
               options: ProfileOptions = ProfileOptions()) -> TurnCosts:
    """Static per-turn costs for ``profile`` (see "Turn model" above), vectorised."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    tg = graph.turn_graph()
    model = TURN_MODELS[profile]
    m, n = graph.n_edges, graph.n_nodes
    usable = np.isfinite(profile_weights(profile, graph, np.arange(m),
                                         TrafficState.free_flow(m), metric="distance",
                                         options=options))
    twin = graph.twin.astype(np.int64)
    tail, head = graph.tail, graph.head
    has_twin = twin >= 0
    either = usable | (has_twin & usable[np.maximum(twin, 0)])
    piece = (~has_twin | (np.arange(m) < twin)) & either
    roads = (np.bincount(tail[piece], minlength=n)
             + np.bincount(head[piece & (head != tail)], minlength=n))
    out_usable = np.bincount(tail[usable], minlength=n)
    from_road = tg.node_road[tg.tail]
    j = head[from_road]
    twin_from = twin[from_road]
    other_exits = out_usable[j] - (has_twin[from_road] & usable[np.maximum(twin_from, 0)])
    kind = tg.kind
    uturn = (kind & ARC_UTURN) != 0
    junction = roads[j] > 2
    restricted = (tg.forbid & np.uint8(model.classes)) != 0
    banned = np.zeros(len(uturn), dtype=bool)
    if not model.u_turn_mid_street:
        banned = uturn & ~junction & (other_exits > 0)
    if graph.meta.get("turn_model") == "uturn-only":
        time = np.zeros(len(uturn))
        normal = time.copy()
    else:
        right = graph.meta.get("driving_side", "right") != "left"
        angle = np.where((kind & ARC_BARRIER) != 0, 0.0,
                         np.nan_to_num(tg.angle.astype(np.float64), nan=0.0))
        time = _turn_seconds(model, angle, kind, junction, uturn, right)
        normal = _turn_seconds(CAR_TURNS, angle, kind, junction, uturn, right)
    time[banned] = np.inf
    penalty = None
    if profile == "ambulance" and options.restricted_turns:
        penalty = RESTRICTED_TURN_PENALTY_S
        time[restricted] += penalty
    else:
        time[restricted] = np.inf
    distance = np.where(np.isfinite(time), 0.0, np.inf)
    for arr in (time, normal, distance, restricted):
        arr.flags.writeable = False
    return TurnCosts(time, normal, distance, restricted, model.classes, penalty)


def _turn_seconds(model: TurnModel, angle: np.ndarray, kind: np.ndarray, junction: np.ndarray,
                  uturn: np.ndarray, right: bool) -> np.ndarray:
    """OSRM car.lua's ``process_turn`` over arrays (numbers of ``model``)."""
    bias = model.turn_bias if right else 1.0 / model.turn_bias
    pen = model.turn_penalty_s
    with np.errstate(over="ignore"):
        sig = np.where(angle >= 0,
                       pen / (1 + np.exp(-((13 / bias) * angle / 180 - 6.5 * bias))),
                       pen / (1 + np.exp(-((13 * bias) * -angle / 180 - 6.5 / bias))))
        sharp = 1 / (1 + np.exp(-(13 * np.abs(angle) / 180 - 3.25)))
    reverse = uturn | ((kind & ARC_REVERSAL) != 0)
    applies = junction | reverse
    crosses = (angle < 0) if right else (angle > 0)
    oncoming = crosses & ~reverse & junction & ((kind & ARC_ROUNDABOUT) == 0)
    t = np.where(applies, sig, 0.0)
    t += np.where(oncoming, model.oncoming_penalty_s * sharp, 0.0)
    t += np.where(reverse, model.u_turn_penalty_s, 0.0)
    t += np.where((kind & ARC_SIGNAL) != 0, model.signal_s, 0.0)
    t += np.where((kind & ARC_STOP) != 0, model.stop_s, 0.0)
    t += np.where((kind & ARC_GIVE_WAY) != 0, model.give_way_s, 0.0)
    t += np.where((kind & ARC_GATE) != 0, model.gate_s, 0.0)
    return t


@dataclass(frozen=True, eq=False)
class Weights:
    """Immutable weights for one profile and metric at one traffic version.

    ``values`` are per road edge (what a road costs to drive); ``arc`` per turn arc of the
    turn graph (turn cost + cost of the road entered: what the searches run on); ``turn`` is
    the turn part alone (``arc - values[road entered]``, exact). Routers take these instead of
    bare arrays so the O(m) work (validation, masks, A*'s bound) is done once per traffic
    version, not per request.
    """

    values: np.ndarray
    profile: str
    metric: str
    version: int  #: the overlay's public version (``weights_version``)
    state: int  #: the overlay's internal state counter (what the arrays were built from)
    normal_time: np.ndarray  #: seconds at normal traffic speed (the second ETA)
    time: np.ndarray  #: seconds for this profile (equals ``values`` for the time metric)
    usable: np.ndarray = field(repr=False)
    #: edges a point may snap to: the profile's roads, closed or not (a call on a closed
    #: street is still on the map; the route then says it is unreachable)
    snappable: np.ndarray = field(repr=False)
    options: ProfileOptions
    arc: np.ndarray = field(repr=False)  #: cost of every turn arc: turn cost + entered road
    turn: np.ndarray = field(repr=False)  #: cost of the turn alone, per turn arc
    turns: TurnCosts = field(repr=False)  #: the profile's static turn costs (both metrics)
    #: which overlay ``state`` counts for (a number unique per overlay; -1: none): two
    #: overlays' states are unrelated, so a cache keyed by states must know whose they are
    source: int = -1

    @classmethod
    def build(cls, values: np.ndarray, *, profile: str, metric: str, version: int,
              normal_time: np.ndarray, turns: TurnCosts, to_road: np.ndarray,
              time: np.ndarray | None = None, state: int = -1,
              snappable: np.ndarray | None = None, options: ProfileOptions | None = None,
              turn: np.ndarray | None = None, arc: np.ndarray | None = None,
              source: int = -1) -> Weights:
        """Wrap arrays; ``turn`` defaults to the profile's static turn costs and ``arc`` is
        computed from ``turn`` and ``values`` when not given (``to_road``: the road each arc
        enters)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        turn = turns.metric(metric) if turn is None else turn
        if arc is None:
            arc = turn + values[to_road]
        for arr in (values, normal_time, arc, turn):
            arr.flags.writeable = False
        time = values if time is None else time
        usable = np.isfinite(values)
        usable.flags.writeable = False
        return cls(values, profile, metric, version, state, normal_time, time, usable,
                   usable if snappable is None else snappable, options or ProfileOptions(),
                   arc, turn, turns, source)


def car_weights(graph: RoadGraph, metric: Metric = "time") -> np.ndarray:
    """Free-flow weights for an ordinary car (``inf`` where cars may not go)."""
    idx = np.arange(graph.n_edges)
    return profile_weights("car", graph, idx, TrafficState.free_flow(graph.n_edges),
                           metric=metric)


def ambulance_weights(graph: RoadGraph, metric: Metric = "time", *,
                      contraflow: bool = False) -> np.ndarray:
    """Free-flow weights for an ambulance with lights and sirens."""
    idx = np.arange(graph.n_edges)
    return profile_weights("ambulance", graph, idx, TrafficState.free_flow(graph.n_edges),
                           metric=metric, options=ProfileOptions(contraflow=contraflow))
