"""A route's steps: where they start (the maneuvers of :mod:`engine.guidance`), what each
drives, the junctions each passes.

Every guidance answer about a turn, the maneuver :func:`engine.guidance.decide` gives and
the :class:`~engine.results.Intersection` :func:`engine.guidance.intersection` lists, is a
pure function of the road pair ``(e_in, f)`` and of the graph, which never changes once
built (live traffic changes times, never guidance). So each graph gets a road-level
:class:`TurnTable`, one slot per pair of roads meeting at a junction
(``turn_base[e_in] + f - first_out[head[e_in]]``), filled on first use by the per-pair
rules and then read for all of a route's junctions at once: :func:`build_steps`.
:func:`reference_steps` asks the rules for every junction instead: the slow twin
``tests/test_guidance_fast.py`` compares the table with.

Rings (roundabouts, rotaries) and barriers (zero-length edges splitting a junction) go
through :func:`junction_decisions`, a loop over the legs, as the rules describe them.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from engine.extract import tags
from engine.graph import RoadGraph
from engine.guidance import (
    OBVIOUS_MAX_DEV,
    Decision,
    View,
    choices,
    classes,
    decide,
    edge_tags,
    exits_passed,
    intersection,
    modifier,
    node_location,
    ring_of,
    turn_angle,
    view,
)
from engine.guidance_collapse import collapse
from engine.results import Intersection, Maneuver, Step

_TT = np.uint32(tags.F_TUNNEL | tags.F_TOLL)  # a change of these lists the junction
_AGAINST = np.uint32(tags.F_AGAINST_ONEWAY)
_UNKNOWN = -1


# ------------------------------------------------------------------------------ turn table
@dataclass(eq=False)
class TurnTable:
    """Guidance per road pair of one graph, filled on first use (read only once filled).

    ``code[s]``: the maneuver of slot ``s`` as an index in ``decisions`` (0: none, the
    driver drives on; -1: not asked yet); ``inter[s]``: the slot's intersection, an index in
    ``intersections`` (-1: not asked yet). Decisions and intersections are shared by every
    route that passes the junction: read them, never change them.
    """

    v: View
    turn_base: np.ndarray  # int64 per edge: the slot of its first leaving road
    code: np.ndarray  # int16 per slot
    inter: np.ndarray  # int32 per slot
    decisions: list[Decision | None]
    decision_code: dict[tuple[str, str | None], int]
    intersections: list[Intersection]
    special: np.ndarray  # per edge: on a ring or a barrier (junction_decisions' loop)
    many: np.ndarray  # per node: three roads or more (its intersection is listed)
    tt: np.ndarray  # per edge: its tunnel and toll flags
    #: intersections of road pairs split by a barrier (no slot), by pair
    far: dict[tuple[int, int], int] = field(default_factory=dict)
    #: ring steps by the legs from the road entering to the road leaving
    rings: dict[tuple[int, ...], dict[int, Decision]] = field(default_factory=dict)
    #: the heads of the steps the table decides, by slot
    heads: dict[Hashable, _Head] = field(default_factory=dict)
    #: held while an entry is added to ``decisions`` or ``intersections`` (the table is
    #: filled by whichever request meets a junction first, maybe in two threads at once)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def slot(self, e_in: int, f: int) -> int:
        """Slot of the pair, or -1 when ``f`` does not leave the head of ``e_in``."""
        g = self.v.g
        node = int(g.head[e_in])
        if node != int(g.tail[f]):
            return -1
        return int(self.turn_base[e_in]) + f - int(g.first_out[node])

    def _code_of(self, d: Decision | None) -> int:
        if d is None:
            return 0
        key = (d.type, d.modifier)
        c = self.decision_code.get(key)
        if c is None:
            with self.lock:  # requests in threads: an index per entry, never two
                c = self.decision_code.get(key)
                if c is None:
                    self.decisions.append(Decision(d.type, d.modifier))
                    c = self.decision_code[key] = len(self.decisions) - 1
        return c

    def decide(self, e_in: int, f: int) -> Decision | None:
        """:func:`engine.guidance.decide`, memoised."""
        s = self.slot(e_in, f)
        if s < 0:
            return decide(self.v, e_in, f)
        c = int(self.code[s])
        if c == _UNKNOWN:
            c = self._code_of(decide(self.v, e_in, f))
            self.code[s] = c
        return self.decisions[c]

    def ring_decisions(self, E: list[int], k: int, end: int, e_in: int
                       ) -> dict[int, Decision]:
        """:func:`ring_decisions`, memoised by the legs driven."""
        key = (e_in, *E[k:end + 1])
        hit = self.rings.get(key)
        if hit is None:
            hit = self.rings[key] = {
                j - k: d for j, d in ring_decisions(self.v, E, k, end, e_in).items()}
        return {k + j: d for j, d in hit.items()}

    def intersection(self, e_in: int, f: int) -> Intersection:
        """:func:`engine.guidance.intersection`, memoised."""
        s = self.slot(e_in, f)
        if s < 0:
            return intersection(self.v, e_in, f)
        return self.intersections[self._inter_id(s, e_in, f)]

    def _inter_id(self, s: int, e_in: int, f: int) -> int:
        i = int(self.inter[s])
        if i == _UNKNOWN:
            inter = intersection(self.v, e_in, f)
            with self.lock:
                self.intersections.append(inter)
                i = len(self.intersections) - 1
                self.inter[s] = i
        return i


_TABLES: weakref.WeakKeyDictionary[RoadGraph, TurnTable] = weakref.WeakKeyDictionary()


def turn_table(g: RoadGraph) -> TurnTable:
    """The turn table of ``g`` (empty at first, kept while the graph lives)."""
    t = _TABLES.get(g)
    if t is not None:
        return t
    v = view(g)
    degree = np.diff(g.first_out).astype(np.int64)
    per_edge = degree[g.head]
    turn_base = np.zeros(g.n_edges + 1, dtype=np.int64)
    np.cumsum(per_edge, out=turn_base[1:])
    n_slots = int(turn_base[-1])
    t = TurnTable(v, turn_base, np.full(n_slots, _UNKNOWN, dtype=np.int16),
                  np.full(n_slots, _UNKNOWN, dtype=np.int32), [None], {}, [],
                  v.ring | v.barrier, v.n_roads >= 3, g.flags & _TT)
    _TABLES[g] = t
    return t


# ------------------------------------------------------------------------------ decisions
DecideAt = Callable[[int, int], "Decision | None"]


def junction_decisions(v: View, E: Sequence[int], decide_at: DecideAt) -> dict[int, Decision]:
    """The maneuver starting a step at leg ``k`` (not at 0, the departure), for a route
    driving roads ``E``: rings as one entry and one exit step (:func:`ring_decisions`),
    barriers skipped, every other junction as ``decide_at(e_in, f)`` says."""
    n = len(E)
    decisions: dict[int, Decision] = {}
    k = 1
    if n and v.ring[E[0]]:  # a route starting on a ring: its exit is announced
        j = _run_end(v, E, 0)
        decisions.update(ring_decisions(v, E, 0, j, -1))
        k = j + 1
    while k < n:
        f = E[k]
        if v.barrier[f]:
            k += 1
            continue
        j0 = k - 1
        while j0 > 0 and v.barrier[E[j0]]:
            j0 -= 1
        e_in = E[j0]
        if v.ring[f] and not v.ring[e_in]:
            j = _run_end(v, E, k)
            decisions.update(ring_decisions(v, E, k, j, e_in))
            k = j + 1
            continue
        if v.ring[f]:  # along the ring
            k += 1
            continue
        d = decide_at(e_in, f)
        if d is not None:
            decisions[k] = d
        k += 1
    return decisions


def _run_end(v: View, E: Sequence[int], k: int) -> int:
    """The first leg after ``k`` that is neither on a ring nor a barrier (or ``len(E)``)."""
    j = k
    while j + 1 < len(E) and (v.ring[E[j + 1]] or v.barrier[E[j + 1]]):
        j += 1
    return j + 1


def ring_decisions(v: View, E: Sequence[int], k: int, end: int, e_in: int
                   ) -> dict[int, Decision]:
    """The steps of a ring driven from leg ``k`` (entered from road ``e_in``; -1: the route
    starts on it) to leg ``end - 1``, left by leg ``end`` (``end == len(E)``: the route ends
    on the ring)."""
    n = len(E)
    j = end - 1
    exit_leg = end if end < n else None
    if e_in < 0:  # only the exit is announced
        if exit_leg is None:
            return {}
        kind = ring_of(v, E[0])[0]
        if kind == "roundabout turn":
            return {end: Decision("turn", modifier(turn_angle(v, E[j], E[end])))}
        return {end: Decision("exit rotary" if kind == "rotary" else "exit roundabout",
                              modifier(turn_angle(v, E[j], E[end])),
                              exits_passed(v, E, 0, j) + 1)}
    f = E[k]
    kind, ring_name, _, _ = ring_of(v, f)
    if exit_leg is not None:
        count: int | None = exits_passed(v, E, k, j) + 1
        x = E[exit_leg]
        overall = ((float(v.leave[x]) - float(v.arrive[e_in]) + 180.0) % 360.0) - 180.0
        mod = modifier(0.0 if math.isnan(overall) else overall)
    else:
        count = None
        mod = modifier(turn_angle(v, e_in, f))
    if kind == "roundabout turn":  # announced as the turn it amounts to
        return {k: Decision("roundabout turn", mod, count,
                            name_edge=E[exit_leg] if exit_leg else f)}
    # OSRM: the modifier says how the ring is entered
    # (as OSRM, the step takes the name of the road it leaves the ring by; the ring's name
    # is the rotary_name)
    out = {k: Decision(kind, modifier(turn_angle(v, e_in, f)), count, ring_name=ring_name,
                       rotary=kind == "rotary",
                       name_edge=E[exit_leg] if exit_leg is not None else -1)}
    if exit_leg is not None:
        out[exit_leg] = Decision(f"exit {kind}", modifier(turn_angle(v, E[j], E[exit_leg])),
                                 count)
    return out


def listed_junctions(v: View, E: Sequence[int], decisions: dict[int, Decision]
                     ) -> list[tuple[int, int, int]]:
    """``(k, e_in, f)`` of every junction the steps list: where a step starts (``e_in``
    the last road before leg ``k`` that is no barrier) and every junction passed with
    three roads or more, or where a tunnel or a toll starts or ends."""
    g = v.g
    out = []
    for k in range(1, len(E)):
        if k in decisions:
            j0 = k - 1
            while j0 > 0 and v.barrier[E[j0]]:
                j0 -= 1
            out.append((k, E[j0], E[k]))
            continue
        e_prev, e = E[k - 1], E[k]
        if v.barrier[e] or v.barrier[e_prev]:
            continue
        if int(v.n_roads[int(g.tail[e])]) >= 3 or (g.flags[e] & _TT) != (g.flags[e_prev] & _TT):
            out.append((k, e_prev, e))
    return out


# ------------------------------------------------------------------------------ steps
def reference_steps(graph: RoadGraph, E: np.ndarray, leg_len: np.ndarray,
                    leg_time: np.ndarray, leg_turn: np.ndarray, coords: list[list[float]],
                    start: list[float], end: list[float], extra_turn_s: float = 0.0
                    ) -> tuple[list[Step], Step]:
    """:func:`build_steps` asking the per-pair rules of :mod:`engine.guidance` at every
    junction (the slow twin of the turn table)."""
    v = view(graph)
    E_list = [int(e) for e in E]
    decisions = junction_decisions(v, E_list, lambda e_in, f: decide(v, e_in, f))
    inters = {k: intersection(v, e_in, f)
              for k, e_in, f in listed_junctions(v, E_list, decisions)}
    return _steps(v, E_list, decisions, inters, leg_len, leg_time, leg_turn, coords, start,
                  end, extra_turn_s)


def build_steps(graph: RoadGraph, E: np.ndarray, leg_len: np.ndarray, leg_time: np.ndarray,
                leg_turn: np.ndarray, coords: list[list[float]], start: list[float],
                end: list[float], extra_turn_s: float = 0.0) -> tuple[list[Step], Step]:
    """Steps (the last one ``arrive``, returned apart) of a route driving edges ``E`` (its
    kept legs: length, road time and the time of the turn entering each), whose geometry
    is ``coords``, from ``start`` to ``end`` (``[lon, lat]``). ``extra_turn_s``: turn time
    of a dropped last leg, counted in the last step.

    The junctions are walked as :func:`junction_decisions` walks them, by a compiled kernel
    reading the graph's :class:`TurnTable`; the rules are asked only about what the table
    does not know yet, and about rings (memoised by the legs driven)."""
    t = turn_table(graph)
    v = t.v
    g = graph
    E = np.asarray(E, dtype=np.int64)
    n = len(E)
    E_list = E.tolist()
    if n < 2:
        return _steps(v, E_list, {}, {}, leg_len, leg_time, leg_turn, coords, start, end,
                      extra_turn_s)
    prev, asked, slots, codes, runs = _walk(E, v.ring, v.barrier, g.head, g.tail,
                                            g.first_out, t.turn_base, t.code)
    if (codes < 0).any():  # not asked yet (or a junction split by a barrier)
        for i in np.flatnonzero(codes < 0).tolist():
            k = int(asked[i])
            codes[i] = _decision_code(t, int(slots[i]), E_list[int(prev[k])], E_list[k])
    hit = np.flatnonzero(codes)
    dec = t.decisions
    decisions: dict[int, Decision] = {}
    for k, c in zip(asked[hit].tolist(), codes[hit].tolist(), strict=True):
        d = dec[c]  # code 0, the only None, is no hit
        assert d is not None
        decisions[k] = d
    for k, end_, p in runs.tolist():
        decisions.update(t.ring_decisions(E_list, k, end_, -1 if p < 0 else E_list[p]))
    is_start = np.zeros(n, dtype=np.bool_)
    if decisions:
        is_start[np.fromiter(decisions, dtype=np.int64, count=len(decisions))] = True
    ks, from_, at_slot, ids = _listed(E, is_start, prev, v.barrier, t.many, t.tt, g.head,
                                      g.tail, g.first_out, t.turn_base, t.inter)
    if (ids < 0).any():
        for i in np.flatnonzero(ids < 0).tolist():
            ids[i] = _intersection_id(t, int(at_slot[i]), E_list[int(from_[i])],
                                      E_list[int(ks[i])])
    all_inters = t.intersections
    inters = {k: all_inters[i] for k, i in zip(ks.tolist(), ids.tolist(), strict=True)}
    slot_of: dict[int, Hashable] = dict(zip(asked[hit].tolist(), slots[hit].tolist(),
                                            strict=True))
    if len(runs):  # ring steps: their head by slot and decision
        for k, s in zip(ks.tolist(), at_slot.tolist(), strict=True):
            if s >= 0 and k not in slot_of and k in decisions:
                slot_of[k] = (s, decisions[k])
    return _steps(v, E_list, decisions, inters, leg_len, leg_time, leg_turn, coords, start,
                  end, extra_turn_s, slot_of, t.heads)


@njit(cache=True, nogil=True)
def _slot(e_in: int, f: int, head: np.ndarray, tail: np.ndarray, first_out: np.ndarray,
          turn_base: np.ndarray) -> int:
    node = head[e_in]
    if node != tail[f]:
        return -1
    return turn_base[e_in] + f - first_out[node]


@njit(cache=True, nogil=True)
def _run_end_k(E: np.ndarray, ring: np.ndarray, barrier: np.ndarray, k: int) -> int:
    j = k
    while j + 1 < len(E) and (ring[E[j + 1]] or barrier[E[j + 1]]):
        j += 1
    return j + 1


@njit(cache=True, nogil=True)
def _walk(E: np.ndarray, ring: np.ndarray, barrier: np.ndarray, head: np.ndarray,
          tail: np.ndarray, first_out: np.ndarray, turn_base: np.ndarray, code: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`junction_decisions`' walk over the legs: ``prev[k]`` (the leg turned from at
    leg ``k``: the last before it that is no barrier, or 0), the legs ``asked`` about with
    their table slot (-1: none, a junction split by a barrier) and code (-1: unknown),
    and the ring runs ``(first ring leg, leg leaving, leg turned from or -1)``."""
    n = len(E)
    prev = np.zeros(n, dtype=np.int64)
    last = 0
    for k in range(1, n):
        prev[k] = last
        if not barrier[E[k]]:
            last = k
    asked = np.empty(n, dtype=np.int64)
    slots = np.empty(n, dtype=np.int64)
    codes = np.empty(n, dtype=np.int64)
    runs = np.empty((n, 3), dtype=np.int64)
    na = 0
    nr = 0
    k = 1
    if n and ring[E[0]]:
        j = _run_end_k(E, ring, barrier, 0)
        runs[nr, 0] = 0
        runs[nr, 1] = j
        runs[nr, 2] = -1
        nr += 1
        k = j + 1
    while k < n:
        f = E[k]
        if barrier[f]:
            k += 1
            continue
        p = prev[k]
        e_in = E[p]
        if ring[f] and not ring[e_in]:
            j = _run_end_k(E, ring, barrier, k)
            runs[nr, 0] = k
            runs[nr, 1] = j
            runs[nr, 2] = p
            nr += 1
            k = j + 1
            continue
        if ring[f]:
            k += 1
            continue
        s = _slot(e_in, f, head, tail, first_out, turn_base)
        asked[na] = k
        slots[na] = s
        codes[na] = code[s] if s >= 0 else -1
        na += 1
        k += 1
    return prev, asked[:na], slots[:na], codes[:na], runs[:nr]


@njit(cache=True, nogil=True)
def _listed(E: np.ndarray, is_start: np.ndarray, prev: np.ndarray, barrier: np.ndarray,
            many: np.ndarray, tt: np.ndarray, head: np.ndarray, tail: np.ndarray,
            first_out: np.ndarray, turn_base: np.ndarray, inter: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`listed_junctions` over the table: the legs ``ks`` whose junction the steps
    list, the leg turned from, the slot (-1: none) and the intersection id (-1: unknown)."""
    n = len(E)
    ks = np.empty(n, dtype=np.int64)
    from_ = np.empty(n, dtype=np.int64)
    slots = np.empty(n, dtype=np.int64)
    ids = np.empty(n, dtype=np.int64)
    m = 0
    for k in range(1, n):
        e = E[k]
        e_prev = E[k - 1]
        if is_start[k]:
            p = prev[k]
        elif barrier[e] or barrier[e_prev]:
            continue
        elif many[tail[e]] or tt[e] != tt[e_prev]:
            p = k - 1
        else:
            continue
        s = _slot(E[p], e, head, tail, first_out, turn_base)
        ks[m] = k
        from_[m] = p
        slots[m] = s
        ids[m] = inter[s] if s >= 0 else -1
        m += 1
    return ks[:m], from_[:m], slots[:m], ids[:m]


def _decision_code(t: TurnTable, slot: int, e_in: int, f: int) -> int:
    c = t._code_of(decide(t.v, e_in, f))
    if slot >= 0:
        t.code[slot] = c
    return c


def _intersection_id(t: TurnTable, slot: int, e_in: int, f: int) -> int:
    if slot >= 0:
        return t._inter_id(slot, e_in, f)
    key = (e_in, f)
    i = t.far.get(key)
    if i is None:
        inter = intersection(t.v, e_in, f)
        with t.lock:
            t.intersections.append(inter)
            i = t.far[key] = len(t.intersections) - 1
    return i


#: what a step starting at a junction takes from it alone: name, maneuver, ref,
#: destinations, exits, rotary name, pronunciation, mode (shared: read only)
_Head = tuple[str, Maneuver, str, str, str, str, str, str]


def _steps(v: View, E: list[int], decisions: dict[int, Decision],
           inters: dict[int, Intersection], leg_len: np.ndarray, leg_time: np.ndarray,
           leg_turn: np.ndarray, coords: list[list[float]], start: list[float],
           end: list[float], extra_turn_s: float, key_of: dict[int, Hashable] | None = None,
           heads: dict[Hashable, _Head] | None = None) -> tuple[list[Step], Step]:
    """The steps from where they start (``decisions``) and the junctions they list
    (``inters``, by leg). ``key_of``: the key of a step's head in ``heads`` (its slot, with
    its decision unless the table decided it), for those steps starting where two roads
    meet."""
    n = len(E)
    starts = [0, *sorted(decisions)]
    bounds = [*starts[1:], n]
    if n:
        at = np.asarray(starts)
        dist = np.add.reduceat(leg_len, at).tolist()
        turns = np.add.reduceat(leg_turn, at).tolist()
        road = np.add.reduceat(leg_time, at).tolist()
    else:
        dist, turns, road = [0.0], [0.0], [0.0]
    listed = sorted(inters)
    n_listed = len(listed)
    steps: list[Step] = []
    li = 0
    last = len(starts) - 1
    for idx, (a, b) in enumerate(zip(starts, bounds, strict=True)):
        turn = turns[idx]
        if idx == last:
            turn += extra_turn_s
        if idx == 0:
            head, inter = _depart(v, E, coords, start)
            loc = [start[0], start[1]]
        else:
            dec = decisions[a]
            key = key_of.get(a, -1) if key_of is not None else -1
            if key == -1 or heads is None:
                head = _head(v, E, a, dec)
            else:
                hit = heads.get(key)
                head = hit if hit is not None else heads.setdefault(key, _head(v, E, a, dec))
            inter = inters[a]
            loc = head[1].location
        step_inters = [inter]
        while li < n_listed and listed[li] <= a:
            li += 1
        while li < n_listed and listed[li] < b:
            step_inters.append(inters[listed[li]])
            li += 1
        name, man, ref, dests, exits, rotary, pron, mode = head
        steps.append(Step(name, dist[idx], road[idx] + turn, loc, turn, man, step_inters,
                          ref, dests, exits, rotary, pron, mode, a))  # every field, in order
    steps = collapse(steps, lambda k: _must_keep(v, E, k))
    before = _last_bearing(coords)
    loc = [round(end[0], 6), round(end[1], 6)]
    arrive_step = Step(steps[-1].name if steps else "", 0.0, 0.0, loc, 0.0,
                       maneuver=Maneuver("arrive", loc, before, 0.0),
                       intersections=[Intersection(loc, [round(before + 180.0) % 360], [True],
                                                   in_=0)],
                       first_edge=-1)
    return steps, arrive_step


def _depart(v: View, E: list[int], coords: list[list[float]], start: list[float]
            ) -> tuple[_Head, Intersection]:
    """The head and the intersection of the first step."""
    g = v.g
    after = _first_bearing(coords)
    man = Maneuver("depart", [round(start[0], 6), round(start[1], 6)], 0.0, after)
    if not E:
        return ("", man, "", "", "", "", "", "driving"), Intersection(
            man.location, [round(after) % 360], [True], out=0)
    first = E[0]
    info = edge_tags(g, first)
    inter = Intersection(man.location, [round(after) % 360], [True], out=0,
                         classes=classes(g, first))
    return (v.names[int(g.name_id[first])], man, info.get("ref", ""),
            info.get("destinations", ""), info.get("exits", ""), "",
            info.get("pronunciation", ""), _mode(g, first)), inter


def _head(v: View, E: list[int], a: int, dec: Decision) -> _Head:
    """The head of the step ``dec`` starting at leg ``a``."""
    g = v.g
    j0 = a - 1
    while j0 > 0 and v.barrier[E[j0]]:
        j0 -= 1
    e_in, first = E[j0], E[a]
    arrive, leave = float(v.arrive[e_in]), float(v.leave[first])
    before = arrive if not math.isnan(arrive) else 0.0
    after = leave if not math.isnan(leave) else before
    man = Maneuver(dec.type, node_location(g, int(g.tail[first])), before, after,
                   dec.modifier, dec.exit)
    name_e = dec.name_edge if dec.name_edge >= 0 else first
    # a ring step is named after the road it leaves by (OSRM), or after the ring when the
    # route ends on it
    name = (dec.ring_name if dec.ring_name and dec.name_edge < 0
            else v.names[int(g.name_id[name_e])])
    info = edge_tags(g, name_e)
    return (name, man, info.get("ref", ""), info.get("destinations", ""),
            info.get("exits", ""), dec.ring_name if dec.rotary else "",
            info.get("pronunciation", ""), _mode(g, first))


def _must_keep(v: View, E: list[int], k: int) -> bool:
    """The junction before leg ``k`` is a turn of 60 degrees or more where a car had another
    way (rings and barriers aside, as :func:`engine.guidance.unannounced_turns`)."""
    if k < 1 or k >= len(E):
        return False
    e_in, f = E[k - 1], E[k]
    if v.barrier[e_in] or v.barrier[f] or v.ring[e_in] or v.ring[f]:
        return False
    return abs(turn_angle(v, e_in, f)) >= OBVIOUS_MAX_DEV and bool(choices(v, e_in, f))


def _mode(g: RoadGraph, e: int) -> str:
    return "contraflow" if g.flags[e] & _AGAINST else "driving"


_NO_TAGS: dict[str, str] = {}
_DEPART = Decision("depart", None)


def bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north
    (:func:`engine.graph.bearing_deg` for one pair of points, without numpy's overhead)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


def _bearing(a: Sequence[float], b: Sequence[float]) -> float:
    return bearing(a[1], a[0], b[1], b[0])


def _first_bearing(coords: list[list[float]]) -> float:
    for p in coords[1:]:
        if p != coords[0]:
            return _bearing(coords[0], p)
    return 0.0


def _last_bearing(coords: list[list[float]]) -> float:
    for p in reversed(coords[:-1]):
        if p != coords[-1]:
            return _bearing(p, coords[-1])
    return 0.0
