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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from engine.extract import tags as T
from engine.graph import RoadGraph

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
CONTRAFLOW_PENALTY = 2.0
CONTRAFLOW_MAX_KMH = 30.0

_FACTOR = np.array([AMBULANCE_PRIORITY[c][0] for c in T.HIGHWAY_CLASSES])
_CAP_MS = np.array([AMBULANCE_PRIORITY[c][1] for c in T.HIGHWAY_CLASSES]) / 3.6
_NO_CONTRAFLOW = np.isin(np.arange(len(T.HIGHWAY_CLASSES)),
                         [T.HIGHWAY_CODE[c] for c in ("motorway", "motorway_link", "trunk",
                                                      "trunk_link")])
_AMBULANCE_ACCESS = (T.F_EMERGENCY_YES | T.F_PSV | T.F_BUSWAY | T.F_EMERGENCY_ACCESS
                     | T.F_PRIVATE | T.F_DESTINATION)


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
    """Per-request switches of a profile."""

    contraflow: bool = False

    def key(self, profile: str) -> str:
        return f"{profile}+contraflow" if self.contraflow and profile == "ambulance" else profile


def normal_time(graph: RoadGraph, idx: np.ndarray, state: TrafficState) -> np.ndarray:
    """Seconds to drive edges ``idx`` at normal traffic speed (no priority, no access rules)."""
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
    t_normal = normal_time(graph, idx, state)
    if profile == "car":
        allowed = ((flags & np.uint32(T.CAR_FORBIDDEN)) == 0) & ~closed
        value = t_normal if metric == "time" else graph.length_m[idx]
        return np.where(allowed, value, np.inf)

    # ambulance
    cls = graph.highway[idx].astype(np.int64)
    length = graph.length_m[idx]
    car_no = (flags & np.uint32(T.F_CAR_NO)) != 0
    special = (flags & np.uint32(_AMBULANCE_ACCESS)) != 0
    barrier = (flags & np.uint32(T.F_BARRIER)) != 0
    lowerable = ((flags & np.uint32(T.F_BARRIER_LOWERABLE)) != 0) | state.opened[idx]
    against = (flags & np.uint32(T.F_AGAINST_ONEWAY | T.F_REVERSIBLE)) != 0
    allowed = (~closed & ((flags & np.uint32(T.F_EMERGENCY_NO)) == 0)
               & (~car_no | special) & (~barrier | lowerable))
    if options.contraflow:
        allowed &= ~against | ~_NO_CONTRAFLOW[cls]
    else:
        allowed &= ~against
    if metric == "distance":
        return np.where(allowed, length, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        v_normal = np.where(t_normal > 0, length / t_normal, _CAP_MS[cls])
        bus = (flags & np.uint32(T.F_BUS_LANE | T.F_BUSWAY)) != 0
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
class Weights:
    """An immutable weight array for one profile and metric at one traffic version.

    Routers take these instead of bare arrays so the O(m) work (validation, the usable mask,
    A*'s bound) is done once per traffic version, not per request.
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
    options: ProfileOptions = field(default_factory=ProfileOptions)

    @classmethod
    def build(cls, values: np.ndarray, *, profile: str, metric: str, version: int,
              normal_time: np.ndarray, time: np.ndarray | None = None, state: int = -1,
              snappable: np.ndarray | None = None,
              options: ProfileOptions | None = None) -> Weights:
        values = np.ascontiguousarray(values, dtype=np.float64)
        for arr in (values, normal_time):
            arr.flags.writeable = False
        time = values if time is None else time
        usable = np.isfinite(values)
        usable.flags.writeable = False
        return cls(values, profile, metric, version, state, normal_time, time, usable,
                   usable if snappable is None else snappable, options or ProfileOptions())


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
