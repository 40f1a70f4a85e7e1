"""The plan that compiles the kernels of ``gyrophare serve`` (its progress lines:
:mod:`engine.progress`).

A fresh machine has no numba cache: the engine's kernels compile the first time they run
(about 190 specialisations, 2.5 minutes of one core here). To answer its first route, table
or nearest request the service needs about a third of them. This module

* splits the kernels into :data:`GROUPS`, each warmed by one function on tiny inputs with
  the argument types the service passes. ``at_start`` groups are ready before the server
  listens; the others (traffic updates, alternatives, Dijkstra-family searches, isochrones,
  hierarchy contraction, writable-array specialisations for library callers) are loaded
  after it, by a background thread (:meth:`KernelCompiler.background`);
* compiles the at-start groups in this process (measured on two shared cores: faster than
  compile processes), and the others in compile processes (``python -m engine.warmup``,
  one per core) once the server is up: they write numba's on-disk cache, this process then
  loads each group from it (milliseconds to a second) and keeps its GIL for requests;
* spawns nothing when the cache is warm: a probe loads a group from the cache and stops at
  the first kernel that would have to compile (:func:`probe`).

While background groups are being compiled, the loader thread holds numba's compiler lock:
a request that needs one of their kernels waits for it, instead of compiling it a second
time. The at-start kernels are loaded already and never take that lock.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.progress import StartupLog


# ------------------------------------------------------------------------- kernel groups
class _TinyGraph:
    """Two components (a 3-node cycle with a chord, a 2-node pair with a loop): the
    elimination forest has two leaves, so a copy of the topology can get two one-node
    subtree groups and reach the parallel customization kernels (as
    :func:`engine.cch.index.warm_up` does)."""

    n_nodes, n_edges = 5, 8
    tail = np.array([0, 0, 1, 1, 2, 3, 4, 4], dtype=np.int32)
    head = np.array([1, 2, 0, 2, 0, 4, 3, 4], dtype=np.int32)
    first_out = np.array([0, 2, 4, 5, 6, 8], dtype=np.int32)


_TINY_WEIGHTS = (1.0, 5.0, 1.0, 2.0, 2.0, 1.0, np.inf, 0.5)


#: ``CCHTopology.build(_TinyGraph())`` as it comes out (``tests/test_startup.py`` checks it
#: still does): written down so that warming the customization and query kernels does not
#: compile the contraction kernels first (20 s of a core on a fresh machine)
_TINY_TOPOLOGY: dict[str, tuple[str, list[Any]]] = {
    "order": ("int32", [3, 4, 0, 2, 1]),
    "rank": ("int32", [2, 4, 3, 0, 1]),
    "parent": ("int32", [1, -1, 3, 4, -1]),
    "lo": ("uint32", [0, 0, 2, 2, 2]),
    "f_first": ("uint32", [0, 1, 1, 3, 4, 4]),
    "b_first": ("uint32", [4, 5, 5, 7, 8, 8]),
    "head": ("uint32", [1, 3, 4, 4, 1, 3, 4, 4]),
    "bin_first": ("uint32", [0, 0, 1, 1, 2, 4]),
    "binp": ("uint32", [[4, 0, 1, 1], [5, 2, 2, 3], [6, 2, 3, 3], [7, 3, 4, 4]]),
    "fin_first": ("uint32", [0, 0, 1, 1, 2, 4]),
    "finp": ("uint32", [[0, 0, 5, 5], [1, 2, 6, 7], [2, 2, 7, 7], [3, 3, 8, 8]]),
    "edge_slot": ("int32", [2, 1, 6, 7, 5, 0, 4, -1]),
    "in_first": ("uint32", [0, 2, 2, 6, 7, 7]),
    "in_edge": ("uint32", [5, 6, 0, 1, 2, 4, 3]),
    "in_slot": ("uint32", [0, 4, 2, 1, 6, 5, 7]),
    "part_first": ("int32", [0, 3, 5]),
    "part_nodes": ("int32", [2, 3, 4, 0, 1]),
    "top_nodes": ("int32", []),
}
_TINY_UNDIRECTED_ARCS = 4


def tiny_topology() -> Any:
    """The :class:`~engine.cch.topology.CCHTopology` of :class:`_TinyGraph`, from
    :data:`_TINY_TOPOLOGY` (no kernel runs)."""
    from engine.cch.topology import CCHTopology, graph_key

    graph = _TinyGraph()
    arrays = {k: np.array(v, dtype=dtype) for k, (dtype, v) in _TINY_TOPOLOGY.items()}
    return CCHTopology(**arrays, n_nodes=graph.n_nodes, n_edges=graph.n_edges,
                       key=graph_key(graph), undirected_arcs=_TINY_UNDIRECTED_ARCS,
                       meta={"source": "engine.warmup"})


def _tiny_index() -> Any:
    """A :class:`~engine.cch.CCHIndex` of :class:`_TinyGraph` with two one-node subtree
    groups (two leaves of the elimination forest under a top of the other nodes)."""
    from engine.cch import CCHIndex

    top = tiny_topology()
    children = np.bincount(top.parent[top.parent >= 0], minlength=top.n_nodes)
    leaves = np.flatnonzero(children == 0)[:2].astype(np.int32)
    rest = np.setdiff1d(np.arange(top.n_nodes), leaves).astype(np.int32)
    return CCHIndex(replace(top, part_first=np.arange(3, dtype=np.int32), part_nodes=leaves,
                            top_nodes=rest))


def _frozen(values: Sequence[float]) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.flags.writeable = False
    return a


def warm_snap() -> None:
    """Load-time checks, the snapper's grid, reachability (read-only masks and weights)."""
    from engine import kernels

    kernels.warm_up(("checks", "snap", "reach"), writable=False)


def warm_cch_customize() -> None:
    """Full customization of the hierarchy, on one thread and on the subtree groups."""
    index = _tiny_index()
    for parallel in (False, True):
        index.customize(_frozen(_TINY_WEIGHTS), parallel=parallel)


def warm_cch_routes() -> None:
    """Routes and nearest-of-a-set on the hierarchy (point-to-point queries with paths)."""
    index = _tiny_index()
    metric = index.customize(_frozen(_TINY_WEIGHTS))
    one = np.ones(1)
    s, t = np.array([0], dtype=np.int32), np.array([2], dtype=np.int32)
    index.query(metric, s, one, t, one)
    index.nearest(metric, s, one, t, one)


def warm_cch_tables() -> None:
    """Tables on the hierarchy: bucket many-to-many, one-to-many, batched distances."""
    index = _tiny_index()
    metric = index.customize(_frozen(_TINY_WEIGHTS))
    one = np.ones(1)
    s, t = np.array([0], dtype=np.int32), np.array([2], dtype=np.int32)
    groups = np.array([0, 1], dtype=np.int32)
    index.many_to_many(metric, groups, s, one, groups, t, one)
    index.one_to_many(metric, s, one, groups, t, one)
    index.distances(metric, groups, s, one, groups, t, one)


def warm_cch_updates() -> None:
    """Partial customization after a traffic change: on one thread, on the subtree groups
    (the second finds the first's buffer free: a delta copy), and given up (the fallback)."""
    index = _tiny_index()
    w = np.array(_TINY_WEIGHTS)
    edges = np.arange(_TinyGraph.n_edges)
    metric = index.customize(_frozen(_TINY_WEIGHTS))
    update = index.update(metric, w * 2, edges)
    del metric
    index.PARALLEL_UPDATE = 1
    update = index.update(update, w * 3, edges)
    index.update(update, w * 4, edges, budget=0)


def warm_searches() -> None:
    """Dijkstra, bidirectional, A*, tables without a hierarchy, isochrones (read-only
    weights: ``algorithm=`` requests and ``/v1/isochrone``)."""
    from engine import kernels

    kernels.warm_up(("search", "matrix", "isochrone"), writable=False)


def warm_contraction() -> None:
    """Ordering and contraction: building a hierarchy for a new map."""
    from engine.cch.topology import CCHTopology

    CCHTopology.build(_TinyGraph())


def warm_alternatives() -> None:
    """Via-node alternative routes (``alternatives=`` on route requests)."""
    from engine.cch.via import warm_up

    warm_up()


def warm_writable() -> None:
    """The same kernels on writable arrays: what library callers usually pass."""
    from engine import kernels

    kernels.warm_up(frozen=False)


def warm_map(router: Any) -> None:
    """Routes (car, ambulance, shortest), tables and nearest-of-a-set on the router's own
    map: every kernel a route request runs, assembly and guidance included, with the map's
    own array types."""
    from engine.errors import GyrophareError

    g = router.graph
    n = g.n_nodes
    if n == 0:
        return
    points = [(float(g.lat[i]), float(g.lon[i])) for i in (0, n // 3, 2 * n // 3, n - 1)]
    for profile, metric in (("car", "time"), ("ambulance", "time"), ("car", "distance")):
        for a, b in itertools.pairwise(points):
            try:
                router.route(a, b, profile=profile, metric=metric)
            except GyrophareError:
                pass  # a point off this profile's roads: the next pair warms the same kernels
    for calls in (lambda: router.table(points[:2], points[2:]),
                  lambda: router.table(points[:1], points[1:2]),
                  lambda: router.closest(points[0], points[1:]),
                  lambda: router.closest(points[0], points[1:], direction="to")):
        try:
            calls()
        except GyrophareError:
            pass


def _map_router() -> Any:
    """Compile-process side: the service's router, from ``$GYROPHARE_WARM_MAP`` (JSON
    ``{"source", "place", "cache_dir"}``, what :class:`KernelCompiler` was given)."""
    from engine.io import load_graph
    from engine.query import Router

    spec = json.loads(os.environ.get("GYROPHARE_WARM_MAP") or "{}")
    graph = load_graph(spec.get("source"), place=spec.get("place"),
                       cache_dir=spec.get("cache_dir"))
    return Router(graph, warm_up=False)


def _warm_map_here() -> None:
    router = _map_router()
    router.prepare()
    warm_map(router)


@dataclass(frozen=True)
class KernelGroup:
    """Kernels warmed together: ``warm`` calls each of them with the service's types."""

    name: str
    label: str
    warm: Callable[[], None]
    #: ready before the server listens (route, table, nearest); else loaded in background
    at_start: bool
    #: groups a compile process finishes first (their kernels are then loaded from the
    #: cache, not compiled twice)
    after: tuple[str, ...] = ()


#: in order of need: the at-start groups first, then the rest by how soon a request may
#: want them
GROUPS: tuple[KernelGroup, ...] = (
    # the two largest first, one per compile process (about 13 and 11 s of a core)
    KernelGroup("cch-routes", "routes on the hierarchy", warm_cch_routes, True),
    KernelGroup("cch-tables", "tables on the hierarchy", warm_cch_tables, True),
    KernelGroup("snap", "checks and snapping", warm_snap, True),
    KernelGroup("cch-customize", "hierarchy customization", warm_cch_customize, True),
    # after them, so that it compiles only what is its own (route assembly, guidance)
    KernelGroup("map", "routes on this map (assembly, guidance)", _warm_map_here, True,
                after=("cch-routes", "cch-tables", "snap", "cch-customize")),
    KernelGroup("cch-updates", "traffic updates", warm_cch_updates, False),
    KernelGroup("searches", "Dijkstra, A*, isochrones", warm_searches, False),
    KernelGroup("contraction", "hierarchy contraction", warm_contraction, False),
    # builds its own small hierarchy: after the contraction kernels are in the cache
    KernelGroup("alternatives", "alternative routes", warm_alternatives, False,
                after=("contraction",)),
    KernelGroup("writable", "writable-array variants", warm_writable, False),
)

_BY_NAME = {g.name: g for g in GROUPS}


class _WouldCompile(Exception):
    """Raised by the probe's listener when a kernel misses the cache."""


def _probe_listener() -> Any:
    """A numba event listener: a compile starting on this thread aborts (the probe ran into
    a kernel that is not in the cache). Cache loads send no event: they go through."""
    from numba.core import event

    class Probe(event.Listener):
        thread = threading.get_ident()

        def on_start(self, ev: Any) -> None:
            if threading.get_ident() == self.thread:
                raise _WouldCompile(str(ev.data.get("dispatcher")))

        def on_end(self, ev: Any) -> None:
            pass

    return Probe()


def probe(group: KernelGroup) -> bool:
    """Load ``group`` from numba's cache; ``False`` (and nothing compiled) at the first of its
    kernels that is not there."""
    return probe_call(group.warm)


def probe_call(run: Callable[[], None]) -> bool:
    """Run ``run`` as long as every kernel it calls loads from numba's cache; ``False`` at
    the first that would compile (that one is not compiled)."""
    from numba.core import event

    listener = _probe_listener()
    event.register("numba:compile", listener)
    try:
        run()
    except _WouldCompile:
        return False
    finally:
        event.unregister("numba:compile", listener)
    return True


def worker_main() -> int:
    """A compile process (``python -m engine.warmup``): reads group names on stdin, one a
    line, warms each (numba writes its cache) and answers ``name<TAB>seconds<TAB>ok`` or
    ``name<TAB>0<TAB><error>``, until stdin closes."""
    for line in sys.stdin:
        name = line.strip()
        t = time.perf_counter()
        try:
            _BY_NAME[name].warm()
            status = "ok"
        except Exception as exc:  # the parent compiles this group itself
            status = repr(exc).replace("\t", " ").replace("\n", " ")
        print(f"{name}\t{time.perf_counter() - t:.3f}\t{status}", flush=True)
    return 0


def default_workers() -> int:
    """Compile processes: ``$GYROPHARE_COMPILE_WORKERS``, else the usable cores (at most 4);
    1 compiles in this process."""
    env = os.environ.get("GYROPHARE_COMPILE_WORKERS")
    if env and env.strip().isdigit():
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class KernelCompiler:
    """Make the kernel groups ready in this process.

    In order: :meth:`begin` (finds out whether numba's cache is cold), :meth:`start`
    (blocking: the at-start groups but ``map``), :meth:`warm_router` (the ``map`` group, on
    the service's router), :meth:`background` (the rest, after the server is up),
    :meth:`close`.

    Parameters
    ----------
    log
        Where the progress lines go.
    workers
        Compile processes for the background groups (default :func:`default_workers`); 1
        compiles them in this process.
    groups
        The plan (default :data:`GROUPS`).
    map_spec
        How a compile process loads the service's map: ``{"source", "place",
        "cache_dir"}`` as for :func:`engine.io.load_graph` (default: the sample city).
    """

    def __init__(self, log: StartupLog, *, workers: int | None = None,
                 groups: Sequence[KernelGroup] = GROUPS,
                 map_spec: dict[str, Any] | None = None) -> None:
        self.log = log
        self.map_spec = dict(map_spec or {})
        self.cold = False
        self.workers = default_workers() if workers is None else max(1, workers)
        self.groups = list(groups)
        self._procs: list[subprocess.Popen] = []
        self._tasks: list[KernelGroup] = []  # queued, in order of need
        self._finished: set[str] = set()  # answered by a compile process
        self._lock = threading.Lock()
        self._done: queue.Queue[tuple[str, float | None, BaseException | None]] = queue.Queue()
        self._results: dict[str, tuple[float | None, BaseException | None]] = {}
        self._submitted: set[str] = set()
        self._closed = threading.Event()
        self.thread: threading.Thread | None = None
        #: group name -> ``cached`` or ``compiled``, as each becomes ready here
        self.ready: dict[str, str] = {}

    # ------------------------------------------------------------------ workers
    def _submit(self, groups: Sequence[KernelGroup]) -> None:
        """Queue ``groups`` for the compile processes (started on first use)."""
        with self._lock:
            for g in groups:
                if g.name not in self._submitted:
                    self._submitted.add(g.name)
                    self._tasks.append(g)
        if not self._procs:
            for _ in range(self.workers):
                env = {**os.environ, "GYROPHARE_WARM_MAP": json.dumps(self.map_spec)}
                proc = subprocess.Popen(
                    [sys.executable, "-m", "engine.warmup"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
                self._procs.append(proc)
                threading.Thread(target=self._feed, args=(proc,), daemon=True,
                                 name="gyrophare-compile-feed").start()

    def _take(self) -> str | None:
        """The first queued group whose ``after`` groups are compiled (None: none yet)."""
        with self._lock:
            for i, g in enumerate(self._tasks):
                if all(a in self._finished or a not in self._submitted for a in g.after):
                    del self._tasks[i]
                    return g.name
        return None

    def _feed(self, proc: subprocess.Popen) -> None:
        """Hand queued groups to one compile process, one at a time; report its answers."""
        assert proc.stdin is not None and proc.stdout is not None
        while not self._closed.is_set() and proc.poll() is None:
            name = self._take()
            if name is None:
                time.sleep(0.05)
                continue
            try:
                proc.stdin.write(name + "\n")
                proc.stdin.flush()
                answer = proc.stdout.readline().rstrip("\n").split("\t")
            except (OSError, ValueError) as exc:  # the process died or was stopped
                with self._lock:
                    self._finished.add(name)
                self._done.put((name, None, exc))
                return
            if len(answer) != 3 or answer[0] != name:
                with self._lock:
                    self._finished.add(name)
                self._done.put((name, None, RuntimeError(f"compile process answered {answer}")))
                return
            error = None if answer[2] == "ok" else RuntimeError(answer[2])
            with self._lock:
                self._finished.add(name)
            self._done.put((name, float(answer[1]), error))

    def _collect(self, timeout: float) -> None:
        """Record the next answer of a compile process (if one comes within ``timeout``);
        when every process has exited, the groups still queued fail."""
        try:
            done, seconds, error = self._done.get(timeout=timeout)
        except queue.Empty:
            if self._procs and all(p.poll() is not None for p in self._procs):
                for name in self._submitted - set(self._results):
                    self._results[name] = (None, RuntimeError("compile processes exited"))
            return
        self._results[done] = (seconds, error)

    def _wait(self, name: str) -> tuple[float | None, BaseException | None]:
        """The compile processes' answer for ``name`` (``(None, None)`` once closed)."""
        while name not in self._results:
            if self._closed.is_set():
                return None, None
            self._collect(0.2)
        return self._results[name]

    # ------------------------------------------------------------------ start-up
    def begin(self) -> None:
        """Probe the first group: a miss means numba's cache is cold (a first start)."""
        first = self.groups[0]
        if probe(first):
            self.ready[first.name] = "cached"
            return
        self.cold = True
        self.log.line("compiling kernels: numba's cache is empty (first start); the ones "
                      "the first requests need now, the others once the server is up")

    def _ready(self, g: KernelGroup, i: int, n: int, *, run: Callable[[], None]) -> None:
        """Make ``g`` ready here: from the cache, else compiled here, with a progress line."""
        if g.name in self.ready:
            return
        if not self.cold and probe_call(run):
            self.ready[g.name] = "cached"
            return
        t = time.perf_counter()
        run()
        self.ready[g.name] = "compiled"
        self.log.line(f"compiling kernels {i}/{n}: {g.label} "
                      f"({time.perf_counter() - t:.1f} s)")

    def start(self) -> None:
        """The at-start groups but ``map`` ready in this process.

        They compile here, not in compile processes: on two shared cores, measured, two
        processes each paying numba's start-up and contending for the cores were slower
        (80 s to the first answer) than this process alone (58 s)."""
        self._t_start = time.perf_counter()
        start = [g for g in self.groups if g.at_start]
        for g in start:
            if g.name != "map":
                self._ready(g, len(self.ready) + 1, len(start), run=g.warm)

    def warm_router(self, router: Any) -> None:
        """The ``map`` group on the service's router (its customizations first)."""
        start = [g for g in self.groups if g.at_start]
        router.prepare()
        g = _BY_NAME["map"]
        if g in start:
            self._ready(g, len(self.ready) + 1, len(start), run=lambda: warm_map(router))
        cached = sum(1 for v in self.ready.values() if v == "cached")
        t0 = getattr(self, "_t_start", self.log.t0)
        self.log.line(f"kernels ready: {len(self.ready)} groups, {cached} from the cache "
                      f"({time.perf_counter() - t0:.1f} s)")

    def background(self) -> threading.Thread:
        """Load (or get compiled) the other groups in a daemon thread; it holds numba's
        compiler lock meanwhile, so a request needing one of them waits for it."""
        self.thread = threading.Thread(target=self._background, name="gyrophare-kernels",
                                       daemon=True)
        self.thread.start()
        return self.thread

    def _background(self) -> None:
        """Cached groups load at once; the others compile in the compile processes (the
        server's process keeps its GIL for requests), then load from the cache."""
        from numba.core.compiler_lock import global_compiler_lock

        rest = [g for g in self.groups if not g.at_start]
        t0 = time.perf_counter()
        try:
            with global_compiler_lock:
                missing = [g for g in rest if self.cold or not probe(g)]
                for g in rest:
                    if g not in missing:
                        self.ready[g.name] = "cached"
                if not missing:
                    return
                self.log.line(f"compiling {len(missing)} more kernel groups in the "
                              f"background ({'; '.join(g.label for g in missing)})")
                if self.workers > 1:
                    self._submit(missing)
                for i, g in enumerate(missing, start=1):
                    if self.workers > 1:
                        self._wait(g.name)  # on its error, g.warm() below compiles here
                    if self._closed.is_set():
                        return
                    t = time.perf_counter()
                    g.warm()
                    self.ready[g.name] = "compiled"
                    self.log.line(f"background kernels {i}/{len(missing)}: {g.label} "
                                  f"(ready {time.perf_counter() - t0:.1f} s after the server; "
                                  f"loaded in {time.perf_counter() - t:.1f} s)")
            self.log.line(f"all kernels ready ({time.perf_counter() - t0:.1f} s after the "
                          "server started)")
        except Exception as exc:  # pragma: no cover - a request compiles what it needs
            self.log.line(f"background kernels stopped: {exc!r}")
        finally:
            self._stop_pool()

    def _stop_pool(self) -> None:
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()

    def close(self) -> None:
        """Stop the background work (the workers are terminated)."""
        self._closed.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)
        self._stop_pool()


if __name__ == "__main__":  # pragma: no cover - a compile process of KernelCompiler
    sys.exit(worker_main())
