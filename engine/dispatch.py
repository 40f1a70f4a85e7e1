"""Dispatch: which hospital, which ambulance, which signals to turn green, what is covered.

The rule that kept Dijon's hospitals from being flooded during Covid-19: the nearest hospital
is not the right one when it is full. :meth:`Dispatcher.dispatch` ranks every hospital able to
take the patient by travel time *and* saturation (including ambulances already on their way
there, which the board counts), explains the ranking in words, picks one, routes the
ambulance with priority, plans the traffic-signal pre-emption along the route, and registers
the ambulance as en route so the next dispatch sees it.

ETAs to all hospitals come from **one** multi-target search (a one-row table), and the
nearest ambulance from one multi-source search; nothing here loops queries per candidate.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from engine.attribution import ATTRIBUTION
from engine.errors import GyrophareError
from engine.hospitals.board import Candidate, HospitalBoard
from engine.hospitals.model import Hospital, check_ambulance_id
from engine.hospitals.vocabulary import BedType, SaturationLevel
from engine.query import Coordinate, Route, Router, Unreachable
from engine.timeutil import to_utc

Policy = Literal["saturation_aware", "nearest"]


class NoHospitalAvailable(GyrophareError):
    """No hospital can take the patient (none offers the need, all closed or unreachable)."""


@dataclass(frozen=True)
class Need:
    """What the patient needs: a bed type (EDXL-HAVE), a capability, a severity label."""

    bed_type: BedType | str | None = None
    capability: str | None = None
    severity: str = ""

    def __post_init__(self) -> None:
        if self.bed_type is not None:
            object.__setattr__(self, "bed_type", BedType.parse(self.bed_type))

    def to_dict(self) -> dict[str, Any]:
        return {"bed_type": None if self.bed_type is None else str(self.bed_type),
                "capability": self.capability, "severity": self.severity}


@dataclass(frozen=True)
class DispatchPolicy:
    """How travel time and saturation are traded (all penalties in seconds of ETA).

    ``score = eta + level_penalty[level] + occupancy_penalty * max(0, occupancy - 0.7) / 0.3
    + en_route_penalty * ambulances_en_route + stale_penalty * stale``. With the defaults a
    saturated hospital must be about 15 minutes closer than a normal one to still be chosen,
    the order of magnitude regulators accepted when spreading Covid-19 patients. Ambulances
    already on their way weigh mainly through occupancy (the board counts them as taken
    beds); the small per-ambulance term only breaks near-ties while beds are plentiful.
    ``mode="nearest"`` ignores saturation (a baseline to compare in replays) but still never
    sends a patient to a closed hospital or one without the needed beds.
    """

    mode: Policy = "saturation_aware"
    level_penalty_s: Mapping[SaturationLevel, float] = field(default_factory=lambda: {
        SaturationLevel.NORMAL: 0.0, SaturationLevel.TENSION: 240.0,
        SaturationLevel.SATURATED: 900.0})
    occupancy_penalty_s: float = 300.0
    en_route_penalty_s: float = 15.0
    stale_penalty_s: float = 120.0

    def __post_init__(self) -> None:
        if self.mode not in ("saturation_aware", "nearest"):
            raise ValueError(f"policy mode must be 'saturation_aware' or 'nearest', got "
                             f"{self.mode!r}")


@dataclass
class HospitalOption:
    """One ranked hospital with the numbers and the words behind its rank."""

    hospital_id: str
    name: str
    eta_s: float
    score: float
    level: SaturationLevel
    occupancy: float | None
    en_route: int
    stale: bool
    reasons: list[str]
    reachable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"hospital_id": self.hospital_id, "name": self.name,
                "eta_s": None if not np.isfinite(self.eta_s) else round(self.eta_s, 1),
                "score": None if not np.isfinite(self.score) else round(self.score, 1),
                "level": str(self.level), "occupancy": self.occupancy,
                "en_route": self.en_route, "stale": self.stale, "reachable": self.reachable,
                "reasons": self.reasons}


@dataclass
class SignalPreemption:
    """One traffic signal to turn green: where, when, from which direction."""

    osm_id: int
    location: list[float]  # [lon, lat]
    distance_from_start_m: float
    eta_s: float  #: offset from departure, with priority driving
    eta_at: datetime
    approach_bearing: float
    exit_bearing: float
    hold_from: datetime
    hold_until: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"osm_id": self.osm_id, "location": self.location,
                "distance_from_start_m": round(self.distance_from_start_m, 1),
                "eta_s": round(self.eta_s, 1), "eta_at": self.eta_at.isoformat(),
                "approach_bearing": round(self.approach_bearing, 1),
                "exit_bearing": round(self.exit_bearing, 1),
                "hold_from": self.hold_from.isoformat(),
                "hold_until": self.hold_until.isoformat()}


def signal_plan(route: Route, *, departure: datetime, lead_s: float = 20.0,
                trail_s: float = 10.0, uncertainty: float = 0.10) -> list[SignalPreemption]:
    """The ordered traffic signals on a route with hold windows around the ETA.

    The window opens ``lead_s`` (plus ``uncertainty`` of the ETA: the later the signal, the
    less certain the arrival) before the expected passage, so the queue has cleared, and
    closes ``trail_s`` (plus the same margin) after it. ``departure`` must be a sane time
    (:func:`engine.timeutil.to_utc`: 1970..2200), else :class:`InvalidTimestamp`.
    """
    departure = to_utc(departure, what="departure")
    plan = []
    for s in route.signals:
        eta_at = departure + timedelta(seconds=s.seconds_from_start)
        margin = uncertainty * s.seconds_from_start
        plan.append(SignalPreemption(
            osm_id=s.osm_id, location=[s.lon, s.lat],
            distance_from_start_m=s.distance_from_start_m, eta_s=s.seconds_from_start,
            eta_at=eta_at, approach_bearing=s.approach_bearing, exit_bearing=s.exit_bearing,
            hold_from=eta_at - timedelta(seconds=lead_s + margin),
            hold_until=eta_at + timedelta(seconds=trail_s + margin)))
    return plan


@dataclass
class AmbulanceChoice:
    """The ambulance that reaches the incident first, with its route there."""

    ambulance_id: str
    route: Route

    def to_dict(self) -> dict[str, Any]:
        return {"ambulance_id": self.ambulance_id, "eta_s": round(self.route.duration_s, 1),
                "route": self.route.to_dict()}


@dataclass
class DispatchDecision:
    """The chosen hospital, the ranking with reasons, the route and its signal plan."""

    incident: Coordinate
    need: Need
    at: datetime
    policy: str
    chosen: HospitalOption
    ranking: list[HospitalOption]
    route: Route
    signals: list[SignalPreemption]
    weights_version: int
    ambulance_id: str | None = None
    registered: bool = False
    ambulance: AmbulanceChoice | None = None
    explanation: str = ""
    #: seconds from the call to the arrival at the hospital: to the scene, on scene, onwards
    hospital_eta_s: float = 0.0
    #: the bed the patient will take (the need's, else the hospital's default)
    bed_type: BedType | None = None

    @property
    def hospital_id(self) -> str:
        return self.chosen.hospital_id

    def en_route(self, ambulance_id: str | None = None) -> EnRouteRecord:
        """The registration of this dispatch on the hospital board: the one rule the
        engine, the service (through its event log) and the replay all use."""
        amb = ambulance_id or self.ambulance_id or f"amb-{uuid.uuid4().hex[:10]}"
        if self.bed_type is None:
            raise ValueError("a decision without a bed type cannot be registered en route")
        return EnRouteRecord(amb, self.hospital_id, self.bed_type, self.hospital_eta_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": [self.incident[1], self.incident[0]],
            "need": self.need.to_dict(), "at": self.at.isoformat(), "policy": self.policy,
            "hospital_id": self.chosen.hospital_id, "hospital": self.chosen.to_dict(),
            "explanation": self.explanation,
            "ranking": [o.to_dict() for o in self.ranking],
            "route": self.route.to_dict(),
            "signal_plan": [s.to_dict() for s in self.signals],
            "ambulance_id": self.ambulance_id, "registered": self.registered,
            "ambulance": None if self.ambulance is None else self.ambulance.to_dict(),
            "weights_version": self.weights_version, "attribution": ATTRIBUTION,
        }


@dataclass(frozen=True)
class EnRouteRecord:
    """An ambulance counted as on its way to a hospital (see :meth:`HospitalBoard.\
register_en_route`)."""

    ambulance_id: str
    hospital_id: str
    bed_type: BedType
    eta_s: float

    def payload(self) -> dict[str, Any]:
        """The JSON form (the ``ambulance.en_route`` event of the service's log)."""
        return {"ambulance_id": self.ambulance_id, "hospital_id": self.hospital_id,
                "bed_type": str(self.bed_type), "eta_s": self.eta_s}


@dataclass
class Coverage:
    """Road network reachable within ``minutes`` from a set of stations."""

    minutes: float
    nodes: int
    road_km: float
    share_of_network: float
    polygon: dict[str, Any]
    weights_version: int

    def to_dict(self) -> dict[str, Any]:
        return {"minutes": self.minutes, "nodes": self.nodes, "road_km": round(self.road_km, 2),
                "share_of_network": round(self.share_of_network, 4), "polygon": self.polygon,
                "weights_version": self.weights_version, "attribution": ATTRIBUTION}


def default_bed(hospital: Hospital) -> BedType:
    """The bed a patient takes when the need names none: medical-surgical, else the first
    bed type the hospital offers."""
    offered = hospital.offered()
    for bt in (BedType.MEDICAL_SURGICAL, *offered):
        if bt in offered:
            return bt
    raise NoHospitalAvailable(f"{hospital.name} offers no bed type")


def _fmt(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


class Dispatcher:
    """Saturation-aware destination choice over a :class:`Router` and a :class:`HospitalBoard`.

    Parameters
    ----------
    router
        Routes with live traffic (its overlay).
    board
        The hospital board; dispatch reads levels and registers ambulances on it.
    policy
        How ETA and saturation are weighed.
    """

    def __init__(self, router: Router, board: HospitalBoard, *,
                 policy: DispatchPolicy | None = None) -> None:
        self.router = router
        self.board = board
        self.policy = policy or DispatchPolicy()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- ranking
    def rank(self, incident: Coordinate, need: Need, *, at: datetime | None = None,
             policy: DispatchPolicy | None = None, contraflow: bool = False,
             restricted_turns: bool = False) -> tuple[list[HospitalOption], int]:
        """Every hospital able to take the patient, best first, with reasons; and the
        ``weights_version`` used. One multi-target search gives all the ETAs."""
        at = to_utc(at)
        policy = policy or self.policy
        cands = self.board.candidates(need.bed_type, need.capability, at=at)
        if not cands:
            what = need.bed_type or "any bed"
            raise NoHospitalAvailable(
                f"no open hospital offers {what}"
                + (f" with capability {need.capability!r}" if need.capability else ""))
        weights = self.router.weights("ambulance", at=at, contraflow=contraflow,
                                      restricted_turns=restricted_turns)
        table = self.router.table([incident], [c.hospital.destination for c in cands],
                                  weights=weights)
        etas = table.values[0]
        options = [self._option(c, float(eta), policy, snap.fallback)
                   for c, eta, snap in zip(cands, etas, table.destinations, strict=True)]
        options.sort(key=lambda o: (o.score, o.eta_s, o.hospital_id))
        return options, weights.version

    def _option(self, c: Candidate, eta: float, policy: DispatchPolicy,
                fallback: str | None = None) -> HospitalOption:
        row = c.bed
        level = row.level if row is not None else c.level
        occupancy = row.occupancy if row is not None else None
        en_route = row.en_route if row is not None else len(self.board.en_route(c.hospital.id))
        reasons = [f"ETA {_fmt(eta)}" if np.isfinite(eta) else "unreachable by road now"]
        if fallback and np.isfinite(eta):
            reasons.append(f"the entrance's road is cut off ({fallback})")
        penalty = 0.0
        if row is not None and occupancy is not None:
            reasons.append(f"{row.bed_type} {occupancy:.0%} occupied "
                           f"({row.available} of {row.baseline} beds free)")
        if level > SaturationLevel.NORMAL:
            reasons.append(f"level {level.label}")
        if en_route:
            reasons.append(f"{en_route} ambulance{'s' if en_route > 1 else ''} already on "
                           "the way")
        if c.stale:
            reasons.append("status not updated recently (stale)")
        if policy.mode == "saturation_aware":
            penalty += policy.level_penalty_s.get(level, 0.0)
            if occupancy is not None:
                penalty += policy.occupancy_penalty_s * max(0.0, occupancy - 0.7) / 0.3
            penalty += policy.en_route_penalty_s * en_route
            penalty += policy.stale_penalty_s if c.stale else 0.0
        return HospitalOption(c.hospital.id, c.hospital.name, eta, eta + penalty, level,
                              occupancy, en_route, c.stale, reasons,
                              reachable=bool(np.isfinite(eta)))

    # ---------------------------------------------------------------- dispatch
    def dispatch(
        self,
        incident: Coordinate,
        need: Need | None = None,
        *,
        at: datetime | None = None,
        ambulances: Mapping[str, Coordinate] | None = None,
        ambulance_id: str | None = None,
        register: bool = True,
        policy: DispatchPolicy | None = None,
        contraflow: bool = False,
        restricted_turns: bool = False,
        on_scene_s: float = 0.0,
    ) -> DispatchDecision:
        """Choose the hospital for a patient at ``incident`` and route the ambulance there.

        Parameters
        ----------
        ambulances
            Positions of free ambulances (``id -> (lat, lon)``): the one reaching the
            incident first is chosen (one multi-source search) and its route returned.
        ambulance_id
            The id registered as en route (the chosen ambulance's, or a generated one).
        register
            Count the ambulance on the board as heading to the chosen hospital, so that the
            next dispatch sees it (mark it arrived or cancel it later).
        on_scene_s
            Expected time on scene: the signal plan and the board's ETA start when the crew
            leaves the scene (``at`` + ambulance to scene + ``on_scene_s``).

        Raises
        ------
        NoHospitalAvailable
            No open hospital offers the need, or none is reachable by road.
        InvalidCoordinate, PointOffNetwork
            Bad incident location.
        InvalidAmbulanceId, InvalidTimestamp
            An ambulance id outside :data:`~engine.hospitals.model.AMBULANCE_ID_PATTERN`, a
            time outside 1970..2200.
        """
        at = to_utc(at)
        for amb in ([ambulance_id] if ambulance_id is not None else []) + list(ambulances or ()):
            check_ambulance_id(amb)  # before any search: an id the board would refuse
        need = need or Need()
        policy = policy or self.policy
        options, version = self.rank(incident, need, at=at, policy=policy,
                                     contraflow=contraflow, restricted_turns=restricted_turns)
        reachable = [o for o in options if o.reachable]
        if not reachable:
            raise NoHospitalAvailable("no hospital able to take the patient is reachable by "
                                      "road from the incident (closures or network split)")
        chosen = reachable[0]
        hospital = self.board.hospital(chosen.hospital_id)
        weights = self.router.weights("ambulance", at=at, contraflow=contraflow,
                                      restricted_turns=restricted_turns)
        route = self.router.route(incident, hospital.destination, weights=weights)
        if isinstance(route, Unreachable):  # same weights as the table: cannot happen
            raise NoHospitalAvailable(f"{hospital.name} became unreachable")
        choice = None
        if ambulances:
            choice = self.nearest_ambulance(incident, ambulances, at=at, contraflow=contraflow,
                                            restricted_turns=restricted_turns)
        amb_id = ambulance_id or (choice.ambulance_id if choice else None)
        # the crew reaches the scene, treats the patient, then leaves for the hospital: the
        # signal plan and the board's ETA start then (re-plan when the crew actually leaves)
        to_scene = choice.route.duration_s if choice else 0.0
        departure = at + timedelta(seconds=to_scene + on_scene_s)
        decision = DispatchDecision(
            incident=incident, need=need, at=at, policy=policy.mode, chosen=chosen,
            ranking=options, route=route, signals=signal_plan(route, departure=departure),
            weights_version=version, ambulance_id=amb_id, registered=False,
            ambulance=choice, explanation=self._explain(chosen, options, policy),
            hospital_eta_s=to_scene + on_scene_s + route.duration_s,
            bed_type=(BedType.parse(need.bed_type) if need.bed_type is not None
                      else default_bed(hospital)))
        if register:
            record = decision.en_route()
            self.board.register_en_route(record.ambulance_id, record.hospital_id,
                                         record.bed_type, eta_s=record.eta_s, at=at)
            decision.ambulance_id, decision.registered = record.ambulance_id, True
        return decision

    @staticmethod
    def _explain(chosen: HospitalOption, options: list[HospitalOption],
                 policy: DispatchPolicy) -> str:
        nearest = min((o for o in options if o.reachable), key=lambda o: o.eta_s)
        if nearest.hospital_id == chosen.hospital_id:
            state = "; ".join(chosen.reasons[1:])
            return f"{chosen.name}: nearest ({_fmt(chosen.eta_s)})" + (f"; {state}" if state
                                                                        else "")
        why = ", ".join(r for r in nearest.reasons[1:]) or "saturation"
        return (f"{chosen.name} ({_fmt(chosen.eta_s)}) rather than the nearest, "
                f"{nearest.name} ({_fmt(nearest.eta_s)}): {why}")

    def arrived(self, ambulance_id: str, *, at: datetime | None = None, admit: bool = True
                ) -> None:
        self.board.arrived(ambulance_id, at=at, admit=admit)

    def cancel(self, ambulance_id: str, *, at: datetime | None = None) -> None:
        self.board.cancel(ambulance_id, at=at)

    # ---------------------------------------------------------------- fleet and coverage
    def nearest_ambulance(self, incident: Coordinate, ambulances: Mapping[str, Coordinate], *,
                          at: datetime | None = None, contraflow: bool = False,
                          restricted_turns: bool = False) -> AmbulanceChoice:
        """The ambulance that reaches ``incident`` first (one multi-source search)."""
        if not ambulances:
            raise ValueError("no ambulance positions given")
        ids = list(ambulances)
        i, route = self.router.closest(incident, [ambulances[k] for k in ids], direction="to",
                                       profile="ambulance", at=at, contraflow=contraflow,
                                       restricted_turns=restricted_turns,
                                       names=[f"ambulance {k!r}" for k in ids])
        if i < 0 or isinstance(route, Unreachable):
            raise NoHospitalAvailable("no ambulance can reach the incident by road")
        return AmbulanceChoice(ids[i], route)

    def coverage(self, stations: Sequence[Coordinate], *, minutes: float,
                 at: datetime | None = None, profile: str = "ambulance") -> Coverage:
        """Road reachable within ``minutes`` from the nearest station, under the current
        overlay: nodes, km of road (edges whose both ends are reached), share of the road
        network, and a polygon (GeoJSON Feature)."""
        if not stations:
            raise ValueError("coverage needs at least one station")
        weights = self.router.weights(profile, at=at)
        iso = self.router.isochrone(list(stations), minutes * 60.0, weights=weights)
        g = self.router.graph
        reached = np.zeros(g.n_nodes, dtype=bool)
        reached[iso.nodes] = True
        edge_in = reached[g.tail] & reached[g.head] & weights.usable
        one_dir = (g.twin < 0) | (np.arange(g.n_edges) < g.twin) | ~weights.usable[
            np.maximum(g.twin, 0)]
        km = float(g.length_m[edge_in & one_dir].sum() / 1000)
        total = float(g.length_m[weights.usable & one_dir].sum() / 1000)
        return Coverage(minutes, len(iso.nodes), km, km / total if total else 0.0,
                        iso.to_geojson(), weights.version)
