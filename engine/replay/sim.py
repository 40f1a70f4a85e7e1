"""The replay: a discrete-event simulation that drives the live engine on a simulated clock.

Nothing here re-implements routing, traffic or saturation: every route is asked of a
:class:`~engine.query.Router`, every closure and slowdown goes through a
:class:`~engine.traffic.TrafficOverlay` (``apply`` / ``remove`` at the event's time), every bed
through a :class:`~engine.hospitals.HospitalBoard`, every decision through a
:class:`~engine.dispatch.Dispatcher` — the objects live dispatch uses, with ``at=`` set to the
simulated time. The clock is a heap of events; no wall-clock time is read anywhere. The
world a run starts from (map, hospitals, crews, traffic changes) is built by
:mod:`engine.replay.world`; what a run returns is assembled by :mod:`engine.replay.results`.

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
  need's type is taken; beyond capacity the board keeps ``available`` at 0 and counts the
  overflow in ``HospitalBoard.overflows``, which the metrics report). The crew offloads for
  ``offload_min`` (``offload_delayed_min`` when the hospital reports ``offload_status:
  Delayed``). The patient is discharged after a length of stay (per bed type, exponential
  or fixed): the bed is given back with :meth:`HospitalBoard.update_status`
  (``available + 1``), or an overflow patient leaves.
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
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from engine.dispatch import DispatchPolicy, Need, NoHospitalAvailable
from engine.errors import GyrophareError, PointOffNetwork
from engine.graph import RoadGraph, haversine_m
from engine.hospitals import BedType, OffloadStatus, SaturationSignal
from engine.query import Route
from engine.replay import generator
from engine.replay.generator import Incident
from engine.replay.results import MapLayers, Trip, run_result
from engine.replay.scenario import (
    HospitalStatusEvent,
    Scenario,
    ScenarioError,
    SurgeEvent,
    Variant,
    parse_duration,
)
from engine.replay.world import Crew, build_world, load_map
from engine.snap import Snapper

#: ``progress(calls_done, calls_total)`` while a replay runs
Progress = Callable[[int, int], None]
#: what an event on the clock's heap is (each kind has one handler in :meth:`Replay.run`)
EventKind = Literal["traffic", "lift", "status", "call", "on_scene", "leave_scene",
                    "at_hospital", "offload_done", "at_station", "discharge"]

# event priorities at equal times: lift traffic, then apply timeline events, then discharges,
# then ambulance movements, then new calls
P_LIFT, P_TIMELINE, P_DISCHARGE, P_AMB, P_CALL = range(5)
#: events after which the replay is still busy (they stretch the horizon of the metrics)
_ACTIVE: frozenset[str] = frozenset({"on_scene", "leave_scene", "at_hospital", "call"})


@dataclass
class Ambulance:
    """One crew during a run: where it is in its life cycle, its current call, its time busy,
    and while it drives back, its return route (for its position at any time)."""

    id: str
    station: str
    home: tuple[float, float]
    state: str = "at_station"
    token: int = 0  #: bumped at each departure: a stale "at_station" event is ignored
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

    @classmethod
    def of(cls, crew: Crew) -> Ambulance:
        return cls(crew.id, crew.station, crew.home)

    def position(self, t: float) -> tuple[float, float]:
        """At the station, or along the return route at constant speed."""
        if self.state != "returning" or len(self.ret_cum) < 2 or self.ret_cum[-1] <= 0:
            return self.home
        f = 1.0 if self.ret_dur <= 0 else min(1.0, max(0.0, (t - self.ret_t0) / self.ret_dur))
        d = f * self.ret_cum[-1]
        return (float(np.interp(d, self.ret_cum, self.ret_lat)),
                float(np.interp(d, self.ret_cum, self.ret_lon)))


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


class Replay:
    """One run: one scenario, one variant, one seed, on its own overlay, board, dispatcher.

    Building it builds and checks the world (:func:`engine.replay.world.build_world`:
    :class:`ScenarioError` with every problem); :meth:`run` replays the calls once.
    """

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
        self.world = build_world(scenario, graph, snapper)
        self.overlay = self.world.overlay
        #: the same traffic without closures: the counterfactual for closure extra time
        self.free_overlay = self.world.free_overlay
        self.router = self.world.router
        self.board = self.world.board
        self.dispatcher = self.world.dispatcher
        self.changes = self.world.changes
        self.tracked = self.world.tracked
        self.ambulances = [Ambulance.of(c) for c in self.world.crews]
        self.by_id = {a.id: a for a in self.ambulances}
        self.policy = DispatchPolicy(mode=variant.destination)  # type: ignore[arg-type]
        self.rng = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF,
                                                                 0x5EED]))
        self.heap: list[tuple[float, int, int, EventKind, Any]] = []
        self._seq = 0
        self.queue: deque[Trip] = deque()
        self.trips: list[Trip] = []
        self.in_progress = 0
        self.max_queue = 0
        #: patients held beyond capacity now, per (hospital, bed type): they leave first
        self.beyond_capacity: dict[tuple[str, str], int] = {}
        self.occupancy: dict[tuple[str, str], list[list[float]]] = {}
        self.level_changes: list[tuple[float, str, str | None, int]] = []
        self.closures_live: set[str] = set()
        self.applied: dict[int, tuple[str, bool]] = {}
        self.layers = MapLayers()
        self.now = 0.0
        self.calls_done = 0
        self.total_calls = 0

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def push(self, t: float, prio: int, kind: EventKind, data: Any = None) -> None:
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
            occ = ((base - cap.available if cap else 0)
                   + self.beyond_capacity.get((hid, bt.value), 0))
            row = [round(t, 3), occ, base, en_route.get(bt, 0)]
            series = self.occupancy.setdefault((hid, bt.value), [])
            if series and series[-1][1:] == row[1:]:
                continue
            if series and series[-1][0] == row[0]:
                series[-1] = row
            else:
                series.append(row)

    def _on_signal(self, signal: SaturationSignal) -> None:
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
        if not isinstance(route, Route):
            return 0.0
        return with_closures - self.travel(route)

    # ------------------------------------------------------------------ handlers
    def on_traffic(self, t: float, i: int) -> None:
        tc = self.changes[i]
        if tc.closure and not self.variant.closures:
            return
        when = self.at(t)
        [entry_id] = self.overlay.apply([tc.change], at=when)
        if tc.closure:
            self.closures_live.add(entry_id)
            self.layers.add_closure(self.graph, self.overlay.get(entry_id), timeline=i,
                                    from_s=t, until_s=tc.until_s)
        else:
            self.free_overlay.apply([tc.change], at=when)
        self.applied[i] = (entry_id, tc.closure)
        if tc.until_s is not None:
            self.push(tc.until_s, P_LIFT, "lift", i)

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
        """Send free crews to the queued calls, oldest call first."""
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
            self.layers.add_scene_route(choice.route)
            self.push(trip.t_on_scene, P_AMB, "on_scene", amb.id)

    def _unserved(self, trip: Trip, reason: str, detail: str) -> None:
        trip.status, trip.reason = "unserved", f"{reason}: {detail}"

    def on_scene(self, t: float, amb_id: str) -> None:
        amb = self.by_id[amb_id]
        amb.state = "on_scene"
        self.push(t + self.m.timing.on_scene_min * 60.0, P_AMB, "leave_scene", amb_id)

    def on_leave_scene(self, t: float, amb_id: str) -> None:
        """Choose the hospital now; the dispatcher registers the crew as en route there."""
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
        assert dec.bed_type is not None  # the bed registered on the board
        trip.bed_type_used = dec.bed_type.value
        travel = self.travel(dec.route)
        trip.transport_s = travel
        dest = self.board.hospital(hid).destination
        trip.closure_extra_transport_s = self.closure_extra(incident, dest, t, travel)
        trip.closure_extra_s = trip.closure_extra_scene_s + trip.closure_extra_transport_s
        self.layers.add_transport_route(dec.route)
        amb.state = "transporting"
        self.record(hid, t)
        self.push(t + travel, P_AMB, "at_hospital", amb_id)

    def on_at_hospital(self, t: float, amb_id: str) -> None:
        """Admit the patient (the board takes the bed and counts any overflow), offload."""
        amb = self.by_id[amb_id]
        trip = amb.call
        assert trip is not None and trip.hospital is not None
        hid, bt = trip.hospital, trip.bed_type_used
        assert bt is not None
        overflows = self.board.overflows[(hid, bt)]
        self.board.arrived(amb_id, at=self.at(t), admit=True)
        if self.board.overflows[(hid, bt)] > overflows:
            self.beyond_capacity[(hid, bt)] = self.beyond_capacity.get((hid, bt), 0) + 1
            trip.over_capacity = True
        trip.t_at_hospital = t
        trip.status = "completed"
        self.in_progress -= 1
        self.record(hid, t)
        self.push(t + self._length_of_stay(bt), P_DISCHARGE, "discharge", (hid, bt))
        delayed = self.board.hospital(hid).offload_status == OffloadStatus.DELAYED
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
        if isinstance(route, Route):
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
        """A patient leaves: one held beyond capacity first, else a bed is given back."""
        hid, bt = data
        key = (hid, bt)
        if self.beyond_capacity.get(key, 0) > 0:
            self.beyond_capacity[key] -= 1
        else:
            cap = self.board.hospital(hid).beds.get(BedType.parse(bt))
            if cap is None or not cap.offered or cap.available >= cap.baseline:
                return
            self.board.update_status(hid, beds={bt: cap.available + 1}, at=self.at(t))
        self.record(hid, t)

    # ------------------------------------------------------------------ main loop
    def run(self) -> dict[str, Any]:
        """Replay the scenario once; the JSON-ready result (:mod:`engine.replay.results`)."""
        calls = generator.incidents(self.sc, self.seed,
                                    accept=self.world.call_site_filter())
        self.total_calls = len(calls)
        for inc in calls:
            trip = self._trip(inc)
            self.trips.append(trip)
            self.push(inc.t + self.m.timing.call_processing_s, P_CALL, "call", trip)
        for i, tc in self.changes.items():
            self.push(tc.start_s, P_TIMELINE, "traffic", i)
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
        handlers: dict[EventKind, Callable[[float, Any], None]] = {
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
                    if kind in _ACTIVE:
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
        return run_result(
            scenario=self.sc, variant=self.variant, seed=self.seed, horizon_s=horizon,
            trips=self.trips, occupancy=self.occupancy, level_changes=self.level_changes,
            initial_levels=initial,
            fleet={a.id: (a.busy_s, a.missions) for a in self.ambulances},
            max_queue=self.max_queue, board=self.board, layers=self.layers)

    def _trip(self, inc: Incident) -> Trip:
        return Trip(id=inc.id, stream=inc.stream, severity=inc.severity, bed_type=inc.bed_type,
                    capability=inc.capability, lat=round(inc.lat, 6), lon=round(inc.lon, 6),
                    area=inc.area, t_call=round(inc.t, 3))


def simulate(scenario: Scenario, variant: Variant, seed: int, *,
             progress: Progress | None = None) -> dict[str, Any]:
    """Run one replay and return its JSON-ready result dict."""
    graph, snapper = load_map(scenario)
    return Replay(scenario, variant, seed, graph, snapper, progress=progress).run()


__all__ = ["Ambulance", "Progress", "Replay", "simulate"]
