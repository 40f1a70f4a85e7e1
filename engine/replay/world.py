"""The world a replay runs in, built and checked before the first event: the scenario's road
map (cached per process), its hospitals on a saturation board, its stations and crews, and the
engine's traffic change for every closure, slowdown and field report of its timeline.

Everything that needs the road graph or the hospitals is checked here, so that a bad
scenario fails with every problem listed (:class:`ScenarioError`, with field paths) before
any call is replayed; :func:`build_world` is also what :func:`engine.replay.runner.preflight`
runs once before sending runs to Dask workers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypedDict

import numpy as np

from engine.dispatch import Dispatcher
from engine.errors import GyrophareError, HospitalDataError, PointOffNetwork, SourceError
from engine.graph import RoadGraph
from engine.hospitals import (
    FILE_FORMAT,
    BedType,
    Hospital,
    HospitalBoard,
    SaturationPolicy,
    hospitals_from_dict,
    hospitals_from_graph,
    load_hospitals,
    snap_entrances,
)
from engine.query import Router
from engine.replay.generator import Accept
from engine.replay.scenario import (
    ClosureEvent,
    FieldReportEvent,
    HospitalStatusEvent,
    IncidentEvent,
    Scenario,
    ScenarioError,
    SurgeEvent,
    TrafficEvent,
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

#: A timeline event the traffic overlay receives.
TrafficTimelineEvent = ClosureEvent | TrafficEvent | FieldReportEvent

#: "never" for the board's staleness rule: statuses are taken as reported continuously
NEVER_STALE = timedelta(days=36500)

_MAPS: dict[str, tuple[RoadGraph, Snapper]] = {}
_CORE: dict[int, np.ndarray] = {}


# ---------------------------------------------------------------------------- map
def map_label(scenario: Scenario) -> str:
    """The scenario's map in a few words (a file, a place, a box, the sample city)."""
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
    path: Path | None
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


def core_nodes(graph: RoadGraph, weights: np.ndarray) -> np.ndarray:
    """Mask of the nodes in the largest strongly connected component of the usable edges
    (computed once per graph: every run asks it with the same free-flow weights)."""
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


# ---------------------------------------------------------------------------- hospitals
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


def saturation_policy(scenario: Scenario) -> SaturationPolicy:
    """The board's thresholds; statuses never go stale unless ``stale_after_min`` says so."""
    sat = scenario.model.hospitals.saturation
    stale_min = scenario.model.hospitals.stale_after_min
    stale = timedelta(minutes=stale_min) if stale_min else NEVER_STALE
    try:
        return SaturationPolicy(tension=sat.tension, saturated=sat.saturated,
                                margin=sat.margin, stale_after=stale)
    except ValueError as exc:
        raise ScenarioError([f"hospitals.saturation: {exc}"], name=scenario.name) from None


# ---------------------------------------------------------------------------- traffic timeline
@dataclass(frozen=True)
class TimelineChange:
    """A traffic event of the timeline as the engine's change, with its validity window in
    seconds from the start (``until_s`` ``None``: to the end)."""

    change: Change
    closure: bool  #: a closure or a ``blocked`` field report (what ``closures-off`` drops)
    start_s: float
    until_s: float | None


class _ChangeWindow(TypedDict):
    """The fields every engine change of the timeline shares (:class:`engine.traffic.Change`)."""

    id: str
    source: str
    note: str
    starts_at: datetime
    expires_at: datetime | None


def event_window(scenario: Scenario, ev: TrafficTimelineEvent) -> tuple[float, float | None]:
    """Start and end of an event's validity window, in seconds from the scenario's start."""
    t = scenario.offset(ev.at)
    if ev.until is not None:
        return t, scenario.offset(ev.until)
    if ev.duration is not None:
        return t, t + parse_duration(ev.duration)
    return t, None


def traffic_change(scenario: Scenario, i: int, ev: TrafficTimelineEvent) -> TimelineChange:
    """The engine's traffic change for timeline event ``i``, with its window."""
    t, until = event_window(scenario, ev)
    window = _ChangeWindow(
        id=ev.id or f"timeline-{i}-{ev.type}", source=ev.source, note=ev.note,
        starts_at=scenario.start + timedelta(seconds=t),
        expires_at=None if until is None else scenario.start + timedelta(seconds=until))
    change: Change
    closure = False
    if isinstance(ev, ClosureEvent):
        change, closure = Closure(geometry=ev.geometry, radius_m=ev.radius_m, **window), True
    elif isinstance(ev, FieldReportEvent):
        change = FieldReport(lat=ev.location.lat, lon=ev.location.lon, kind=ev.kind,
                             factor=ev.factor, **window)
        closure = ev.kind == "blocked"
    elif ev.segments is not None:
        change = SegmentSpeeds(speeds=[(a, b, kmh) for a, b, kmh in ev.segments], **window)
    elif ev.area is not None:
        change = AreaFactor(geometry=ev.area, factor=float(ev.factor or 1.0),
                            classes=ev.classes, **window)
    else:
        change = ClassFactor(classes=list(ev.classes or []), factor=float(ev.factor or 1.0),
                             **window)
    return TimelineChange(change, closure, t, until)


# ---------------------------------------------------------------------------- the world
@dataclass(frozen=True)
class Crew:
    """One ambulance of the fleet: ``{station}-{k}``, its station and the station's place."""

    id: str
    station: str
    home: tuple[float, float]


@dataclass
class World:
    """The engine objects of one run (its own overlay, board and dispatcher), checked against
    the scenario.

    ``free_overlay`` receives every traffic change except closures: the counterfactual the
    replay routes on to measure the extra travel closures cause. ``tracked`` lists, per
    hospital, the bed types whose occupancy the replay records (those some call may need).
    """

    scenario: Scenario
    graph: RoadGraph
    overlay: TrafficOverlay
    free_overlay: TrafficOverlay
    router: Router
    board: HospitalBoard
    dispatcher: Dispatcher
    changes: dict[int, TimelineChange]
    crews: list[Crew]
    tracked: dict[str, list[BedType]]

    def call_site_filter(self) -> Accept:
        """Generated calls must lie within ``max_snap_m`` of a road usable by ambulances, and
        that road must belong to the network's core (its largest strongly connected component
        for ambulances, free flow): a point snapped onto a one-way stub that leads out of the
        extract, say, could be reached but never left. Ask it before any traffic change."""
        limit = self.scenario.model.incidents.max_snap_m
        start = self.scenario.start
        # free flow: the overlay without any entry (the same for every variant and run)
        weights = self.free_overlay.weights("ambulance", at=start)
        assert not self.free_overlay.entries(at=start)
        core = core_nodes(self.graph, weights.values)
        tail, head = self.graph.tail, self.graph.head
        router = self.router

        def accept(lat: float, lon: float) -> bool:
            try:
                snap = router.snap((lat, lon), weights=weights)
            except GyrophareError:
                return False
            return snap.distance_m <= limit and bool(core[tail[snap.edge]]
                                                     and core[head[snap.edge]])

        return accept


def build_world(scenario: Scenario, graph: RoadGraph, snapper: Snapper) -> World:
    """Build the engine objects of one run and check everything that needs the map and the
    hospitals (timeline events, needs, stations).

    Raises
    ------
    ScenarioError
        Every problem found, with its field path.
    """
    m = scenario.model
    overlay = TrafficOverlay(graph, snapper=snapper)
    router = Router(graph, overlay=overlay, snap_radius_m=m.map.snap_radius_m)
    free_overlay = TrafficOverlay(graph, snapper=snapper)
    policy = saturation_policy(scenario)
    board = HospitalBoard(build_hospitals(scenario, graph), policy=policy, log_overflow=False,
                          board_id="replay", at=scenario.start, history=16)
    snap_entrances(board, router)
    dispatcher = Dispatcher(router, board)
    hospitals = {h.id: h for h in board.hospitals()}
    errors: list[str] = []
    changes = _timeline(scenario, overlay, hospitals, errors)
    needs = _needs(scenario)
    surged = {(ev.hospital, bt) for ev in m.timeline if isinstance(ev, SurgeEvent)
              for bt in ev.beds}
    _check_needs(needs, surged, hospitals, errors)
    crews = _crews(scenario, router, errors)
    if errors:
        raise ScenarioError(errors, name=scenario.name)
    wanted = {BedType.parse(b) for _, b, _ in needs if b is not None}
    wanted |= {BedType.parse(bt) for _, bt in surged}
    tracked: dict[str, list[BedType]] = {}
    for h in hospitals.values():
        types = [bt for bt in BedType if h.offers(bt) and (bt in wanted or not wanted)]
        if not types and h.offered():
            types = [h.offered()[0]]
        tracked[h.id] = types
    return World(scenario, graph, overlay, free_overlay, router, board, dispatcher, changes,
                 crews, tracked)


def _timeline(scenario: Scenario, overlay: TrafficOverlay, hospitals: dict[str, Hospital],
              errors: list[str]) -> dict[int, TimelineChange]:
    """The traffic changes of the timeline, validated on the map; hospital events checked
    against the hospitals (problems appended to ``errors``, in timeline order)."""
    changes: dict[int, TimelineChange] = {}
    timeline = scenario.model.timeline
    for i, ev in enumerate(timeline):
        if isinstance(ev, ClosureEvent | TrafficEvent | FieldReportEvent):
            tc = traffic_change(scenario, i, ev)
            try:
                overlay.validate([tc.change],
                                 at=scenario.start + timedelta(seconds=tc.start_s))
            except TrafficInputError as exc:
                errors += [f"timeline[{i}] ({ev.type}): "
                           + e.split(": ", 1)[-1] for e in exc.errors]
                continue
            changes[i] = tc
        elif isinstance(ev, HospitalStatusEvent | SurgeEvent):
            h = hospitals.get(ev.hospital)
            if h is None:
                errors.append(f"timeline[{i}].hospital: unknown hospital {ev.hospital!r} "
                              f"(known: {', '.join(hospitals)})")
                continue
            if isinstance(ev, HospitalStatusEvent):
                _check_status_beds(scenario, i, ev, h, errors)
    return changes


def _check_status_beds(scenario: Scenario, i: int, ev: HospitalStatusEvent, h: Hospital,
                       errors: list[str]) -> None:
    """A status event's bare ``available`` counts must fit the baseline in force then."""
    t = scenario.offset(ev.at)
    for bt, value in (ev.beds or {}).items():
        if not isinstance(value, int):
            continue  # {baseline, available}: checked by its model
        cap = h.beds.get(BedType.parse(bt))
        base = cap.baseline if cap is not None else 0
        # surges and status reports earlier in time raise or set the baseline
        for other in scenario.model.timeline:
            if not isinstance(other, HospitalStatusEvent | SurgeEvent) or \
                    other.hospital != ev.hospital or scenario.offset(other.at) > t or \
                    other is ev:
                continue
            if isinstance(other, SurgeEvent):
                if bt in other.beds:
                    base += other.beds[bt]
            else:
                given = (other.beds or {}).get(bt, 0)
                if not isinstance(given, int):
                    base = given.baseline
        if base <= 0:
            errors.append(f"timeline[{i}].beds.{bt}: {h.name} does not offer "
                          f"{bt}; give {{baseline, available}} to open it")
        elif value > base:
            errors.append(f"timeline[{i}].beds.{bt}: {value} available "
                          f"exceeds the baseline ({base})")


def _needs(scenario: Scenario) -> list[tuple[str, str | None, str | None]]:
    """Every need a call may have: (field path, bed type, capability)."""
    m = scenario.model
    needs: list[tuple[str, str | None, str | None]] = []
    for i, s in enumerate(m.incidents.streams):
        for k, mix in enumerate(s.mix):
            needs.append((f"incidents.streams[{i}].mix[{k}].need", mix.need.bed_type,
                          mix.need.capability))
    for i, ev in enumerate(m.timeline):
        if isinstance(ev, IncidentEvent):
            needs.append((f"timeline[{i}].need", ev.need.bed_type, ev.need.capability))
    return needs


def _check_needs(needs: list[tuple[str, str | None, str | None]],
                 surged: set[tuple[str, str]], hospitals: dict[str, Hospital],
                 errors: list[str]) -> None:
    """Every need must be met by at least one hospital (a surge may open the beds)."""
    for path, bt, cap in needs:
        ok = [h for h in hospitals.values()
              if (bt is None or h.offers(BedType.parse(bt)) or (h.id, bt) in surged)
              and (cap is None or cap in h.capabilities)]
        if not ok:
            what = f"{bt or 'any bed'}" + (f" with capability {cap!r}" if cap else "")
            errors.append(f"{path}: no hospital of the scenario offers {what}")


def _crews(scenario: Scenario, router: Router, errors: list[str]) -> list[Crew]:
    """The fleet, station by station; a station off the road network is an error."""
    crews: list[Crew] = []
    for i, st in enumerate(scenario.model.fleet.stations):
        try:
            router.snap(st.location.pair, profile="ambulance", what=f"station {st.id}")
        except (PointOffNetwork, GyrophareError) as exc:
            errors.append(f"fleet.stations[{i}].location: {exc}")
            continue
        for k in range(st.ambulances):
            crews.append(Crew(f"{st.id}-{k + 1}", st.id, st.location.pair))
    return crews


__all__ = ["Crew", "TimelineChange", "TrafficTimelineEvent", "World",
           "build_hospitals", "build_world", "core_nodes", "event_window", "load_map",
           "map_label", "saturation_policy", "traffic_change"]
