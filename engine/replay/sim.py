"""The replay: a discrete-event simulation that drives the live engine on a simulated clock.

Nothing here re-implements routing, traffic or saturation: every route is asked of a
:class:`~engine.query.Router`, every closure and slowdown goes through a
:class:`~engine.traffic.TrafficOverlay` (``apply`` / ``remove`` at the event's time), every bed
through a :class:`~engine.hospitals.HospitalBoard`, every decision through a
:class:`~engine.dispatch.Dispatcher` — the objects live dispatch uses, with ``at=`` set to the
simulated time. The clock is a heap of events; no wall-clock time is read anywhere.

Ambulance life cycle::

    at station --call--> dispatched --travel--> on scene --on_scene_min--> transporting
    --travel--> offloading at hospital --offload_min--> returning --travel--> at station

Model and assumptions (see also ``data/scenarios/README.md``):

- A call enters the dispatch queue ``call_processing_s`` after it is received. The queue is
  FIFO by call time; the head call gets the free ambulance that reaches it first
  (:meth:`Dispatcher.nearest_ambulance`, one multi-source search at the simulated time). Free
  ambulances are those at their station and, with ``fleet.dispatch_returning`` (default), those
  driving back from a hospital, taken from their current position (interpolated along their
  return route at constant speed). A crew at its station leaves ``turnout_s`` after dispatch.
- The hospital is chosen when the crew leaves the scene, by :meth:`Dispatcher.dispatch` with
  the variant's policy at that time (the board then sees the ambulance en route); the
  transport route is the one the dispatcher returns. Routes are computed at departure and
  not re-evaluated if the traffic changes on the way.
- Travel times: ``priority`` driving uses the route's duration with lights and sirens
  (``route.duration_s``); ``normal`` driving uses the same path at normal traffic speed
  (``route.eta_normal_s``). Returning to the station is always at normal speed.
- At the hospital the patient is admitted (:meth:`HospitalBoard.arrived`, one bed of the
  need's type is taken; beyond capacity the board keeps ``available`` at 0 and the replay
  counts the overflow). The crew offloads for ``offload_min`` (``offload_delayed_min`` when
  the hospital reports ``offload_status: Delayed``). The patient is discharged after a length
  of stay (per bed type, exponential or fixed): the bed is given back with
  :meth:`HospitalBoard.update_status` (``available + 1``), or an overflow patient leaves.
  Beds occupied at the start stay occupied unless a ``hospital_status`` event says otherwise.
- Every hospital is taken as having reported its status at the start, and status reports are
  not expected to go stale during a replay (``hospitals.stale_after_min`` to change that).
- Closures (and ``blocked`` field reports) are applied to the overlay with their validity
  window and removed at its end. The extra travel time they cause is measured per trip, leg by
  leg: the same origin and destination routed again on a second overlay that receives every
  traffic change except closures (``weights=`` of the router, same time).
- After the end of the scenario, no new call arrives; the replay goes on until every call
  received has been served (at most ``timing.drain``), so response times are not cut short.
"""

from __future__ import annotations

import contextlib
import heapq
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from engine.attribution import ATTRIBUTION
from engine.dispatch import Dispatcher, DispatchPolicy, Need, NoHospitalAvailable
from engine.errors import GyrophareError, HospitalDataError, PointOffNetwork, SourceError
from engine.graph import RoadGraph, haversine_m
from engine.hospitals import (
    FILE_FORMAT,
    BedType,
    Hospital,
    HospitalBoard,
    OffloadStatus,
    SaturationPolicy,
    hospitals_from_dict,
    hospitals_from_graph,
    load_hospitals,
    snap_entrances,
)
from engine.query import Route, Router
from engine.replay import generator
from engine.replay.generator import Incident
from engine.replay.scenario import (
    ClosureEvent,
    FieldReportEvent,
    HospitalStatusEvent,
    Scenario,
    ScenarioError,
    SurgeEvent,
    TrafficEvent,
    Variant,
    expand_path,
    parse_duration,
)
from engine.snap import Snapper
from engine.traffic import (
    AreaFactor,
    Change,
    ClassFactor,
    Closure,
    FieldReport,
    SegmentSpeeds,
    TrafficInputError,
    TrafficOverlay,
)

Progress = Callable[[int, int], None]
_MAPS: dict[str, tuple[RoadGraph, Snapper]] = {}
_CORE: dict[int, np.ndarray] = {}
ROUTE_SAMPLE = 150  #: routes of each kind kept for the map
NEVER_STALE = timedelta(days=36500)

# event priorities at equal times: lift traffic, then apply timeline events, then discharges,
# then ambulance movements, then new calls
P_LIFT, P_TIMELINE, P_DISCHARGE, P_AMB, P_CALL = range(5)


# ---------------------------------------------------------------------------- map
def map_label(scenario: Scenario) -> str:
    spec = scenario.model.map
    if scenario.map_override:
        return str(Path(scenario.map_override))
    if spec.osm:
        return spec.osm
    if spec.place:
        return f"place {spec.place!r}"
    if spec.bbox:
        return f"bbox {list(spec.bbox)}"
    return "embedded sample city"


def load_map(scenario: Scenario, *, progress: bool = False) -> tuple[RoadGraph, Snapper]:
    """The scenario's road graph (from the graph cache) and its snapper, once per process.

    Raises
    ------
    SourceError
        The map cannot be read or downloaded; for a ``place`` without network the message
        says so and suggests ``--osm FILE``.
    """
    from engine.io import load_graph

    spec = scenario.model.map
    if scenario.map_override:
        path = Path(scenario.map_override).expanduser()
        key = f"file:{path.resolve()}"
    elif spec.osm:
        try:
            path = expand_path(spec.osm)
        except ValueError as exc:
            raise ScenarioError([f"map.osm: {exc}"], name=scenario.name) from None
        key = f"file:{path}"
    elif spec.place or spec.bbox:
        path, key = None, f"download:{spec.place}|{spec.bbox}"
    else:
        path, key = None, "sample"
    hit = _MAPS.get(key)
    if hit is not None:
        return hit
    try:
        if path is not None:
            if not path.exists():
                raise SourceError(f"map file not found: {path}")
            graph = load_graph(path, progress=progress)
        elif spec.place or spec.bbox:
            graph = load_graph(place=spec.place, bbox=spec.bbox, progress=progress)
        else:
            graph = load_graph(None, progress=progress)
    except SourceError as exc:
        if (spec.place or spec.bbox) and not scenario.map_override:
            area = repr(spec.place) if spec.place else f"the box {list(spec.bbox or ())}"
            raise SourceError(
                f"scenario {scenario.name!r} needs the road network of {area}, downloaded "
                f"from OpenStreetMap, and that failed: {exc}. Offline, replay it on a local "
                "extract of the area: gyrophare replay SCENARIO --osm FILE (.osm.pbf, "
                ".graphml or a cached .npz) --out DIR"
            ) from exc
        raise SourceError(f"scenario {scenario.name!r}: {exc}") from exc
    _MAPS[key] = (graph, Snapper(graph))
    return _MAPS[key]


def _core_nodes(graph: RoadGraph, weights: np.ndarray) -> np.ndarray:
    """Mask of the nodes in the largest strongly connected component of the usable edges."""
    key = id(graph)
    if key not in _CORE:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        ok = np.isfinite(weights)
        n = graph.n_nodes
        adj = coo_matrix((np.ones(int(ok.sum())), (graph.tail[ok], graph.head[ok])),
                         shape=(n, n)).tocsr()
        _, labels = connected_components(adj, directed=True, connection="strong")
        _CORE[key] = labels == np.bincount(labels).argmax()
    return _CORE[key]


# ---------------------------------------------------------------------------- records
@dataclass
class Trip:
    """What happened to one call (times in seconds from the start of the scenario)."""

    id: str
    stream: str
    severity: str
    bed_type: str | None
    capability: str | None
    lat: float
    lon: float
    area: str
    t_call: float
    status: str = "waiting"  #: completed, not_transported, unserved, in_progress_at_end
    reason: str = ""
    ambulance: str | None = None
    station: str | None = None
    t_assigned: float | None = None
    t_on_scene: float | None = None
    response_s: float | None = None
    to_scene_s: float | None = None
    queue_wait_s: float | None = None
    t_leave_scene: float | None = None
    hospital: str | None = None
    nearest_hospital: str | None = None
    diverted: bool = False
    diversion_extra_eta_s: float = 0.0
    bed_type_used: str | None = None
    transport_s: float | None = None
    t_at_hospital: float | None = None
    over_capacity: bool = False
    closure_extra_s: float = 0.0
    closure_extra_scene_s: float = 0.0
    closure_extra_transport_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = round(v, 3) if isinstance(v, float) and k not in ("lat", "lon") else v
        return out


@dataclass
class Ambulance:
    id: str
    station: str
    home: tuple[float, float]
    state: str = "at_station"
    token: int = 0
    call: Trip | None = None
    busy_s: float = 0.0
    busy_since: float = 0.0
    missions: int = 0
    # return trip, for positions while driving back
    ret_t0: float = 0.0
    ret_dur: float = 0.0
    ret_lon: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ret_lat: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ret_cum: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def position(self, t: float) -> tuple[float, float]:
        if self.state != "returning" or len(self.ret_cum) < 2 or self.ret_cum[-1] <= 0:
            return self.home
        f = 1.0 if self.ret_dur <= 0 else min(1.0, max(0.0, (t - self.ret_t0) / self.ret_dur))
        d = f * self.ret_cum[-1]
        return (float(np.interp(d, self.ret_cum, self.ret_lat)),
                float(np.interp(d, self.ret_cum, self.ret_lon)))


def _coords(route: Route, max_points: int = 400) -> list[list[float]]:
    pts = route.coordinates
    if len(pts) > max_points:
        step = math.ceil(len(pts) / max_points)
        pts = [*pts[::step], pts[-1]]
    return [[round(p[0], 6), round(p[1], 6)] for p in pts]


@contextlib.contextmanager
def _one_numba_thread() -> Iterator[None]:
    """Run the engine's parallel kernels on the calling thread only, while replaying.

    A replay asks thousands of one-row tables (:meth:`Dispatcher.rank`); waking numba's
    thread pool for each costs more than the search itself (measured on Monaco with the two
    cores busy: 1.8 ms a table with 2 threads, 0.46 ms with 1). Parallelism comes from running
    several replays at once (Dask). ``numba.set_num_threads`` is thread-local: other threads
    of the process (an API server) keep their setting.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency of the engine
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# ---------------------------------------------------------------------------- world
def build_hospitals(scenario: Scenario, graph: RoadGraph) -> list[Hospital]:
    """The scenario's hospitals with overrides applied, all reporting at the start."""
    from engine.hospitals import project_data_path

    spec = scenario.model.hospitals
    errors: list[str] = []
    hospitals: list[Hospital] = []
    try:
        if spec.file:
            try:
                path = project_data_path(spec.file)
            except (FileNotFoundError, ValueError):
                path = expand_path(spec.file)
            if not path.is_file():
                raise ScenarioError([f"hospitals.file: no file {spec.file!r} (a name under "
                                     "data/, e.g. hospitals/dijon-metropole.json, or a path)"],
                                    name=scenario.name)
            hospitals = load_hospitals(path)
        elif spec.inline is not None:
            hospitals = hospitals_from_dict({"format": FILE_FORMAT, "hospitals": spec.inline})
        else:
            hospitals = hospitals_from_graph(graph)
    except HospitalDataError as exc:
        where = "hospitals.inline" + exc.field.removeprefix("hospitals") if spec.inline \
            else f"hospitals.file ({spec.file}): {exc.field}"
        raise ScenarioError([f"{where}: {exc.problem}"], name=scenario.name) from None
    by_id = {h.id: h for h in hospitals}
    if spec.include is not None:
        for k, hid in enumerate(spec.include):
            if hid not in by_id:
                errors.append(f"hospitals.include[{k}]: no hospital {hid!r} (known: "
                              f"{', '.join(sorted(by_id))})")
        hospitals = [h for h in hospitals if h.id in set(spec.include)]
    kept = {h.id for h in hospitals}
    out = []
    for h in hospitals:
        ov = spec.overrides.get(h.id)
        if ov is not None:
            d = h.to_dict()
            for key in ("name", "capabilities", "ed_status", "offload_status", "assumed"):
                value = getattr(ov, key)
                if value is not None:
                    d[key] = value
            if ov.beds is not None:
                d["beds"] = {bt: {"baseline": c.baseline, "available": c.available}
                             for bt, c in ov.beds.items()}
                d["capacity_assumed"] = True
            try:
                h = Hospital.from_dict(d, where=f"hospitals.overrides.{h.id}")
            except HospitalDataError as exc:
                errors.append(f"{exc.field}: {exc.problem}")
        out.append(replace(h, updated_at=scenario.start))
    for hid in spec.overrides:
        if hid not in kept:
            errors.append(f"hospitals.overrides.{hid}: no such hospital among those loaded "
                          f"({', '.join(sorted(kept)) or 'none'})")
    if not out:
        errors.append("hospitals: no hospital left to take patients")
    if errors:
        raise ScenarioError(errors, name=scenario.name)
    return out


def _window(scenario: Scenario, ev: Any) -> tuple[float, float | None]:
    t = scenario.offset(ev.at)
    if getattr(ev, "until", None) is not None:
        return t, scenario.offset(ev.until)
    if getattr(ev, "duration", None) is not None:
        return t, t + parse_duration(ev.duration)
    return t, None


def _change(scenario: Scenario, i: int, ev: Any) -> tuple[Change, bool]:
    """The engine's traffic change for a timeline event, and whether it is a closure."""
    t, until = _window(scenario, ev)
    window = {"id": ev.id or f"timeline-{i}-{ev.type}", "source": ev.source,
              "note": ev.note, "starts_at": scenario.start + timedelta(seconds=t),
              "expires_at": None if until is None else scenario.start + timedelta(seconds=until)}
    if isinstance(ev, ClosureEvent):
        return Closure(geometry=ev.geometry, radius_m=ev.radius_m, **window), True
    if isinstance(ev, FieldReportEvent):
        return FieldReport(lat=ev.location.lat, lon=ev.location.lon, kind=ev.kind,
                           factor=ev.factor, **window), ev.kind == "blocked"
    assert isinstance(ev, TrafficEvent)
    if ev.segments is not None:
        return SegmentSpeeds(speeds=[tuple(s) for s in ev.segments], **window), False
    if ev.area is not None:
        return AreaFactor(geometry=ev.area, factor=float(ev.factor or 1.0),
                          classes=ev.classes, **window), False
    return ClassFactor(classes=list(ev.classes or []), factor=float(ev.factor or 1.0),
                       **window), False


class Replay:
    """One run: one scenario, one variant, one seed, on its own overlay, board, dispatcher."""

    def __init__(self, scenario: Scenario, variant: Variant, seed: int, graph: RoadGraph,
                 snapper: Snapper, *, progress: Progress | None = None) -> None:
        self.sc = scenario
        self.m = scenario.model
        self.variant = variant
        self.seed = int(seed)
        self.graph = graph
        self.progress = progress
        self.start = scenario.start
        self.end_s = scenario.duration_s
        self.drain_s = parse_duration(self.m.timing.drain)
        self.overlay = TrafficOverlay(graph, snapper=snapper)
        self.router = Router(graph, overlay=self.overlay,
                             snap_radius_m=self.m.map.snap_radius_m)
        #: the same traffic without closures: the counterfactual for closure extra time
        self.free_overlay = TrafficOverlay(graph, snapper=snapper)
        sat = self.m.hospitals.saturation
        stale = (timedelta(minutes=self.m.hospitals.stale_after_min)
                 if self.m.hospitals.stale_after_min else NEVER_STALE)
        try:
            policy = SaturationPolicy(tension=sat.tension, saturated=sat.saturated,
                                      margin=sat.margin, stale_after=stale)
        except ValueError as exc:
            raise ScenarioError([f"hospitals.saturation: {exc}"], name=scenario.name) from None
        self.board = HospitalBoard(build_hospitals(scenario, graph), policy=policy,
                                   log_overflow=False,
                                   board_id="replay", at=self.start, history=16)
        snap_entrances(self.board, self.router)
        self.dispatcher = Dispatcher(self.router, self.board)
        self.policy = DispatchPolicy(mode=variant.destination)  # type: ignore[arg-type]
        self.rng = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF,
                                                                 0x5EED]))
        self.heap: list[tuple[float, int, int, str, Any]] = []
        self._seq = 0
        self.queue: deque[Trip] = deque()
        self.trips: list[Trip] = []
        self.in_progress = 0
        self.max_queue = 0
        self.overflow: dict[tuple[str, str], int] = {}
        self.occupancy: dict[tuple[str, str], list[list[float]]] = {}
        self.level_changes: list[tuple[float, str, str | None, int]] = []
        self.closures_live: set[str] = set()
        self.applied: dict[int, tuple[str, bool]] = {}
        self.map_closures: list[dict[str, Any]] = []
        self.scene_routes: list[list[list[float]]] = []
        self.transport_routes: list[list[list[float]]] = []
        self.now = 0.0
        self.calls_done = 0
        self._check_and_prepare()

    # ------------------------------------------------------------------ set-up
    def _check_and_prepare(self) -> None:
        """Everything that needs the map and the hospitals, checked before the first event."""
        sc, errors = self.sc, []
        hospitals = {h.id: h for h in self.board.hospitals()}
        self.changes: dict[int, tuple[Change, bool, float, float | None]] = {}
        for i, ev in enumerate(self.m.timeline):
            if isinstance(ev, ClosureEvent | TrafficEvent | FieldReportEvent):
                change, closure = _change(sc, i, ev)
                t, until = _window(sc, ev)
                try:
                    self.overlay.validate([change], at=self.start + timedelta(seconds=t))
                except TrafficInputError as exc:
                    errors += [f"timeline[{i}] ({ev.type}): "
                               + e.split(": ", 1)[-1] for e in exc.errors]
                    continue
                self.changes[i] = (change, closure, t, until)
            elif isinstance(ev, HospitalStatusEvent | SurgeEvent):
                h = hospitals.get(ev.hospital)
                if h is None:
                    errors.append(f"timeline[{i}].hospital: unknown hospital {ev.hospital!r} "
                                  f"(known: {', '.join(hospitals)})")
                    continue
                if isinstance(ev, HospitalStatusEvent):
                    t = sc.offset(ev.at)
                    for bt, value in (ev.beds or {}).items():
                        if not isinstance(value, int):
                            continue  # {baseline, available}: checked by its model
                        cap = h.beds.get(BedType.parse(bt))
                        base = cap.baseline if cap is not None else 0
                        # surges and status reports earlier in time raise or set the baseline
                        for other in self.m.timeline:
                            if getattr(other, "hospital", None) != ev.hospital or \
                                    sc.offset(other.at) > t or other is ev:
                                continue
                            if isinstance(other, SurgeEvent) and bt in other.beds:
                                base += other.beds[bt]
                            elif isinstance(other, HospitalStatusEvent) and not isinstance(
                                    (other.beds or {}).get(bt, 0), int):
                                base = other.beds[bt].baseline  # type: ignore[index,union-attr]
                        if base <= 0:
                            errors.append(f"timeline[{i}].beds.{bt}: {h.name} does not offer "
                                          f"{bt}; give {{baseline, available}} to open it")
                        elif value > base:
                            errors.append(f"timeline[{i}].beds.{bt}: {value} available "
                                          f"exceeds the baseline ({base})")
        # every need must be met by at least one hospital
        needs: list[tuple[str, str | None, str | None]] = []
        for i, s in enumerate(self.m.incidents.streams):
            for k, mix in enumerate(s.mix):
                needs.append((f"incidents.streams[{i}].mix[{k}].need", mix.need.bed_type,
                              mix.need.capability))
        for i, ev in enumerate(self.m.timeline):
            if getattr(ev, "type", None) == "incident":
                needs.append((f"timeline[{i}].need", ev.need.bed_type, ev.need.capability))
        surged = {(ev.hospital, bt) for ev in self.m.timeline if isinstance(ev, SurgeEvent)
                  for bt in ev.beds}
        for path, bt, cap in needs:
            ok = [h for h in hospitals.values()
                  if (bt is None or h.offers(BedType.parse(bt)) or (h.id, bt) in surged)
                  and (cap is None or cap in h.capabilities)]
            if not ok:
                what = f"{bt or 'any bed'}" + (f" with capability {cap!r}" if cap else "")
                errors.append(f"{path}: no hospital of the scenario offers {what}")
        # stations on the network
        self.ambulances: list[Ambulance] = []
        for i, st in enumerate(self.m.fleet.stations):
            try:
                self.router.snap(st.location.pair, profile="ambulance",
                                 what=f"station {st.id}")
            except (PointOffNetwork, GyrophareError) as exc:
                errors.append(f"fleet.stations[{i}].location: {exc}")
                continue
            for k in range(st.ambulances):
                self.ambulances.append(Ambulance(f"{st.id}-{k + 1}", st.id, st.location.pair))
        if errors:
            raise ScenarioError(errors, name=sc.name)
        self.by_id = {a.id: a for a in self.ambulances}
        self.tracked: dict[str, list[BedType]] = {}
        wanted = {BedType.parse(b) for _, b, _ in needs if b is not None}
        wanted |= {BedType.parse(bt) for _, bt in surged}
        for h in hospitals.values():
            types = [bt for bt in BedType if h.offers(bt) and (bt in wanted or not wanted)]
            if not types and h.offered():
                types = [h.offered()[0]]
            self.tracked[h.id] = types

    def _accept(self) -> Callable[[float, float], bool]:
        """Generated calls must lie within ``max_snap_m`` of a road usable by ambulances, and
        that road must belong to the network's core (its largest strongly connected component
        for ambulances, free flow): a point snapped onto a one-way stub that leads out of the
        extract, say, could be reached but never left."""
        limit = self.m.incidents.max_snap_m
        # free flow: the overlay without any entry (the same for every variant and run)
        weights = self.free_overlay.weights("ambulance", at=self.start)
        assert not self.free_overlay.entries(at=self.start)
        core = _core_nodes(self.graph, weights.values)
        tail, head = self.graph.tail, self.graph.head

        def accept(lat: float, lon: float) -> bool:
            try:
                snap = self.router.snap((lat, lon), weights=weights)
            except GyrophareError:
                return False
            return snap.distance_m <= limit and bool(core[tail[snap.edge]]
                                                     and core[head[snap.edge]])

        return accept

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def push(self, t: float, prio: int, kind: str, data: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, prio, self._seq, kind, data))

    # ------------------------------------------------------------------ recording
    def record(self, hid: str, t: float) -> None:
        """Occupancy of the tracked bed types of one hospital, after a change."""
        h = self.board.hospital(hid)
        en_route: dict[BedType, int] = {}
        for e in self.board.en_route(hid):
            en_route[e.bed_type] = en_route.get(e.bed_type, 0) + 1
        for bt in self.tracked.get(hid, []):
            cap = h.beds.get(bt)
            base = cap.baseline if cap else 0
            occ = (base - cap.available if cap else 0) + self.overflow.get((hid, bt.value), 0)
            row = [round(t, 3), occ, base, en_route.get(bt, 0)]
            series = self.occupancy.setdefault((hid, bt.value), [])
            if series and series[-1][1:] == row[1:]:
                continue
            if series and series[-1][0] == row[0]:
                series[-1] = row
            else:
                series.append(row)

    def _on_signal(self, signal: Any) -> None:
        t = (signal.at - self.start).total_seconds()
        bt = None if signal.bed_type is None else signal.bed_type.value
        self.level_changes.append((round(t, 3), signal.hospital_id, bt, int(signal.new_level)))

    # ------------------------------------------------------------------ travel
    def travel(self, route: Route) -> float:
        if self.variant.driving == "normal" and route.eta_normal_s is not None:
            return float(route.eta_normal_s)
        return float(route.duration_s)

    def closure_extra(self, origin: tuple[float, float], dest: tuple[float, float], t: float,
                      with_closures: float) -> float:
        """Travel time with the closures minus without them (same origin, destination, time
        and other traffic); 0 when no closure is in force."""
        if not self.closures_live:
            return 0.0
        weights = self.free_overlay.weights("ambulance", at=self.at(t))
        try:
            route = self.router.route(origin, dest, weights=weights)
        except GyrophareError:
            return 0.0
        if not route.reachable:
            return 0.0
        return with_closures - self.travel(route)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ handlers
    def on_traffic(self, t: float, i: int) -> None:
        change, closure, _, until = self.changes[i]
        if closure and not self.variant.closures:
            return
        when = self.at(t)
        [entry_id] = self.overlay.apply([change], at=when)
        if closure:
            self.closures_live.add(entry_id)
            entry = self.overlay.get(entry_id)
            edges = entry.edges[(self.graph.twin[entry.edges] < 0)
                                | (entry.edges < self.graph.twin[entry.edges])]
            lines = [[[round(float(self.graph.point_lon[p]), 6),
                       round(float(self.graph.point_lat[p]), 6)]
                      for p in self.graph.edge_points(int(e))] for e in edges[:2000]]
            self.map_closures.append({"id": entry_id, "timeline": i, "from_s": t,
                                      "until_s": until, "geometry": entry.geometry,
                                      "edges": lines})
        else:
            self.free_overlay.apply([change], at=when)
        self.applied[i] = (entry_id, closure)
        if until is not None:
            self.push(until, P_LIFT, "lift", i)

    def on_lift(self, t: float, i: int) -> None:
        entry_id, closure = self.applied.pop(i)
        self.overlay.remove(entry_id, at=self.at(t))
        if closure:
            self.closures_live.discard(entry_id)
        else:
            self.free_overlay.remove(entry_id, at=self.at(t))

    def on_status(self, t: float, i: int) -> None:
        ev = self.m.timeline[i]
        beds: dict[str, Any] | None = None
        if isinstance(ev, SurgeEvent):
            h = self.board.hospital(ev.hospital)
            beds = {}
            for bt, add in ev.beds.items():
                cap = h.beds.get(BedType.parse(bt))
                base, avail = (cap.baseline, cap.available) if cap else (0, 0)
                beds[bt] = {"baseline": base + add, "available": avail + add}
            kwargs: dict[str, Any] = {}
        else:
            assert isinstance(ev, HospitalStatusEvent)
            if ev.beds:
                beds = {bt: v if isinstance(v, int) else {"baseline": v.baseline,
                                                           "available": v.available}
                        for bt, v in ev.beds.items()}
            kwargs = {"ed_status": ev.ed_status, "offload_status": ev.offload_status}
        try:
            self.board.update_status(ev.hospital, beds=beds, at=self.at(t), **kwargs)
        except GyrophareError as exc:
            raise ScenarioError([f"timeline[{i}] (at {ev.at}): {exc}"],
                                name=self.sc.name) from None
        self.record(ev.hospital, t)

    def on_call(self, t: float, trip: Trip) -> None:
        self.queue.append(trip)
        self.max_queue = max(self.max_queue, len(self.queue))
        self.calls_done += 1
        if self.progress is not None:
            self.progress(self.calls_done, self.total_calls)
        self.try_dispatch(t)

    def _free(self) -> list[Ambulance]:
        ok = ("at_station", "returning") if self.m.fleet.dispatch_returning else ("at_station",)
        return [a for a in self.ambulances if a.state in ok]

    def try_dispatch(self, t: float) -> None:
        while self.queue:
            free = self._free()
            if not free:
                return
            trip = self.queue[0]
            # one candidate per distinct position (the first free crew of a station stands
            # for all of them: same search result, far fewer snaps and seeds)
            positions: dict[str, tuple[float, float]] = {}
            seen: set[tuple[float, float]] = set()
            for a in free:
                pos = a.position(t)
                if pos not in seen:
                    seen.add(pos)
                    positions[a.id] = pos
            incident = (trip.lat, trip.lon)
            try:
                choice = self.dispatcher.nearest_ambulance(incident, positions, at=self.at(t))
            except PointOffNetwork as exc:
                self.queue.popleft()
                self._unserved(trip, "off_network", str(exc))
                continue
            except (NoHospitalAvailable, GyrophareError) as exc:
                self.queue.popleft()
                self._unserved(trip, "unreachable", str(exc))
                continue
            self.queue.popleft()
            amb = self.by_id[choice.ambulance_id]
            turnout = self.m.timing.turnout_s if amb.state == "at_station" else 0.0
            travel = self.travel(choice.route)
            extra = self.closure_extra(positions[amb.id], incident, t, travel)
            amb.state, amb.call = "dispatched", trip
            amb.token += 1
            amb.busy_since = t
            amb.missions += 1
            self.in_progress += 1
            trip.ambulance, trip.station = amb.id, amb.station
            trip.t_assigned = t
            trip.queue_wait_s = t - (trip.t_call + self.m.timing.call_processing_s)
            trip.to_scene_s = turnout + travel
            trip.t_on_scene = t + turnout + travel
            trip.response_s = trip.t_on_scene - trip.t_call
            trip.closure_extra_scene_s = extra
            if len(self.scene_routes) < ROUTE_SAMPLE:
                self.scene_routes.append(_coords(choice.route))
            self.push(trip.t_on_scene, P_AMB, "on_scene", amb.id)

    def _unserved(self, trip: Trip, reason: str, detail: str) -> None:
        trip.status, trip.reason = "unserved", f"{reason}: {detail}"

    def on_scene(self, t: float, amb_id: str) -> None:
        amb = self.by_id[amb_id]
        amb.state = "on_scene"
        self.push(t + self.m.timing.on_scene_min * 60.0, P_AMB, "leave_scene", amb_id)

    def on_leave_scene(self, t: float, amb_id: str) -> None:
        amb = self.by_id[amb_id]
        trip = amb.call
        assert trip is not None
        trip.t_leave_scene = t
        need = Need(bed_type=trip.bed_type, capability=trip.capability,
                    severity=trip.severity)
        incident = (trip.lat, trip.lon)
        try:
            dec = self.dispatcher.dispatch(incident, need, at=self.at(t), policy=self.policy,
                                           register=True, ambulance_id=amb.id)
        except GyrophareError as exc:
            trip.status, trip.reason = "not_transported", str(exc)
            self.in_progress -= 1
            self._finish_mission(amb, t)
            self._return(amb, t, incident)
            return
        hid = dec.hospital_id
        reachable = [o for o in dec.ranking if o.reachable]
        nearest = min(reachable, key=lambda o: (o.eta_s, o.hospital_id))
        trip.hospital, trip.nearest_hospital = hid, nearest.hospital_id
        trip.diverted = hid != nearest.hospital_id
        trip.diversion_extra_eta_s = dec.chosen.eta_s - nearest.eta_s if trip.diverted else 0.0
        entry = next(e for e in self.board.en_route(hid) if e.ambulance_id == amb.id)
        trip.bed_type_used = entry.bed_type.value
        travel = self.travel(dec.route)
        trip.transport_s = travel
        dest = self.board.hospital(hid).destination
        trip.closure_extra_transport_s = self.closure_extra(incident, dest, t, travel)
        trip.closure_extra_s = trip.closure_extra_scene_s + trip.closure_extra_transport_s
        if len(self.transport_routes) < ROUTE_SAMPLE:
            self.transport_routes.append(_coords(dec.route))
        amb.state = "transporting"
        self.record(hid, t)
        self.push(t + travel, P_AMB, "at_hospital", amb_id)

    def on_at_hospital(self, t: float, amb_id: str) -> None:
        amb = self.by_id[amb_id]
        trip = amb.call
        assert trip is not None and trip.hospital is not None
        hid, bt = trip.hospital, trip.bed_type_used
        assert bt is not None
        h = self.board.hospital(hid)
        cap = h.beds.get(BedType.parse(bt))
        over = cap is None or cap.available == 0
        self.board.arrived(amb_id, at=self.at(t), admit=True)
        if over:
            self.overflow[(hid, bt)] = self.overflow.get((hid, bt), 0) + 1
            trip.over_capacity = True
        trip.t_at_hospital = t
        trip.status = "completed"
        self.in_progress -= 1
        self.record(hid, t)
        self.push(t + self._length_of_stay(bt), P_DISCHARGE, "discharge", (hid, bt))
        delayed = h.offload_status == OffloadStatus.DELAYED
        offload = self.m.timing.offload_delayed_min if delayed else self.m.timing.offload_min
        amb.state = "offloading"
        self.push(t + offload * 60.0, P_AMB, "offload_done", amb_id)

    def _length_of_stay(self, bt: str) -> float:
        los = self.m.timing.length_of_stay_h
        mean_s = los.get(bt, los["default"]) * 3600.0
        if self.m.timing.length_of_stay == "fixed":
            return mean_s
        return float(self.rng.exponential(mean_s))

    def on_offload_done(self, t: float, amb_id: str) -> None:
        amb = self.by_id[amb_id]
        trip = amb.call
        assert trip is not None and trip.hospital is not None
        self._finish_mission(amb, t)
        self._return(amb, t, self.board.hospital(trip.hospital).destination)
        self.try_dispatch(t)

    def _finish_mission(self, amb: Ambulance, t: float) -> None:
        amb.busy_s += t - amb.busy_since
        amb.call = None

    def _return(self, amb: Ambulance, t: float, origin: tuple[float, float]) -> None:
        """Drive back to the station at normal speed (positions kept for dispatch)."""
        amb.state = "returning"
        amb.token += 1
        dur = 0.0
        try:
            route = self.router.route(origin, amb.home, profile="ambulance", at=self.at(t))
        except GyrophareError:
            route = None
        if route is not None and route.reachable:
            assert isinstance(route, Route)
            dur = float(route.eta_normal_s if route.eta_normal_s is not None
                        else route.duration_s)
            c = np.asarray(route.coordinates, dtype=float)
            seg = haversine_m(c[:-1, 1], c[:-1, 0], c[1:, 1], c[1:, 0])
            amb.ret_lon, amb.ret_lat = c[:, 0], c[:, 1]
            amb.ret_cum = np.concatenate([[0.0], np.cumsum(seg)])
        else:
            amb.ret_cum = np.zeros(0)
        amb.ret_t0, amb.ret_dur = t, dur
        self.push(t + dur, P_AMB, "at_station", (amb.id, amb.token))

    def on_at_station(self, t: float, data: tuple[str, int]) -> None:
        amb_id, token = data
        amb = self.by_id[amb_id]
        if amb.token != token or amb.state != "returning":
            return  # dispatched again on the way back
        amb.state = "at_station"
        self.try_dispatch(t)

    def on_discharge(self, t: float, data: tuple[str, str]) -> None:
        hid, bt = data
        key = (hid, bt)
        if self.overflow.get(key, 0) > 0:
            self.overflow[key] -= 1
        else:
            cap = self.board.hospital(hid).beds.get(BedType.parse(bt))
            if cap is None or not cap.offered or cap.available >= cap.baseline:
                return
            self.board.update_status(hid, beds={bt: cap.available + 1}, at=self.at(t))
        self.record(hid, t)

    # ------------------------------------------------------------------ main loop
    def run(self) -> dict[str, Any]:
        from engine.replay.metrics import compute_metrics

        calls = generator.incidents(self.sc, self.seed, accept=self._accept())
        self.total_calls = len(calls)
        for inc in calls:
            trip = self._trip(inc)
            self.trips.append(trip)
            self.push(inc.t + self.m.timing.call_processing_s, P_CALL, "call", trip)
        for i, (_, _, t, _) in self.changes.items():
            self.push(t, P_TIMELINE, "traffic", i)
        for i, ev in enumerate(self.m.timeline):
            if isinstance(ev, HospitalStatusEvent | SurgeEvent):
                self.push(self.sc.offset(ev.at), P_TIMELINE, "status", i)
        initial: dict[tuple[str, str | None], int] = {}
        for h in self.board.hospitals():
            self.record(h.id, 0.0)
            initial[(h.id, None)] = int(self.board.level(h.id, at=self.start).level)
            for bt in self.tracked.get(h.id, []):
                initial[(h.id, bt.value)] = int(self.board.level(h.id, bt,
                                                                 at=self.start).level)
        unsubscribe = self.board.subscribe(self._on_signal)
        handlers: dict[str, Callable[[float, Any], None]] = {
            "traffic": self.on_traffic, "lift": self.on_lift, "status": self.on_status,
            "call": self.on_call, "on_scene": self.on_scene,
            "leave_scene": self.on_leave_scene, "at_hospital": self.on_at_hospital,
            "offload_done": self.on_offload_done, "at_station": self.on_at_station,
            "discharge": self.on_discharge,
        }
        last = self.end_s
        try:
            with _one_numba_thread():
                while self.heap:
                    t, _, _, kind, data = self.heap[0]
                    if t > self.end_s and (not (self.queue or self.in_progress)
                                           or t > self.end_s + self.drain_s):
                        break
                    heapq.heappop(self.heap)
                    self.now = t
                    if kind in ("on_scene", "leave_scene", "at_hospital", "call"):
                        last = max(last, t)
                    handlers[kind](t, data)
        finally:
            unsubscribe()
        for trip in self.queue:
            self._unserved(trip, "queued_at_end", "no ambulance became free before the "
                           "end of the replay (timing.drain)")
        for trip in self.trips:
            if trip.status == "waiting":
                trip.status = "in_progress_at_end"
        horizon = max(self.end_s, last)
        for h in self.board.hospitals():
            self.record(h.id, horizon)
        metrics = compute_metrics(
            trips=[t.to_dict() for t in self.trips], occupancy=self.occupancy,
            level_changes=self.level_changes, initial_levels=initial, horizon_s=horizon,
            targets_min=self.m.metrics.targets_min,
            ambulances={a.id: (a.busy_s, a.missions) for a in self.ambulances},
            max_queue=self.max_queue,
            hospital_names={h.id: h.name for h in self.board.hospitals()})
        return {
            "format": "gyrophare-replay-result/1",
            "scenario": self.sc.name,
            "variant": self.variant.to_dict(),
            "seed": self.seed,
            "start": self.start.astimezone(UTC).isoformat(),
            "duration_s": self.end_s,
            "horizon_s": round(horizon, 3),
            "map": map_label(self.sc),
            "metrics": metrics,
            "trips": [t.to_dict() for t in self.trips],
            "occupancy": {f"{hid}|{bt}": rows for (hid, bt), rows in self.occupancy.items()},
            "levels": {"initial": [[hid, bt, lv] for (hid, bt), lv in initial.items()],
                       "changes": [list(c) for c in self.level_changes]},
            "geo": self._geo(),
            "attribution": ATTRIBUTION,
        }

    def _trip(self, inc: Incident) -> Trip:
        return Trip(id=inc.id, stream=inc.stream, severity=inc.severity, bed_type=inc.bed_type,
                    capability=inc.capability, lat=round(inc.lat, 6), lon=round(inc.lon, 6),
                    area=inc.area, t_call=round(inc.t, 3))

    def _geo(self) -> dict[str, Any]:
        return {
            "hospitals": [{"id": h.id, "name": h.name, "lat": h.lat, "lon": h.lon}
                          for h in self.board.hospitals()],
            "stations": [{"id": s.id, "name": s.name, "lat": s.location.lat,
                          "lon": s.location.lon, "ambulances": s.ambulances}
                         for s in self.m.fleet.stations],
            "closures": self.map_closures,
            "scene_routes": self.scene_routes,
            "transport_routes": self.transport_routes,
        }


def simulate(scenario: Scenario, variant: Variant, seed: int, *,
             progress: Progress | None = None) -> dict[str, Any]:
    """Run one replay and return its JSON-ready result dict."""
    graph, snapper = load_map(scenario)
    return Replay(scenario, variant, seed, graph, snapper, progress=progress).run()


__all__ = ["Replay", "Trip", "build_hospitals", "load_map", "map_label", "simulate"]
