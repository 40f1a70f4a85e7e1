"""Live traffic overlay: closures, speeds, slowdowns and field reports over a fixed graph.

The graph never changes; the overlay keeps a list of *entries* (each with an id, a source and
a validity window) and materialises, per profile, the weight array valid at a given time.
A change recomputes only the edges it touches. :attr:`TrafficOverlay.version` counts the
changes to the entries (applied batches, removals): it is the ``weights_version`` responses
report, identical on every worker that applied the same changes; together with the time of
the query (entries start and expire by themselves) it names exactly which roads were open.

Inputs (each a small dataclass of :mod:`engine.changes`, whose names stay importable from
here; a batch is validated as a whole and applied all or nothing):

* :class:`SegmentSpeeds` — OSRM's segment-speed CSV (``from_osm_id,to_osm_id,speed_kmh``);
* :class:`WaySpeeds` — speeds by OSM way id;
* :class:`AreaFactor` — a speed factor inside a GeoJSON polygon, optionally for some classes;
* :class:`ClassFactor` — a speed factor on road classes;
* :class:`Closure` — GeoJSON Point + radius, LineString, Polygon, or explicit edge ids;
* :class:`FieldReport` — "blocked" / "slowed" at a point, snapped to the nearest road;
* :class:`OpenBarriers` — bollards the command centre can lower for emergency vehicles.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import itertools
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import shapely

from engine.changes import (
    LINE_BUFFER_M,
    MAX_SPEED_KMH,
    MAX_VALIDITY,
    MAX_VALIDITY_TEXT,
    AreaFactor,
    Change,
    ClassFactor,
    Closure,
    Entry,
    EntryKind,
    FieldReport,
    OpenBarriers,
    SegmentSpeeds,
    TrafficInputError,
    UnknownEntry,
    WaySpeeds,
    change_from_dict,
    change_to_dict,
    check_change,
    check_factor,
    class_codes,
    closure_from_feature,
    exact_integer,
    parse_segment_speed_csv,
    validate_geometry,
)
from engine.conditions import TurnConditions
from engine.errors import GyrophareError
from engine.extract import tags
from engine.graph import RoadGraph
from engine.profiles import (
    METRICS,
    PROFILES,
    Metric,
    ProfileOptions,
    TrafficState,
    TurnCosts,
    Weights,
    excluded_edges,
    normal_time,
    profile_weights,
    turn_costs,
)
from engine.snap import Snapper, validate_coordinate
from engine.timeutil import describe, to_utc, utcnow

#: format of :meth:`TrafficOverlay.snapshot`
OVERLAY_FORMAT = "gyrophare-overlay/1"
#: entries touching more edges than this are not put in the per-edge index (a class factor
#: may touch most of the graph); :meth:`TrafficOverlay._recompute` checks them one by one
_INDEX_MAX_EDGES = 256


class TrafficOverlay:
    """Live traffic over one :class:`RoadGraph`, per profile weight arrays on demand.

    Parameters
    ----------
    graph
        The road graph.
    snapper
        A :class:`~engine.snap.Snapper` to reuse (the router's); built if omitted.

    Notes
    -----
    Thread-safe. Weight arrays handed out are read-only snapshots: a change writes the
    touched edges into a recycled buffer no query still holds (see ``_rebuild_snapshot``), so
    a query running on a snapshot never sees a half-applied update.
    """

    _uids = itertools.count(1)

    def __init__(self, graph: RoadGraph, *, snapper: Snapper | None = None) -> None:
        #: unique per overlay in this process: its weight snapshots carry it
        #: (``Weights.source``), so caches keyed by overlay states tell overlays apart
        self.uid = next(TrafficOverlay._uids)
        self.graph = graph
        self.snapper = snapper or Snapper(graph)
        self._lock = threading.RLock()
        self._entries: dict[str, Entry] = {}
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._active: set[str] = set()
        #: what keeps a write's cost independent of the number of entries (see _advance and
        #: _recompute): every entry's start and expiry, sorted, as (time, seq, id); the
        #: time the active set was last evaluated at; entries by edge (small entries only)
        #: and the ids of the large ones
        self._bounds: list[tuple[datetime, int, str]] = []
        self._active_at: datetime | None = None
        self._by_edge: dict[int, list[str]] = {}
        self._large: set[str] = set()
        self._indexed = 0  #: entries in the indexes (a mismatch rebuilds them: _reindex)
        self._entry_json: dict[str, dict[str, Any]] = {}  #: snapshot form, cached per entry
        self._state = TrafficState.free_flow(graph.n_edges)
        self._snapshots: dict[tuple[str, str, ProfileOptions], Weights] = {}
        self._snappable: dict[tuple[str, ProfileOptions], np.ndarray] = {}
        #: roads of the highway classes a request excludes (``ProfileOptions.exclude``)
        self._excluded: dict[frozenset[str], np.ndarray] = {}
        self._segments: tuple[np.ndarray, ...] | None = None
        self._way_edges: dict[int, np.ndarray] | None = None
        self.version = 0  #: changes to the entries (public, deterministic across workers)
        self._state_version = 0  #: changes to the materialised arrays (internal cache key)
        #: per state change: (state, roads changed, turn arcs changed by time conditions)
        self._changes: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._turn_costs: dict[tuple[str, ProfileOptions], TurnCosts] = {}
        self.turns = graph.turn_graph()
        self._to_road = self.turns.to_road()
        #: time-conditional turn restrictions in force (one flag per condition)
        self._conditions = TurnConditions(self.turns, graph.meta.get("timezone"))

    # -------------------------------------------------------------- reading
    def entries(self, *, at: datetime | None = None, active_only: bool = False) -> list[Entry]:
        """Entries (all, or those active at ``at``), oldest first."""
        at = at or utcnow()
        with self._lock:
            out = sorted(self._entries.values(), key=lambda e: e.seq)
        return [e for e in out if e.active(at)] if active_only else out

    def get(self, entry_id: str) -> Entry:
        with self._lock:
            try:
                return self._entries[entry_id]
            except KeyError:
                raise UnknownEntry(f"no traffic entry with id {entry_id!r}") from None

    def weights(self, profile: str = "car", metric: Metric = "time", *,
                at: datetime | None = None,
                options: ProfileOptions | None = None) -> Weights:
        """The weights of ``profile`` valid at ``at`` (default now): expired entries stop
        counting by themselves, future ones start by themselves. ``options`` may close road
        classes for the request (``ProfileOptions(exclude=...)``): a snapshot of its own,
        cached and updated like the others."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}: expected one of {PROFILES}")
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: expected 'time' or 'distance'")
        options = options or ProfileOptions()
        at = to_utc(at)  # a sane time (1970..2200), or InvalidTimestamp
        with self._lock:
            self._advance(at)
            key = (profile, metric, options)
            snap = self._snapshots.get(key)
            if snap is None or snap.state != self._state_version:
                snap = self._rebuild_snapshot(key, snap)
                self._snapshots[key] = snap
            elif snap.version != self.version:  # entries changed, arrays did not
                snap = dataclasses.replace(snap, version=self.version)
                self._snapshots[key] = snap
            return snap

    @property
    def state_version(self) -> int:
        """Counter of changes to the materialised arrays (entries applied, removed, started
        or expired); :attr:`Weights.state` carries it."""
        return self._state_version

    def changed_edges_since(self, version: int) -> np.ndarray | None:
        """Road edges whose weights changed after state ``version`` (see
        :attr:`state_version`), or ``None`` when that history is no longer kept."""
        got = self._changed_since(version)
        return None if got is None else got[0]

    def changed_arcs_since(self, version: int) -> np.ndarray | None:
        """Turn arcs whose weights changed after state ``version``: those entering a changed
        road and those a time-conditional restriction opened or closed (for partial
        re-customization), or ``None`` when that history is no longer kept."""
        got = self._changed_since(version)
        if got is None:
            return None
        roads, arcs = got
        return np.unique(np.concatenate([self.turns.arcs_into(roads), arcs]))

    def _changed_since(self, version: int) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            empty = np.zeros(0, dtype=np.int64)
            if version == self._state_version:
                return empty, empty
            if not self._changes or self._changes[0][0] > version + 1:
                return None  # that far back is no longer kept
            roads = [r for v, r, _ in self._changes if v > version]
            arcs = [a for v, _, a in self._changes if v > version]
            return (np.unique(np.concatenate(roads)) if roads else empty,
                    np.unique(np.concatenate(arcs)) if arcs else empty)

    def turn_costs(self, profile: str, options: ProfileOptions | None = None) -> TurnCosts:
        """The static turn costs of ``profile`` (computed once per profile and options)."""
        options = options or ProfileOptions()
        with self._lock:
            key = (profile, options)
            tc = self._turn_costs.get(key)
            if tc is None:
                tc = self._turn_costs[key] = turn_costs(self.graph, profile, options)
            return tc

    # -------------------------------------------------------------- writing
    def apply(self, changes: Change | Iterable[Change], *, at: datetime | None = None
              ) -> list[str]:
        """Validate and apply a batch of changes, all or nothing. Returns the entry ids.

        Raises
        ------
        TrafficInputError
            Every problem in the batch (unknown OSM ids, malformed geometry, speeds outside
            (0, 250] km/h, windows ending before they start, duplicate ids...).
        """
        at = to_utc(at)
        with self._lock:
            built = self._prepare(changes, at)
            for entry in built:
                self._add(entry)
            self._advance(at, bump=True, candidates=[e.id for e in built])
        return [e.id for e in built]

    def validate(self, changes: Change | Iterable[Change], *, at: datetime | None = None
                 ) -> None:
        """Raise :class:`TrafficInputError` exactly as :meth:`apply` would; change nothing."""
        with self._lock:
            self._prepare(changes, to_utc(at))

    def _prepare(self, changes: Change | Iterable[Change], at: datetime) -> list[Entry]:
        if isinstance(changes, Change):
            changes = [changes]
        changes = list(changes)
        errors: list[str] = []
        built: list[Entry] = []
        seen: set[str] = set()
        for i, change in enumerate(changes):
            where = f"change {i} ({type(change).__name__})"
            if not isinstance(change, Change):
                errors.append(f"change {i}: not a traffic change ({type(change).__name__})")
                continue
            try:
                entry = self._build(change, at=at)
            except TrafficInputError as exc:
                errors.extend(f"{where}: {e}" for e in exc.errors)
                continue
            if entry.id in self._entries or entry.id in seen:
                errors.append(f"{where}: an entry with id {entry.id!r} already exists")
                continue
            seen.add(entry.id)
            built.append(entry)
        if not changes:
            errors.append("empty batch")
        if errors:
            raise TrafficInputError(errors)
        return built

    def remove(self, entry_ids: str | Iterable[str], *, at: datetime | None = None) -> None:
        """Remove entries (e.g. a closure lifted). Unknown ids raise, nothing is removed."""
        ids = [entry_ids] if isinstance(entry_ids, str) else list(entry_ids)
        with self._lock:
            missing = [i for i in ids if i not in self._entries]
            if missing:
                raise UnknownEntry(f"no traffic entry with id {', '.join(map(repr, missing))}")
            edges = [self._discard(i).edges for i in ids]
            self._advance(to_utc(at), extra_edges=edges, bump=True, candidates=ids)

    def clear(self, *, at: datetime | None = None) -> None:
        """Remove every entry."""
        with self._lock:
            self.remove(list(self._entries), at=at)

    # -------------------------------------------------------------- snapshots
    def snapshot(self) -> dict[str, Any]:
        """The entries and counters, JSON-ready: what :meth:`restore` needs to rebuild an
        overlay equal to this one (same entries, ids, order, ``version``, hence the same
        weights at any time). Entries are in application order; their edges and values are
        base64 little-endian arrays. Each entry's form is computed once and cached, so the
        lock is held for a copy of references, not for the serialisation of every entry.
        The dicts returned are shared with the cache: do not modify them."""
        with self._lock:
            cache = self._entry_json
            entries = []
            for entry in self._entries.values():
                form = cache.get(entry.id)
                if form is None:
                    form = cache[entry.id] = _entry_to_json(entry)
                entries.append(form)
            return {"format": OVERLAY_FORMAT, "graph_edges": self.graph.n_edges,
                    "version": self.version, "next_id": _next_of(self._ids),
                    "entries": entries}

    def restore(self, data: Mapping[str, Any], *, at: datetime | None = None) -> None:
        """Replace every entry, ``version`` and the counters by those of a :meth:`snapshot`
        (of an overlay on the same graph). Weight snapshots and customized metrics taken
        before are rebuilt in full on their next use.

        Raises
        ------
        ValueError
            Not a snapshot of this format, of a graph with another number of edges, or a
            malformed entry (nothing is changed then).
        """
        if not isinstance(data, Mapping) or data.get("format") != OVERLAY_FORMAT:
            raise ValueError(f"not a traffic overlay snapshot (expected format "
                             f"{OVERLAY_FORMAT!r})")
        if data.get("graph_edges") != self.graph.n_edges:
            raise ValueError(f"the traffic snapshot is of a graph with {data.get('graph_edges')}"
                             f" edges, this one has {self.graph.n_edges}")
        try:
            entries = [_entry_from_json(d, self.graph.n_edges) for d in data["entries"]]
            version, next_id = int(data["version"]), int(data.get("next_id", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed traffic overlay snapshot: {exc}") from exc
        with self._lock:
            old = [e.edges for e in self._entries.values()]
            self._entries, self._bounds, self._by_edge = {}, [], {}
            self._large, self._entry_json, self._active = set(), {}, set()
            self._active_at, self._indexed = None, 0
            for entry in sorted(entries, key=lambda e: e.seq):
                self._add(entry)
            self.version = version
            self._seq = itertools.count(max((e.seq for e in entries), default=0) + 1)
            self._ids = itertools.count(next_id)
            self._advance(at or utcnow(), extra_edges=old)
            # the change history no longer describes what changed: full rebuilds next time
            self._changes.clear()
            self._state_version += 1

    # -------------------------------------------------------------- internals
    def _add(self, entry: Entry) -> None:
        """Store an entry and index it (its bounds, its edges)."""
        self._entries[entry.id] = entry
        self._indexed += 1
        for when in (entry.starts_at, entry.expires_at):
            if when is not None:
                bisect.insort(self._bounds, (when, entry.seq, entry.id))
        if len(entry.edges) > _INDEX_MAX_EDGES:
            self._large.add(entry.id)
        else:
            for e in entry.edges.tolist():
                self._by_edge.setdefault(e, []).append(entry.id)

    def _discard(self, entry_id: str) -> Entry:
        """Remove an entry and its index records; return it."""
        entry = self._entries.pop(entry_id)
        self._indexed -= 1
        self._entry_json.pop(entry_id, None)
        for when in (entry.starts_at, entry.expires_at):
            if when is not None:
                i = bisect.bisect_left(self._bounds, (when, entry.seq, entry.id))
                if i < len(self._bounds) and self._bounds[i] == (when, entry.seq, entry.id):
                    del self._bounds[i]
        if entry_id in self._large:
            self._large.discard(entry_id)
        else:
            for e in entry.edges.tolist():
                ids = self._by_edge.get(e)
                if ids is not None:
                    if entry_id in ids:
                        ids.remove(entry_id)
                    if not ids:
                        del self._by_edge[e]
        return entry

    def _reindex(self) -> None:
        """Rebuild the indexes from ``_entries`` (which someone filled directly) and
        re-evaluate every entry's activity on the next :meth:`_advance`."""
        entries = list(self._entries.values())
        self._entries, self._bounds, self._by_edge, self._large = {}, [], {}, set()
        self._indexed, self._active_at = 0, None
        for entry in entries:
            self._add(entry)

    def _advance(self, at: datetime, *, extra_edges: Sequence[np.ndarray] = (),
                 bump: bool = False, candidates: Iterable[str] = ()) -> None:
        """Bring the materialised state to the entries active at ``at``, recomputing only the
        edges of entries whose activity changed (and ``extra_edges``: removed entries).

        Only entries that may have changed are looked at: ``candidates`` (just added or
        removed) and those with a start or expiry between the time of the previous call and
        ``at`` (the active set is constant between two consecutive bounds), so a call costs
        O(log entries) plus the entries that changed, not O(entries)."""
        if self._indexed != len(self._entries):
            self._reindex()
        look = set(candidates)
        if self._active_at is None:
            look.update(self._entries)
            look.update(self._active)
        elif at != self._active_at:
            lo, hi = sorted((self._active_at, at))
            i = bisect.bisect_right(self._bounds, lo, key=lambda b: b[0])
            j = bisect.bisect_right(self._bounds, hi, key=lambda b: b[0])
            look.update(b[2] for b in self._bounds[i:j])
        self._active_at = at
        changed = []
        for entry_id in look:
            entry = self._entries.get(entry_id)
            now = entry is not None and entry.active(at)
            if now != (entry_id in self._active):
                changed.append(entry_id)
                if now:
                    self._active.add(entry_id)
                else:
                    self._active.discard(entry_id)
        touched = [self._entries[i].edges for i in changed if i in self._entries]
        touched += list(extra_edges)
        edges = np.unique(np.concatenate(touched)) if touched else np.zeros(0, np.int64)
        if len(edges):
            self._recompute(edges)
        arcs = self._conditions.advance(at)
        if bump:
            self.version += 1
        if len(edges) or len(arcs):
            self._state_version += 1
            self._changes.append((self._state_version, edges, arcs))
            del self._changes[:-256]

    def _recompute(self, edges: np.ndarray) -> None:
        """Closures / speeds / factors / openings of ``edges`` from the active entries."""
        st = self._state
        closed = np.zeros(len(edges), dtype=bool)
        speed = np.full(len(edges), np.nan)
        factor = np.ones(len(edges))
        opened = np.zeros(len(edges), dtype=bool)
        # only the active entries that touch these edges: from the per-edge index, plus the
        # large entries (not indexed), so the cost follows the edges, not the entry count
        near = set(self._large)
        by_edge = self._by_edge
        for e in edges.tolist():
            ids = by_edge.get(e)
            if ids:
                near.update(ids)
        actives = sorted((self._entries[i] for i in near if i in self._active),
                         key=lambda e: (e.starts_at, e.seq))
        for entry in actives:  # later entries override earlier speeds
            hit = np.isin(edges, entry.edges, assume_unique=False)
            if not hit.any():
                continue
            if entry.kind == "closure":
                closed |= hit
            elif entry.kind == "open":
                opened |= hit
            elif entry.kind == "factor":
                pos = np.searchsorted(entry.edges, edges[hit])
                factor[hit] *= entry.values[pos]
            else:
                pos = np.searchsorted(entry.edges, edges[hit])
                speed[hit] = entry.values[pos]
        # in place: the state is read only under the overlay's lock, to build snapshots (which
        # own their arrays), so no reader can see it half-written
        st.closed[edges], st.speed_kmh[edges] = closed, speed
        st.factor[edges], st.opened[edges] = factor, opened

    def _rebuild_snapshot(self, key: tuple[str, Metric, ProfileOptions],
                          old: Weights | None) -> Weights:
        """The snapshot of ``key`` at the current state, written into a recycled buffer.

        Copying the previous snapshot's arrays (a road array per metric and the turn arcs:
        30 MB on New York) cost ~4 ms per profile and update. Instead each key keeps a few
        buffers (:class:`_SnapshotBuffer`); a buffer nobody holds any more (no snapshot, no
        metric, no array or view taken from them) is brought to the current state by
        recomputing only the roads and arcs changed since the state it holds."""
        profile, metric, options = key
        g = self.graph
        # excluded classes close roads, not turns: the turn costs stay the profile's
        tc = self.turn_costs(profile, dataclasses.replace(options, exclude=frozenset())
                             if options.exclude else options)
        turn = self._conditions.apply(tc, metric)
        closed = self._excluded_mask(options.exclude)

        def weigh(idx: np.ndarray, of: Metric) -> np.ndarray:
            w = profile_weights(profile, g, idx, self._state, metric=of, options=options)
            if closed is not None:
                w[closed[idx]] = np.inf
            return w

        pools = self.__dict__.setdefault("_snapshot_buffers", {})
        buf, changed = _SnapshotBuffer.take(pools.setdefault(key, []), g.n_edges,
                                            len(self._to_road), metric != "time",
                                            self._changed_since)
        try:
            if changed is None:  # unrelated content: everything
                idx = np.arange(g.n_edges)
                buf.values[:] = weigh(idx, metric)
                buf.normal[:] = normal_time(g, idx, self._state)
                if buf.time is not None:
                    buf.time[:] = weigh(idx, "time")
                np.add(turn, buf.values[self._to_road], out=buf.arc)
            else:
                roads, cond_arcs = changed
                if len(roads):
                    buf.values[roads] = weigh(roads, metric)
                    buf.normal[roads] = normal_time(g, roads, self._state)
                    if buf.time is not None:
                        buf.time[roads] = weigh(roads, "time")
                arcs = np.unique(np.concatenate([self.turns.arcs_into(roads), cond_arcs]))
                buf.arc[arcs] = turn[arcs] + buf.values[self._to_road[arcs]]
        except BaseException:
            buf.refs, buf.state = (), None  # content unknown: recomputed in full next time
            raise
        values, normal, time, arc = buf.publish(self._state_version)
        time = values if time is None else time
        snappable = self._snappable.get((profile, options))
        if snappable is None:
            free = TrafficState.free_flow(g.n_edges)
            snappable = np.isfinite(profile_weights(profile, g, np.arange(g.n_edges), free,
                                                    metric="distance", options=options))
            if closed is not None:
                snappable &= ~closed
            snappable.flags.writeable = False
            self._snappable[(profile, options)] = snappable
        return Weights.build(values, profile=profile, metric=metric, version=self.version,
                             state=self._state_version, normal_time=normal, time=time,
                             snappable=snappable, options=options, turns=tc, turn=turn,
                             arc=arc, to_road=self._to_road, source=self.uid)

    def _excluded_mask(self, exclude: frozenset[str]) -> np.ndarray | None:
        """The roads ``exclude`` closes (cached per class set), ``None`` for none."""
        if not exclude:
            return None
        mask = self._excluded.get(exclude)
        if mask is None:
            mask = self._excluded[exclude] = excluded_edges(self.graph, exclude)
            mask.flags.writeable = False
        return mask

    # -------------------------------------------------------------- building entries
    def _build(self, change: Change, *, at: datetime) -> Entry:
        errors = check_change(change)
        for name, value in (("starts_at", change.starts_at), ("expires_at", change.expires_at)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                errors.append(f"{name} must be a timezone-aware datetime, got {value!r}")
            elif value is not None:
                try:
                    to_utc(value, what=name)
                except GyrophareError as exc:
                    errors.append(str(exc))
        if errors:
            raise TrafficInputError(errors)
        starts = change.starts_at or at
        expires = change.expires_at
        if expires is not None and expires <= starts and change.starts_at is not None:
            raise TrafficInputError([f"validity window ends ({expires.isoformat()}) "
                                     f"before it starts ({starts.isoformat()})"])
        if expires is not None and expires <= at:
            raise TrafficInputError([f"expires_at {expires.isoformat()} is already past (the "
                                     f"change is applied at {at.isoformat()}): it would change"
                                     " nothing"])
        if starts - at > MAX_VALIDITY:
            raise TrafficInputError([f"starts_at {starts.isoformat()} is more than "
                                     f"{MAX_VALIDITY_TEXT} ahead: is the year right?"])
        if expires is not None and expires - starts > MAX_VALIDITY:
            raise TrafficInputError([f"expires_at {expires.isoformat()} is more than "
                                     f"{MAX_VALIDITY_TEXT} after the change starts "
                                     f"({starts.isoformat()}): is the year right? An entry "
                                     "that holds until it is removed gives no expires_at"])
        kind, edges, values, geometry = self._resolve(change)
        if len(edges) == 0:
            raise TrafficInputError(["it touches no road of the network"
                                     + self._swap_hint(change)])
        order = np.argsort(edges, kind="stable")
        edges, values = edges[order], values[order]
        entry_id = change.id or f"{kind}-{next(self._ids)}"
        return Entry(id=str(entry_id), kind=kind, source=change.source, starts_at=starts,
                     expires_at=change.expires_at, edges=edges, values=values,
                     seq=next(self._seq), note=change.note, geometry=geometry,
                     change=type(change).__name__)

    def _swap_hint(self, change: Change) -> str:
        """``"; did you swap ..."`` when ``change``'s geometry, with longitude and latitude
        swapped, would touch roads (a geometry written [lat, lon]); else ``""``."""
        geometry = getattr(change, "geometry", None)
        if not isinstance(geometry, Mapping) or "coordinates" not in geometry:
            return ""

        def swap(c: Any) -> Any:
            if isinstance(c, list | tuple) and len(c) in (2, 3) and all(
                    isinstance(v, int | float) for v in c):
                return [c[1], c[0], *c[2:]]
            return [swap(x) for x in c] if isinstance(c, list | tuple) else c

        swapped = dataclasses.replace(change, geometry={  # type: ignore[call-arg]
            **geometry, "coordinates": swap(geometry["coordinates"])})
        try:
            edges = self._resolve(swapped)[1]
        except GyrophareError:
            return ""
        return ("; did you swap latitude and longitude? GeoJSON order is [lon, lat], and "
                f"swapped it would touch {len(edges)} road pieces") if len(edges) else ""

    def _resolve(self, change: Change) -> tuple[EntryKind, np.ndarray, np.ndarray, Any]:
        g = self.graph
        if isinstance(change, SegmentSpeeds):
            return ("speed", *self._segment_speeds(change.speeds), None)
        if isinstance(change, WaySpeeds):
            return ("speed", *self._way_speeds(change.speeds), None)
        if isinstance(change, ClassFactor):
            check_factor(change.factor)
            mask = np.isin(g.highway, class_codes(change.classes))
            edges = np.flatnonzero(mask)
            return "factor", edges, np.full(len(edges), float(change.factor)), None
        if isinstance(change, AreaFactor):
            check_factor(change.factor)
            geom = validate_geometry(change.geometry, ("Polygon", "MultiPolygon"))
            edges = self._edges_touching(geom)
            if change.classes:
                edges = edges[np.isin(g.highway[edges], class_codes(change.classes))]
            return "factor", edges, np.full(len(edges), float(change.factor)), \
                dict(change.geometry)
        if isinstance(change, Closure):
            if change.edges is not None:
                # JSON has one number type: 150.0 is the edge id 150, as check_change reads it
                ids = ([exact_integer(e) for e in change.edges]
                       if isinstance(change.edges, list | tuple) else None)
                if ids is None or any(i is None for i in ids):
                    raise TrafficInputError(["edges must be a list of integer edge ids"])
                edges = np.asarray(ids, dtype=np.int64)
                bad = edges[(edges < 0) | (edges >= g.n_edges)]
                if len(bad):
                    raise TrafficInputError([f"unknown edge ids {bad[:5].tolist()} (the graph "
                                             f"has {g.n_edges} edges)"])
                return "closure", edges.astype(np.int64), np.zeros(len(edges)), None
            geom = validate_geometry(change.geometry, ("Point", "LineString", "MultiLineString",
                                               "Polygon", "MultiPolygon"))
            if geom.geom_type == "Point":
                edges = self._edges_touching(geom, buffer_m=change.radius)
            elif "LineString" in geom.geom_type:
                edges = self._edges_along(geom)
            else:
                edges = self._edges_touching(geom)
            return "closure", edges, np.zeros(len(edges)), dict(change.geometry or {})
        if isinstance(change, FieldReport):
            try:
                lat, lon = validate_coordinate(change.lat, change.lon, what="report location")
            except ValueError as exc:
                raise TrafficInputError([str(exc)]) from None
            if change.kind not in ("blocked", "slowed"):
                raise TrafficInputError([f"kind must be 'blocked' or 'slowed', got "
                                         f"{change.kind!r}"])
            try:
                snap = self.snapper.snap(lat, lon, radius_m=100.0, what="report location")
            except GyrophareError as exc:
                raise TrafficInputError([str(exc)]) from None
            edges = np.array([e for e in (snap.edge, snap.twin) if e >= 0], dtype=np.int64)
            geometry = {"type": "Point", "coordinates": [snap.lon, snap.lat]}
            if change.kind == "blocked":
                return "closure", edges, np.zeros(len(edges)), geometry
            check_factor(change.factor)
            return "factor", edges, np.full(len(edges), float(change.factor)), geometry
        if isinstance(change, OpenBarriers):
            try:
                lat, lon = validate_coordinate(change.lat, change.lon, what="barrier location")
            except ValueError as exc:
                raise TrafficInputError([str(exc)]) from None
            point = shapely.Point(lon, lat)
            edges = self._edges_touching(point, buffer_m=change.radius_m)
            edges = edges[(g.flags[edges] & np.uint32(tags.F_BARRIER)) != 0]
            if len(edges) == 0:
                raise TrafficInputError([f"no barrier within {change.radius_m:.0f} m of "
                                         f"({lat:.6f}, {lon:.6f})"])
            return "open", edges, np.zeros(len(edges)), \
                {"type": "Point", "coordinates": [lon, lat]}
        raise TrafficInputError([f"unsupported change type {type(change).__name__}"])

    def _segment_speeds(self, speeds: Sequence[tuple[int, int, float]]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Per edge, the speed that gives the edge's new time: reported segments at their
        speed, the rest of the edge at free flow (OSRM applies speeds per segment too).
        Vectorised: a 1,000-line CSV costs well under a millisecond."""
        g = self.graph
        try:
            rows = np.asarray(speeds, dtype=np.float64).reshape(-1, 3)
        except (TypeError, ValueError):
            raise TrafficInputError(["segment speeds must be (from_osm_id, to_osm_id, "
                                     "speed_kmh) triples of numbers"]) from None
        a, b, v = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2]
        valid = (v > 0) & (v <= MAX_SPEED_KMH)
        errors = [f"segment {k} ({a[k]}->{b[k]}): speed {v[k]} km/h is outside "
                  f"(0, {MAX_SPEED_KMH:.0f}]" for k in np.flatnonzero(~valid)]
        ids, keys, seg_edge, seg_share = self._segment_index()
        ia = np.minimum(np.searchsorted(ids, a), len(ids) - 1)
        ib = np.minimum(np.searchsorted(ids, b), len(ids) - 1)
        known_a, known_b = ids[ia] == a, ids[ib] == b
        key = ia * len(ids) + ib
        lo, hi = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
        found = known_a & known_b & (hi > lo)
        for k in np.flatnonzero(~found & valid):
            unknown = [str(x) for x, ok in ((a[k], known_a[k]), (b[k], known_b[k])) if not ok]
            what = (f"unknown OSM node id {', '.join(unknown)}" if unknown
                    else "these OSM nodes are not consecutive on a road in this direction")
            errors.append(f"segment {k} ({a[k]}->{b[k]}): {what}")
        if errors:
            raise TrafficInputError(errors)
        count = hi - lo
        pos = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        edge, share, speed = seg_edge[pos], seg_share[pos], np.repeat(v, count)
        edges, inv = np.unique(edge, return_inverse=True)
        covered = np.bincount(inv, weights=share, minlength=len(edges))
        seg_time = np.bincount(inv, weights=share * g.length_m[edge] / (speed / 3.6),
                               minlength=len(edges))
        t = g.time_s[edges] * np.maximum(0.0, 1.0 - covered) + seg_time
        values = np.where(t > 0, g.length_m[edges] / np.where(t > 0, t, 1.0) * 3.6,
                          MAX_SPEED_KMH)
        return edges.astype(np.int64), values

    def _segment_index(self) -> tuple[np.ndarray, ...]:
        """Sorted OSM ids, and the consecutive (from, to) pairs of every edge's geometry as
        sorted keys with their edge and share of the edge's length; built once."""
        if self._segments is None:
            from engine.graph import haversine_m

            g = self.graph
            gp = g.geom_point
            lat, lon = g.point_lat[gp], g.point_lon[gp]
            seg = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
            edge_of = np.repeat(np.arange(g.n_edges), np.diff(g.geom_offset))
            osm = g.point_osm_id[gp]
            ok = np.flatnonzero((edge_of[:-1] == edge_of[1:]) & (osm[:-1] >= 0)
                                & (osm[1:] >= 0) & (osm[:-1] != osm[1:]))
            ids = np.unique(g.point_osm_id[g.point_osm_id >= 0])
            if len(ids) == 0:
                ids = np.array([-1], dtype=np.int64)
            keys = np.searchsorted(ids, osm[ok]) * len(ids) + np.searchsorted(ids, osm[ok + 1])
            order = np.argsort(keys, kind="stable")
            e = edge_of[ok][order]
            length = g.length_m[e]
            share = np.where(length > 0, seg[ok][order] / np.where(length > 0, length, 1), 0.0)
            self._segments = (ids, keys[order], e, share)
        return self._segments

    def _way_speeds(self, speeds: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
        g = self.graph
        if self._way_edges is None:
            order = np.argsort(g.way_id, kind="stable")
            ways, starts = np.unique(g.way_id[order], return_index=True)
            bounds = np.append(starts, len(order))
            self._way_edges = {int(w): order[bounds[i]:bounds[i + 1]]
                               for i, w in enumerate(ways) if w > 0}
        errors, parts, vals = [], [], []
        for way, v in speeds.items():
            try:
                way_i, speed = int(way), float(v)
            except (TypeError, ValueError):
                errors.append(f"way {way}: the speed must be a number of km/h, got "
                              f"{describe(v)}")
                continue
            if way_i not in self._way_edges:
                errors.append(f"way {way_i}: unknown OSM way id")
                continue
            if not (0 < speed <= MAX_SPEED_KMH) or not math.isfinite(speed):
                errors.append(f"way {way_i}: speed {speed} km/h is outside (0, 250]")
                continue
            parts.append(self._way_edges[way_i])
            vals.append(np.full(len(self._way_edges[way_i]), speed))
        if errors:
            raise TrafficInputError(errors)
        if not parts:
            raise TrafficInputError(["no way speeds given"])
        return np.concatenate(parts).astype(np.int64), np.concatenate(vals)

    def _project(self, geom: shapely.Geometry) -> shapely.Geometry:
        s = self.snapper
        return shapely.transform(geom, lambda xy: np.stack(
            [(xy[:, 0] - s._lon0) * s._kx, (xy[:, 1] - s._lat0) * s._ky], axis=1))

    def _with_twins(self, edges: np.ndarray) -> np.ndarray:
        twins = self.graph.twin[edges]
        return np.unique(np.concatenate([edges, twins[twins >= 0]])).astype(np.int64)

    def _edges_touching(self, geom: shapely.Geometry, *, buffer_m: float = 0.0) -> np.ndarray:
        projected = self._project(geom)
        if buffer_m > 0:
            segs = self.snapper.tree.query(projected, predicate="dwithin", distance=buffer_m)
        else:
            segs = self.snapper.tree.query(projected, predicate="intersects")
        return self._with_twins(np.unique(self.snapper.seg_edge[segs]))

    def _edges_along(self, line: shapely.Geometry) -> np.ndarray:
        """Roads running along a line (not merely crossing it): segments whose midpoint lies
        within :data:`LINE_BUFFER_M` of it."""
        projected = self._project(line)
        s = self.snapper
        segs = s.tree.query(projected, predicate="dwithin", distance=LINE_BUFFER_M)
        if len(segs):
            mid = shapely.points((s.ax[segs] + s.bx[segs]) / 2, (s.ay[segs] + s.by[segs]) / 2)
            segs = segs[shapely.distance(mid, projected) <= LINE_BUFFER_M]
        return self._with_twins(np.unique(s.seg_edge[segs]))


def _next_of(counter: itertools.count) -> int:
    """The value ``next(counter)`` would return, without taking it."""
    return int(repr(counter)[len("count("):-1])


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _entry_to_json(entry: Entry) -> dict[str, Any]:
    return {"id": entry.id, "kind": entry.kind, "source": entry.source,
            "starts_at": entry.starts_at.isoformat(),
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
            "edges": _b64(entry.edges, "<i8"), "values": _b64(entry.values, "<f8"),
            "seq": entry.seq, "note": entry.note,
            "geometry": None if entry.geometry is None else dict(entry.geometry),
            "change": entry.change}


def _entry_from_json(data: Mapping[str, Any], n_edges: int) -> Entry:
    edges = np.frombuffer(base64.b64decode(data["edges"]), dtype="<i8").astype(np.int64)
    values = np.frombuffer(base64.b64decode(data["values"]), dtype="<f8").astype(np.float64)
    if len(edges) != len(values) or (len(edges) and (edges.min() < 0 or edges.max() >= n_edges)):
        raise ValueError(f"entry {data.get('id')!r}: edges and values do not fit the graph")
    if data["kind"] not in ("speed", "factor", "closure", "open"):
        raise ValueError(f"entry {data.get('id')!r}: unknown kind {data['kind']!r}")
    times = []
    for name in ("starts_at", "expires_at"):
        value = data[name]
        when = None if value is None else datetime.fromisoformat(value)
        if when is not None and when.tzinfo is None:
            raise ValueError(f"entry {data.get('id')!r}: {name} without a time zone")
        times.append(when)
    if times[0] is None:
        raise ValueError(f"entry {data.get('id')!r}: starts_at missing")
    return Entry(id=str(data["id"]), kind=data["kind"], source=str(data["source"]),
                 starts_at=times[0], expires_at=times[1], edges=edges, values=values,
                 seq=int(data["seq"]), note=str(data.get("note", "")),
                 geometry=data.get("geometry"), change=str(data.get("change", "")))


class _SnapshotBuffer:
    """The private arrays behind one key's weight snapshots (road values, normal times,
    times when the metric is not time, turn arcs) and the overlay state they hold.

    Snapshots get read-only views (``np.frombuffer`` over read-only memoryviews: every
    further view of a snapshot array keeps that array alive); the buffer is free again once
    all of them are dead (weak references), so a snapshot or a metric still in use is never
    overwritten."""

    __slots__ = ("arc", "normal", "refs", "state", "time", "values")
    MAX_PER_KEY = 3

    def __init__(self, m: int, k: int, separate_time: bool) -> None:
        self.values = np.empty(m)
        self.normal = np.empty(m)
        self.time = np.empty(m) if separate_time else None
        self.arc = np.empty(k)
        self.state: int | None = None
        self.refs: tuple[Any, ...] = ()

    def free(self) -> bool:
        return all(r() is None for r in self.refs)

    @classmethod
    def take(cls, pool: list[_SnapshotBuffer], m: int, k: int, separate_time: bool,
             changed_since: Any) -> tuple[_SnapshotBuffer, Any]:
        """A free buffer of ``pool`` (or a new one) and the ``(roads, arcs)`` changed since
        the state it holds (``None``: recompute everything). Called under the overlay's
        lock."""
        free = [b for b in pool if b.free()]
        chosen, changed = None, None
        for b in sorted(free, key=lambda b: -1 if b.state is None else b.state, reverse=True):
            if b.state is not None:
                changed = changed_since(b.state)
                if changed is not None:
                    chosen = b
                    break
        if chosen is None:
            chosen = free[0] if free else cls(m, k, separate_time)
            if not free:
                pool.append(chosen)
        chosen.refs = (lambda: chosen,)  # busy until published
        for b in [b for b in pool if b.free()][cls.MAX_PER_KEY - 1:]:
            pool.remove(b)
        return chosen, changed

    def publish(self, state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                           np.ndarray]:
        import weakref

        # (a read-only memoryview: no one can flip a published array back to writeable)
        views = [None if a is None else np.frombuffer(
                     memoryview(a).toreadonly(), np.float64)  # type: ignore[arg-type]
                 for a in (self.values, self.normal, self.time, self.arc)]
        self.refs = tuple(weakref.ref(v) for v in views if v is not None)
        self.state = state
        return views[0], views[1], views[2], views[3]  # type: ignore[return-value]


__all__ = [
    "AreaFactor", "Change", "ClassFactor", "Closure", "Entry", "FieldReport", "OpenBarriers",
    "SegmentSpeeds", "TrafficInputError", "TrafficOverlay", "UnknownEntry", "WaySpeeds",
    "change_from_dict", "change_to_dict", "closure_from_feature", "parse_segment_speed_csv",
]
