"""Soak test: ``gyrophare serve`` under a steady, realistic mix of reads and writes for minutes;
no 5xx, no lost write, equal state on every worker, bounded memory.

Usage::

    python benchmarks/soak.py                                  # Redis, 2 workers, 3 min
    python benchmarks/soak.py --store embedded --minutes 2     # embedded store, 1 worker
    python benchmarks/soak.py --out benchmarks/results/soak.md [--append]

The script starts ``python -m api.cli serve`` on the map (Monaco by default) on a free
loopback port, through :class:`bench_api.Server` (Redis: database ``/14`` and a fresh key
prefix, removed at the end; embedded: a state file in a temporary folder). ``--clients``
keep-alive connections (a minimal HTTP/1.1 client on asyncio streams), spread over the
workers (each connection's worker is read from ``/proc``), send ``--rate`` requests per second
in all, on a fixed schedule, for ``--warmup`` seconds then ``--minutes``. The mix (``MIX``):
mostly ``POST /v1/route`` and ``GET /route/v1/driving``; dispatches (``POST /v1/dispatch``
with an ambulance id, then ``.../arrived`` or ``.../cancel`` a few seconds later, a few left
en route); closures (``POST /v1/closures``, expiring after the run, then ``DELETE`` a few
seconds later, a few kept); hospital status ``PUT``s (each hospital written by one client
only, so its last status is known); field reports; ``GET /v1/traffic``, ``/v1/ambulances``,
``/v1/hospitals``, ``/health``; bad inputs from ``BAD`` (each must get its 4xx); replays of an
earlier write with its ``Idempotency-Key`` (must answer ``Idempotent-Replayed: true`` and
write nothing). Every write carries an ``Idempotency-Key``; a write whose connection drops is
retried once with the same key.

At the end, on a connection to **each** worker: ``/health`` (log position), ``/metrics``,
``/v1/traffic``, ``/v1/ambulances``, ``/v1/hospitals``. A write is lost when the log holds
fewer events than writes acknowledged (2xx, not a replay), or when what it wrote is missing
on a worker: a closure or report not deleted, an ambulance still en route, a hospital's last
status. Also checked: deleted entries and closed ambulances are gone, ``weights_version``
is equal everywhere, no worker restarted. The RSS of every server process is sampled every
``--sample-every`` seconds: start (after the warm-up) → end, and growth per 1,000 writes.

Exit status 0 when there was no 5xx, no transport error, no unexpected status, no lost or
duplicated write and every worker agrees; 1 otherwise. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import Server, cleanup_redis, machine_ticks, pick_pairs, process_tree_seconds

from engine.io import shared_data_dir

try:  # RSS and process tree; /proc otherwise (Linux)
    import psutil
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None

ROOT = Path(__file__).resolve().parent.parent
TITLE = "# Soak: the service under a steady mix of reads and writes"
REQUEST_TIMEOUT_S = 30.0

#: Relative weights of the operations a client draws at each tick (follow-ups of earlier
#: dispatches and closures, when due, take the tick instead).
MIX = {
    "route": 34, "osrm": 30, "dispatch": 8, "closure": 4, "hospital": 3, "report": 2,
    "traffic": 4, "ambulances": 2, "hospitals": 2, "health": 3, "bad": 4, "replay": 3,
}
KEEP_CLOSURES = 8  #: closures never deleted (checked at the end), in all
KEEP_AMBULANCES = 8  #: ambulances left en route (checked at the end), in all

#: Bad inputs: (name, method, path, JSON body or raw bytes, expected status).
BAD: list[tuple[str, str, str, Any, int]] = [
    ("route: longitude 999", "POST", "/v1/route",
     {"origin": [999, 0], "destination": [7.42, 43.73]}, 422),
    ("route: no origin", "POST", "/v1/route", {"destination": [7.42, 43.73]}, 422),
    ("route: origin in Paris", "POST", "/v1/route",
     {"origin": [2.35, 48.85], "destination": [7.42, 43.73]}, 422),
    ("route: truncated JSON", "POST", "/v1/route", b'{"origin":', 422),
    ("osrm: not coordinates", "GET", "/route/v1/driving/abc", None, 400),
    ("osrm: one coordinate", "GET", "/route/v1/driving/7.42,43.73", None, 400),
    ("closure: unclosed ring", "POST", "/v1/closures",
     {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
         [[7.42, 43.73], [7.43, 43.73], [7.43, 43.74]]]}}, 422),
    ("closure: already expired", "POST", "/v1/closures",
     {"type": "Feature", "properties": {"expires_at": "2020-01-01T00:00:00Z"},
      "geometry": {"type": "Point", "coordinates": [7.4212, 43.7360]}}, 422),
    ("closure: delete unknown id", "DELETE", "/v1/closures/closure-0000000000", None, 404),
    ("ambulance: arrived, not en route", "POST", "/v1/ambulances/soak-nobody/arrived",
     None, 404),
    ("ambulance: malformed id", "POST", "/v1/ambulances/bad%20id/cancel", None, 422),
    ("dispatch: malformed ambulance id", "POST", "/v1/dispatch",
     {"incident": [7.42, 43.735], "ambulance_id": "bad id!"}, 422),
    ("dispatch: unknown bed type", "POST", "/v1/dispatch",
     {"incident": [7.42, 43.735], "need": {"bed_type": "Spaceship"}}, 422),
    ("hospital: unknown id", "PUT", "/v1/hospitals/soak-nowhere/status",
     {"heartbeat": True}, 404),
    ("hospital: empty report", "PUT", "/v1/hospitals/{hospital}/status", {}, 422),
    ("hospital: unknown bed type", "PUT", "/v1/hospitals/{hospital}/status",
     {"beds": {"Spaceship": 3}}, 422),
    ("report: factor 9", "POST", "/v1/reports", {"location": [7.4212, 43.7360], "factor": 9},
     422),
    ("write: Idempotency-Key with a space", "POST", "/v1/reports",
     {"location": [7.4212, 43.7360]}, 422),
]


def road_points(osm: Path, n: int, seed: int) -> list[list[float]]:
    """``n`` road nodes a car can use, as ``[lon, lat]``: where the closures go (a Point
    closure must touch a road)."""
    from engine.io import load_graph
    from engine.query import Router

    graph = load_graph(osm)
    nodes = np.unique(graph.tail[np.isfinite(Router(graph).weights("car").values)])
    chosen = np.random.default_rng(seed).choice(nodes, min(n, len(nodes)), replace=False)
    return [[float(graph.lon[k]), float(graph.lat[k])] for k in chosen]


# ---------------------------------------------------------------------------- HTTP client
class TransportError(Exception):
    """The connection failed or timed out: the answer is unknown."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    ms: float
    acked: bool = False  #: a write this request made (2xx, not a replay of an earlier one)

    @property
    def replayed(self) -> bool:
        return self.headers.get("idempotent-replayed") == "true"

    def json(self) -> Any:
        return json.loads(self.body)


class Conn:
    """One HTTP/1.1 keep-alive connection (asyncio streams): enough for uvicorn's answers
    (Content-Length or chunked bodies). ``worker``: the server process that accepted it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.local_port = 0
        self.worker: int | None = None

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.local_port = self.writer.get_extra_info("sockname")[1]
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Answer:
        if self.writer is None:
            await self.open()
        t0 = time.perf_counter()
        try:
            return await asyncio.wait_for(self._exchange(method, path, body, headers or {}, t0),
                                          REQUEST_TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError) as exc:
            await self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, method: str, path: str, body: bytes | None,
                        headers: dict[str, str], t0: float) -> Answer:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        for key, value in headers.items():
            head += f"{key}: {value}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        elif method in ("POST", "PUT", "DELETE"):
            head += "Content-Length: 0\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        got: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                got[key.strip().lower()] = value.strip()
        if got.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(int(got.get("content-length", "0")))
        if got.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, got, data, (time.perf_counter() - t0) * 1000)


# ---------------------------------------------------------------------------- processes
def children(pid: int) -> list[int]:
    if psutil is not None:
        with contextlib.suppress(psutil.Error):
            return [p.pid for p in psutil.Process(pid).children()]
        return []
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                         timeout=5).stdout.split()
    return [int(p) for p in out]


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_processes(server: Server) -> dict[int, str]:
    """Every process of the server, labelled: the supervisor and its workers (several
    workers), or the one worker."""
    root = server.proc.pid
    if server.workers == 1:
        return {root: "worker"}
    procs = {root: "supervisor"}
    n = 0
    for pid in sorted(children(root)):
        text = cmdline(pid)
        if "resource_tracker" in text:
            procs[pid] = "resource tracker"
        else:
            n += 1
            procs[pid] = f"worker {n}"
    return procs


def workers_of(procs: dict[int, str]) -> list[int]:
    return [pid for pid, label in procs.items() if label.startswith("worker")]


def rss_bytes(pid: int) -> int | None:
    if psutil is not None:
        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def socket_owner(pids: list[int], server_port: int, client_port: int) -> int | None:
    """Which of ``pids`` holds the server end of the loopback connection from
    ``client_port`` (``/proc/net/tcp*`` for the socket's inode, then each process's fds)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                local, remote = cols[1], cols[2]
                if (int(local.rsplit(":", 1)[1], 16) == server_port
                        and int(remote.rsplit(":", 1)[1], 16) == client_port):
                    inodes.add(f"socket:[{cols[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
    return None


async def connect_spread(host: str, port: int, workers: list[int], count: int,
                         attempts: int = 80) -> list[Conn]:
    """``count`` connections, the i-th accepted by worker ``i % len(workers)``: connections
    are opened one at a time and kept when they land where one is still needed (which worker
    accepts a connection is up to the kernel and the workers' event loops)."""
    conns: list[Conn | None] = [None] * count
    targets = [workers[i % len(workers)] for i in range(count)]
    for _ in range(attempts):
        if all(c is not None for c in conns):
            break
        conn = await Conn(host, port).open()
        await conn.request("GET", "/")  # accepted and answered: a worker holds it now
        conn.worker = socket_owner(workers, port, conn.local_port)
        slot = next((i for i in range(count)
                     if conns[i] is None and (targets[i] == conn.worker or len(workers) == 1)),
                    None)
        if slot is None:
            await conn.close()
            await asyncio.sleep(0.05)
        else:
            conns[slot] = conn
    out = []
    for c in conns:
        if c is None:  # not placed: take any
            c = await Conn(host, port).open()
            await c.request("GET", "/")
            c.worker = socket_owner(workers, port, c.local_port)
        out.append(c)
    return out


# ---------------------------------------------------------------------------- the load
@dataclass
class EndpointStats:
    requests: int = 0
    classes: Counter = field(default_factory=Counter)  # "2xx"... and "transport"
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  #: ms, after the warm-up only
    unexpected: int = 0


@dataclass
class Expected:
    """What the acknowledged writes must have left, merged over the clients."""

    writes: int = 0  #: acknowledged writes (events the log must hold)
    traffic_writes: int = 0  #: of which traffic events (each moves weights_version)
    writes_after_warmup: int = 0
    replays: int = 0
    replays_wrong: int = 0
    live_entries: dict[str, str] = field(default_factory=dict)  #: id -> closure / report
    deleted_entries: set[str] = field(default_factory=set)
    open_ambulances: set[str] = field(default_factory=set)
    closed_ambulances: set[str] = field(default_factory=set)
    hospital_status: dict[str, dict[str, Any]] = field(default_factory=dict)


class Soak:
    def __init__(self, args: argparse.Namespace, server: Server, pairs: list, points: list,
                 hospitals: list, procs: dict[int, str], run_id: str) -> None:
        self.args, self.server, self.pairs, self.hospitals = args, server, pairs, hospitals
        self.points = points
        self.procs = procs
        self.workers = workers_of(procs)
        self.run_id = run_id
        self.stats: dict[str, EndpointStats] = {}
        self.bad_seen: Counter = Counter()
        self.unreachable: Counter = Counter()  #: routes no allowed path joins (closures)
        self.expected = Expected()
        self.samples: list[tuple[float, dict[int, int | None]]] = []
        self.unexpected_samples: list[str] = []
        self.transport_samples: list[str] = []
        self.reconnects = 0
        self.late = 0  #: ticks sent more than 1 s behind schedule
        self.warm = True
        self.kept_closures = 0
        self.kept_ambulances = 0
        self.t_start = 0.0
        self.rss_start_t = 0.0
        self.load_s = 0.0
        self.conn_workers: list[int | None] = []

    # -------------------------------------------------------------- recording
    def record(self, name: str, answer: Answer | None, expect: tuple[int, ...],
               error: str = "") -> None:
        st = self.stats.setdefault(name, EndpointStats())
        st.requests += 1
        if answer is None:
            st.classes["transport"] += 1
            if len(self.transport_samples) < 5:
                self.transport_samples.append(f"{name}: {error}")
            return
        st.classes[f"{answer.status // 100}xx"] += 1
        st.statuses[answer.status] += 1
        if not self.warm:
            st.latencies.append(answer.ms)
        if answer.status == 400 and name.startswith("GET /route") and b'"NoRoute"' in answer.body:
            self.unreachable[name] += 1  # OSRM's answer when live closures cut a pair off
        elif answer.status not in expect:
            st.unexpected += 1
            if len(self.unexpected_samples) < 8:
                self.unexpected_samples.append(
                    f"{name}: {answer.status} {answer.body[:200].decode(errors='replace')}")

    def acked(self, traffic: bool = False) -> None:
        self.expected.writes += 1
        self.expected.traffic_writes += traffic
        if not self.warm:
            self.expected.writes_after_warmup += 1

    # -------------------------------------------------------------- one client
    async def client(self, i: int, conn: Conn, deadline: float) -> None:
        rng = random.Random(self.args.seed * 1000 + i)
        ctx = {"conn": conn, "rng": rng, "i": i, "n": 0, "history": deque(maxlen=50),
               "due": [],  # (time, kind, id)
               "hospitals": [h for k, h in enumerate(self.hospitals)
                             if k % self.args.clients == i]}
        period = self.args.clients / self.args.rate
        t_next = self.t_start + i / self.args.rate
        ops, weights = list(MIX), list(MIX.values())
        while t_next < deadline:
            delay = t_next - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                self.late += 1
            t_next += period
            due = [d for d in ctx["due"] if d[0] <= time.perf_counter()]
            if due:
                ctx["due"].remove(due[0])
                await self.follow_up(ctx, due[0][1], due[0][2])
            else:
                await getattr(self, f"op_{rng.choices(ops, weights)[0]}")(ctx)

    async def call(self, ctx: dict, name: str, method: str, path: str, body: Any = None, *,
                   write: bool = False, expect: tuple[int, ...] = (200,),
                   key: str | None = None, headers: dict[str, str] | None = None
                   ) -> Answer | None:
        """One request, recorded; a write gets an ``Idempotency-Key`` and, when its connection
        drops, one retry with the same key (whatever the first attempt did, it happens once).
        ``answer.acked``: this request (or its retry) wrote."""
        raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        hdrs = dict(headers or {})
        if write and "Idempotency-Key" not in hdrs:
            hdrs["Idempotency-Key"] = key or f"soak-{self.run_id}-{uuid.uuid4().hex}"
        for attempt in range(2):
            try:
                answer = await ctx["conn"].request(method, path, raw, hdrs)
            except TransportError as exc:
                self.record(name, None, expect, str(exc))
                self.reconnects += 1
                ctx["conn"] = await self.reopen(ctx["conn"])
                if attempt == 0:
                    continue  # reads and writes alike: a write keeps its key
                return None
            self.record(name, answer, expect)
            answer.acked = (200 <= answer.status < 300 and write
                            and (not answer.replayed or attempt == 1))
            if answer.acked:
                ctx["history"].append((name, method, path, raw, hdrs["Idempotency-Key"],
                                       answer.status))
            return answer
        return None

    async def reopen(self, conn: Conn) -> Conn:
        await conn.close()
        new = Conn(conn.host, conn.port)
        with contextlib.suppress(OSError):
            await new.open()
            new.worker = socket_owner(self.workers, conn.port, new.local_port)
        return new

    def pair(self, ctx: dict) -> tuple[list[float], list[float]]:
        return self.pairs[ctx["rng"].randrange(len(self.pairs))]

    def until(self, minutes: float) -> str:
        return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()

    def later(self, ctx: dict, kind: str, ident: str) -> None:
        ctx["due"].append((time.perf_counter() + ctx["rng"].uniform(3, 20), kind, ident))

    # -------------------------------------------------------------- operations
    async def op_route(self, ctx: dict) -> None:
        o, d = self.pair(ctx)
        profile = ctx["rng"].choice(["ambulance", "ambulance", "car"])
        answer = await self.call(ctx, "POST /v1/route", "POST", "/v1/route",
                                 {"origin": o, "destination": d, "profile": profile})
        if answer is not None and answer.status == 200 and \
                answer.json().get("status") == "unreachable":
            self.unreachable["POST /v1/route"] += 1

    async def op_osrm(self, ctx: dict) -> None:
        o, d = self.pair(ctx)
        await self.call(ctx, "GET /route/v1/driving", "GET",
                        f"/route/v1/driving/{o[0]:.6f},{o[1]:.6f};{d[0]:.6f},{d[1]:.6f}")

    async def op_dispatch(self, ctx: dict) -> None:
        rng = ctx["rng"]
        ctx["n"] += 1
        amb = f"soak-{self.run_id}-c{ctx['i']}-{ctx['n']}"
        need = rng.choice([{}, {"bed_type": "AdultICU"}, {"bed_type": "MedicalSurgical"}])
        o, _ = self.pair(ctx)
        answer = await self.call(ctx, "POST /v1/dispatch", "POST", "/v1/dispatch",
                                 {"incident": o, "need": need, "ambulance_id": amb},
                                 write=True, expect=(200, 409))
        if answer is not None and answer.acked and answer.json().get("registered"):
            self.acked()
            self.expected.open_ambulances.add(amb)
            if self.kept_ambulances < KEEP_AMBULANCES and rng.random() < 0.1:
                self.kept_ambulances += 1  # left en route: checked at the end
            else:
                self.later(ctx, rng.choice(["arrived", "arrived", "arrived", "cancel"]), amb)

    async def op_closure(self, ctx: dict) -> None:
        rng = ctx["rng"]
        point = rng.choice(self.points)
        feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": point},
                   "properties": {"radius_m": 20, "source": "soak",
                                  "expires_at": self.until(self.args.minutes + 10)}}
        answer = await self.call(ctx, "POST /v1/closures", "POST", "/v1/closures", feature,
                                 write=True, expect=(201,))
        if answer is not None and answer.acked:
            self.acked(traffic=True)
            entry = answer.json()["id"]
            self.expected.live_entries[entry] = "closure"
            if self.kept_closures < KEEP_CLOSURES and rng.random() < 0.15:
                self.kept_closures += 1
            else:
                self.later(ctx, "delete", entry)

    async def op_report(self, ctx: dict) -> None:
        rng = ctx["rng"]
        _, d = self.pair(ctx)
        body = {"location": d, "kind": "slowed", "factor": round(rng.uniform(0.3, 0.8), 2),
                "source": "soak", "expires_at": self.until(self.args.minutes + 10)}
        answer = await self.call(ctx, "POST /v1/reports", "POST", "/v1/reports", body,
                                 write=True, expect=(201,))
        if answer is not None and answer.acked:
            self.acked(traffic=True)
            self.expected.live_entries[answer.json()["id"]] = "report"

    async def op_hospital(self, ctx: dict) -> None:
        if not ctx["hospitals"]:
            return await self.op_route(ctx)
        rng = ctx["rng"]
        hospital = rng.choice(ctx["hospitals"])
        body = {"beds": {"AdultICU": {"available": rng.randint(2, 8)},
                         "MedicalSurgical": {"available": rng.randint(10, 50)}},
                "ed_status": rng.choice(["Normal", "Normal", "Normal", "Advisory"]),
                "offload_status": rng.choice(["Normal", "Normal", "Delayed"])}
        answer = await self.call(ctx, "PUT /v1/hospitals/{id}/status", "PUT",
                                 f"/v1/hospitals/{hospital}/status", body, write=True)
        if answer is not None and answer.acked:
            self.acked()
            out = answer.json()
            self.expected.hospital_status[hospital] = {
                "updated_at": out["updated_at"], "ed_status": out["ed_status"],
                "offload_status": out["offload_status"]}

    async def op_traffic(self, ctx: dict) -> None:
        await self.call(ctx, "GET /v1/traffic", "GET", "/v1/traffic")

    async def op_ambulances(self, ctx: dict) -> None:
        await self.call(ctx, "GET /v1/ambulances", "GET", "/v1/ambulances")

    async def op_hospitals(self, ctx: dict) -> None:
        await self.call(ctx, "GET /v1/hospitals", "GET", "/v1/hospitals")

    async def op_health(self, ctx: dict) -> None:
        await self.call(ctx, "GET /health", "GET", "/health")

    async def op_bad(self, ctx: dict) -> None:
        name, method, path, body, code = ctx["rng"].choice(BAD)
        path = path.replace("{hospital}", self.hospitals[0])
        headers = ({"Idempotency-Key": "soak bad key"} if "Idempotency-Key" in name
                   else None)
        answer = await self.call(ctx, "bad inputs", method, path, body,
                                 write=method != "GET", expect=(code,), headers=headers)
        if answer is not None:
            self.bad_seen[(name, answer.status)] += 1
            if answer.acked:  # a bad input written: it counts as a write (and fails the run)
                self.acked()

    async def op_replay(self, ctx: dict) -> None:
        if not ctx["history"]:
            return await self.op_route(ctx)
        _, method, path, raw, key, status = ctx["rng"].choice(list(ctx["history"]))
        answer = await self.call(ctx, "replays (same Idempotency-Key)", method, path, raw,
                                 write=True, key=key, expect=(status,))
        if answer is not None:
            self.expected.replays += 1
            if not answer.replayed or answer.status != status:
                self.expected.replays_wrong += 1
                if answer.acked:  # written a second time
                    self.acked()

    async def follow_up(self, ctx: dict, kind: str, ident: str) -> None:
        if kind == "delete":
            answer = await self.call(ctx, "DELETE /v1/closures/{id}", "DELETE",
                                     f"/v1/closures/{ident}", write=True)
            if answer is not None and answer.acked:
                self.acked(traffic=True)
                self.expected.live_entries.pop(ident, None)
                self.expected.deleted_entries.add(ident)
            return
        body = {"admit": ctx["rng"].random() < 0.8} if kind == "arrived" else None
        answer = await self.call(ctx, f"POST /v1/ambulances/{{id}}/{kind}", "POST",
                                 f"/v1/ambulances/{ident}/{kind}", body, write=True)
        if answer is not None and answer.acked:
            self.acked()
            self.expected.open_ambulances.discard(ident)
            self.expected.closed_ambulances.add(ident)

    # -------------------------------------------------------------- sampling and the run
    def label(self, pid: int | None) -> str:
        return self.procs.get(pid, "?") if pid is not None else "?"

    def samples_at(self, t: float) -> dict[int, int | None]:
        """The first RSS sample taken at ``t`` or after."""
        for when, values in self.samples:
            if when >= t:
                return values
        return self.samples[-1][1]

    def sample(self) -> None:
        self.samples.append((time.perf_counter(), {pid: rss_bytes(pid) for pid in self.procs}))

    async def sampler(self, until: float) -> None:
        while time.perf_counter() < until:
            await asyncio.sleep(min(self.args.sample_every, max(0.0, until - time.perf_counter())))
            if time.perf_counter() < until:
                self.sample()

    async def run(self) -> None:
        host, port = "127.0.0.1", self.server.port
        conns = await connect_spread(host, port, self.workers, self.args.clients)
        self.conn_workers = [c.worker for c in conns]
        self.t_start = time.perf_counter()
        warm_end = self.t_start + self.args.warmup
        deadline = warm_end + self.args.minutes * 60

        async def end_warmup() -> None:
            await asyncio.sleep(max(0.0, warm_end - time.perf_counter()))
            self.warm = False
            self.rss_start_t = time.perf_counter()
            self.sample()

        clients = [self.client(i, c, deadline) for i, c in enumerate(conns)]
        await asyncio.gather(end_warmup(), self.sampler(deadline), *clients)
        self.load_s = time.perf_counter() - self.t_start
        self.sample()  # the end
        for c in conns:
            await c.close()


# ---------------------------------------------------------------------------- verification
def metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


async def verify(soak: Soak, seq_start: int, version_start: int) -> dict[str, Any]:
    """Read the state on a connection to each worker; compare with what was acknowledged."""
    exp = soak.expected
    want_seq = seq_start + exp.writes
    conns = await connect_spread("127.0.0.1", soak.server.port, soak.workers, len(soak.workers))
    out: dict[str, Any] = {"want_seq": want_seq, "workers": []}
    deadline = time.perf_counter() + 15
    healths: list[dict[str, Any]] = []
    while True:  # the followers apply what the other workers wrote: give them a moment
        healths = [(await c.request("GET", "/health")).json() for c in conns]
        seqs = [h["log"]["seq"] for h in healths]
        if all(s >= want_seq for s in seqs) or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.2)
    for conn, health in zip(conns, healths, strict=True):
        w: dict[str, Any] = {"pid": conn.worker, "seq": health["log"]["seq"],
                             "status": health["status"],
                             "weights_version": health["weights_version"],
                             "resets": health["log"]["resets"],
                             "events_lost": health["log"]["events_lost"],
                             "events_missing": health["log"]["events_missing"]}
        metrics = (await conn.request("GET", "/metrics")).body.decode()
        w["events_written"] = metric(metrics, "gyrophare_events_written")
        w["follower_errors"] = metric(metrics, "gyrophare_follower_errors")
        traffic = (await conn.request("GET", "/v1/traffic")).json()
        ids = {e["id"] for e in traffic["entries"]}
        w["entries"] = len(ids)
        w["missing_entries"] = sorted(set(exp.live_entries) - ids)
        w["resurrected_entries"] = sorted(exp.deleted_entries & ids)
        ambulances = {a["ambulance_id"]
                      for a in (await conn.request("GET", "/v1/ambulances")).json()}
        w["ambulances"] = len(ambulances)
        w["missing_ambulances"] = sorted(exp.open_ambulances - ambulances)
        w["resurrected_ambulances"] = sorted(exp.closed_ambulances & ambulances)
        hospitals = {h["id"]: h for h in (await conn.request("GET", "/v1/hospitals")).json()}
        w["stale_hospital_status"] = sorted(
            hid for hid, status in exp.hospital_status.items()
            if any(hospitals[hid][k] != v for k, v in status.items()))
        out["workers"].append(w)
    for c in conns:
        await c.close()
    out["version_start"] = version_start
    return out


# ---------------------------------------------------------------------------- report
def mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.1f}"


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.1f}" if values else "–"


def report(args: argparse.Namespace, soak: Soak, check: dict[str, Any], osm: Path,
           procs_end: dict[int, str], server_cpu: float, machine_busy: float,
           log_text: str, stop: str) -> tuple[list[str], bool]:
    exp = soak.expected
    total = sum(s.requests for s in soak.stats.values())
    fivexx = sum(s.classes["5xx"] for s in soak.stats.values())
    transport = sum(s.classes["transport"] for s in soak.stats.values())
    unexpected = sum(s.unexpected for s in soak.stats.values())
    workers = check["workers"]
    seqs = [w["seq"] for w in workers]
    lost_seq = max(0, check["want_seq"] - min(seqs))
    extra_seq = max(0, max(seqs) - check["want_seq"])
    missing = sum(len(w["missing_entries"]) + len(w["missing_ambulances"])
                  + len(w["stale_hospital_status"]) for w in workers)
    resurrected = sum(len(w["resurrected_entries"]) + len(w["resurrected_ambulances"])
                      for w in workers)
    lost = lost_seq + missing
    versions = sorted({w["weights_version"] for w in workers})
    written = [w["events_written"] for w in workers]
    written_sum = sum(x for x in written if x is not None)
    restarted = sorted(set(workers_of(soak.procs)) ^ set(workers_of(procs_end)))
    log_errors = [line for line in log_text.splitlines()
                  if re.search(r"Traceback|\bERROR\b|\berror\b|Exception", line)]
    ok = (fivexx == 0 and transport == 0 and unexpected == 0 and lost == 0 and extra_seq == 0
          and resurrected == 0 and len(versions) == 1 and not restarted
          and exp.replays_wrong == 0 and written_sum == exp.writes)

    start = soak.samples_at(soak.rss_start_t)
    end = soak.samples[-1][1]
    minutes = args.minutes
    label = "Redis" if args.store == "redis" else "embedded store"
    n = len(soak.workers)
    spread = Counter(soak.label(w) for w in soak.conn_workers)
    lines = [f"## Soak: {label}, {n} worker{'s' if n > 1 else ''}, {minutes:g} min "
             f"({osm.name})", "", "```bash", command_line(), "```", "",
             f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit()}; "
             f"{platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}; the load generator shares the cores",
             f"- load: {args.rate:g} requests/s on a fixed schedule over {args.clients} "
             f"keep-alive connections ("
             f"{', '.join(f'{k}: {v}' for k, v in sorted(spread.items()))}), {args.warmup:g} s "
             f"warm-up then {minutes:g} min; {total / soak.load_s:.1f} requests/s achieved, "
             f"{soak.late} sent more than 1 s late; server CPU {server_cpu:.2f} cores, "
             f"machine busy {machine_busy:.0%}",
             "- counts include the warm-up; latencies are after it; writes carry an "
             "Idempotency-Key; store: "
             + (f"Redis `{args.redis_url}`, fresh key prefix" if args.store == "redis"
                else "embedded (state file in a temporary folder)"),
             "", "| check | result |", "|---|---|",
             f"| requests | {total:,} |",
             f"| 5xx | {fivexx} |",
             f"| transport errors (connection dropped, timeout) | {transport} |",
             f"| statuses other than expected | {unexpected} |",
             f"| acknowledged writes | {exp.writes:,} ({exp.writes_after_warmup:,} after the "
             f"warm-up) + {exp.replays:,} replays answered from the idempotency store "
             f"({exp.replays_wrong} wrong) |",
             f"| lost writes | **{lost}** (log position {' / '.join(f'{s:,}' for s in seqs)} "
             f"for {check['want_seq']:,} expected; {missing} acknowledged effects missing on "
             f"a worker) |",
             f"| written twice | {extra_seq} (events written per worker, `/metrics`: "
             f"{' + '.join(f'{x:,.0f}' if x is not None else '?' for x in written)} = "
             f"{written_sum:,.0f}) |",
             f"| deleted / closed, yet back | {resurrected} |",
             f"| live state checked on each worker | {len(exp.live_entries)} traffic entries "
             f"({sum(v == 'closure' for v in exp.live_entries.values())} closures, "
             f"{sum(v == 'report' for v in exp.live_entries.values())} reports), "
             f"{len(exp.deleted_entries)} deleted closures absent, "
             f"{len(exp.open_ambulances)} ambulances en route, {len(exp.closed_ambulances)} "
             f"closed absent, {len(exp.hospital_status)} hospital statuses |",
             f"| weights_version at the end | "
             f"{' / '.join(str(w['weights_version']) for w in workers)} "
             f"({exp.traffic_writes} traffic writes from {check['version_start']}) |",
             f"| log resets, events lost or missing, follower errors | "
             f"{sum(w['resets'] for w in workers)}, {sum(w['events_lost'] for w in workers)}, "
             f"{sum(w['events_missing'] for w in workers)}, "
             f"{sum(w['follower_errors'] or 0 for w in workers):.0f} |",
             f"| worker restarts | {len(restarted) // 2} |",
             f"| server log: errors / tracebacks | {len(log_errors)} |",
             f"| stop | {stop} |",
             f"| **verdict** | **{'pass' if ok else 'FAIL'}** |", "",
             f"RSS, MB (start: after the warm-up; growth over "
             f"{exp.writes_after_warmup:,} writes and "
             f"{(soak.samples[-1][0] - soak.rss_start_t) / 60:.1f} min):", "",
             "| process | start | end | growth | per 1,000 writes | peak | "
             "trend (5 samples) |", "|---|---:|---:|---:|---:|---:|---|"]
    for pid, name in soak.procs.items():
        s, e = start.get(pid), end.get(pid)
        series = [sm[1].get(pid) for sm in soak.samples if sm[0] >= soak.rss_start_t]
        series = [x for x in series if x is not None]
        peak = max(series) if series else None
        growth = (e - s) if s is not None and e is not None else None
        per_k = (growth / max(exp.writes_after_warmup, 1) * 1000) if growth is not None else None
        idx = np.linspace(0, len(series) - 1, 5).round().astype(int) if series else []
        trend = " → ".join(mb(series[k]) for k in idx)
        lines.append(f"| {name} (pid {pid}) | {mb(s)} | {mb(e)} | "
                     f"{'+' if (growth or 0) >= 0 else ''}{mb(growth)} | "
                     f"{'+' if (per_k or 0) >= 0 else ''}{mb(per_k)} | {mb(peak)} | {trend} |")
    lines += ["", "| endpoint | requests | 2xx | 4xx | 5xx | transport | p50 ms | p99 ms | "
              "max ms |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = sorted(soak.stats, key=lambda k: -soak.stats[k].requests)
    for name in order:
        st = soak.stats[name]
        lat = st.latencies
        lines.append(f"| {name} | {st.requests:,} | {st.classes['2xx']:,} | "
                     f"{st.classes['4xx']:,} | {st.classes['5xx']} | {st.classes['transport']} "
                     f"| {pct(lat, 50)} | {pct(lat, 99)} | "
                     f"{f'{max(lat):.1f}' if lat else '–'} |")
    four = {s: n for name in order for s, n in soak.stats[name].statuses.items() if s >= 400}
    bad = ", ".join(f"{name} → {status} ×{n}" for (name, status), n in
                    sorted(soak.bad_seen.items()))
    how = {"GET /route/v1/driving": "400 NoRoute", "POST /v1/route": "200, status unreachable"}
    cut = " and ".join(f"{name} {n} ({how.get(name, '?')})"
                       for name, n in sorted(soak.unreachable.items()))
    lines += ["", f"4xx by status: {', '.join(f'{s} ×{n}' for s, n in sorted(four.items()))}. "
              + ("Dispatch 409 = no hospital could take the patient. "
                 if soak.stats.get("POST /v1/dispatch", EndpointStats()).statuses[409] else "")
              + "Pairs cut off by the live "
              f"closures (the pairs are joined on the bare map): {cut or 'none'}. "
              f"Bad inputs seen: {bad}."]
    notes = []
    if soak.unexpected_samples:
        notes.append("Unexpected statuses (first ones): " + "; ".join(soak.unexpected_samples))
    if soak.transport_samples:
        notes.append("Transport errors (first ones): " + "; ".join(soak.transport_samples))
    if log_errors:
        notes.append("Server log (first error lines): "
                     + "; ".join(f"`{line.strip()[:160]}`" for line in log_errors[:5]))
    for w in workers:
        for key in ("missing_entries", "resurrected_entries", "missing_ambulances",
                    "resurrected_ambulances", "stale_hospital_status"):
            if w[key]:
                notes.append(f"{soak.label(w['pid'])}: {key.replace('_', ' ')}: "
                             f"{', '.join(w[key][:10])}")
    if notes:
        lines += ["", *notes]
    return lines, ok


def command_line() -> str:
    """How this script was run (the interpreter relative to the current folder if inside)."""
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    return shlex.join([exe.as_posix(), Path(sys.argv[0]).as_posix(), *sys.argv[1:]])


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + local changes' if dirty else ''}"


# ---------------------------------------------------------------------------- main
async def read_json(port: int, path: str) -> Any:
    conn = await Conn("127.0.0.1", port).open()
    try:
        return (await conn.request("GET", path)).json()
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--osm", default=str(shared_data_dir() / "osm/monaco_osrm-bindings.osm.pbf"))
    ap.add_argument("--store", choices=("redis", "embedded"), default="redis")
    ap.add_argument("--workers", type=int, help="default: 2 on Redis, 1 embedded")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    ap.add_argument("--minutes", type=float, default=3.0, help="after the warm-up")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds of the same mix first")
    ap.add_argument("--rate", type=float, default=40.0, help="requests per second, in all")
    ap.add_argument("--clients", type=int, default=4, help="concurrent keep-alive connections")
    ap.add_argument("--sample-every", type=float, default=10.0, help="RSS sampling, seconds")
    ap.add_argument("--pairs", type=int, default=300, help="origin/destination pairs")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", help="write the Markdown table here")
    ap.add_argument("--append", action="store_true", help="append to --out")
    args = ap.parse_args(argv)
    workers = args.workers or (2 if args.store == "redis" else 1)
    if args.store == "embedded" and workers != 1:
        ap.error("the embedded store serves one worker")
    if args.minutes <= 0 or args.rate <= 0 or args.clients < 1 or args.warmup < 0:
        ap.error("--minutes, --rate, --clients must be positive")
    host = args.redis_url.split("://", 1)[-1].split("@")[-1].split("/")[0].rsplit(":", 1)[0]
    if args.store == "redis" and host not in ("127.0.0.1", "localhost", "[::1]"):
        ap.error("loopback only: --redis-url must point at 127.0.0.1")
    osm = Path(args.osm)
    if not osm.is_file():
        ap.error(f"map not found: {osm}")
    print(command_line(), file=sys.stderr)

    run_id = uuid.uuid4().hex[:8]
    prefix = f"gyrophare-soak-{run_id}"
    with tempfile.TemporaryDirectory(prefix="gyrophare-soak-") as tmp:
        env = {**os.environ, "GYROPHARE_CACHE_DIR": str(Path(tmp) / "cache"),
               "GYROPHARE_STATE_FILE": str(Path(tmp) / "state.jsonl"),
               "GYROPHARE_REDIS_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}
        env.pop("GYROPHARE_API_KEYS", None)
        env.pop("GYROPHARE_REDIS_URL", None)
        os.environ["GYROPHARE_CACHE_DIR"] = env["GYROPHARE_CACHE_DIR"]
        pairs = pick_pairs(osm, args.pairs, args.seed)
        points = road_points(osm, 200, args.seed)
        redis_url = args.redis_url if args.store == "redis" else None
        print(f"starting the server ({args.store}, {workers} worker{'s' if workers > 1 else ''})",
              file=sys.stderr)
        server = Server(osm, workers=workers, redis_url=redis_url, env=env)
        try:
            procs = server_processes(server)
            port = server.port
            hospitals = [h["id"] for h in asyncio.run(read_json(port, "/v1/hospitals"))]
            health = asyncio.run(read_json(port, "/health"))
            seq_start, version_start = health["log"]["seq"], health["weights_version"]
            soak = Soak(args, server, pairs, points, hospitals, procs, run_id)
            print(f"load: {args.rate:g} req/s, {args.clients} clients, {args.warmup:g} s + "
                  f"{args.minutes:g} min; processes {procs}", file=sys.stderr)
            m0, cpu0 = machine_ticks(), process_tree_seconds(server.proc.pid)
            asyncio.run(soak.run())
            m1, cpu1 = machine_ticks(), process_tree_seconds(server.proc.pid)
            tick = os.sysconf("SC_CLK_TCK")
            wall = (m1[0] - m0[0]) / tick / (os.cpu_count() or 1)
            server_cpu, busy = (cpu1 - cpu0) / wall, (m1[1] - m0[1]) / (m1[0] - m0[0])
            check = asyncio.run(verify(soak, seq_start, version_start))
            procs_end = server_processes(server)
        finally:
            log_fd = os.dup(server.log.fileno())  # Server.stop closes its log: keep a handle
            t0 = time.perf_counter()
            server.stop()
            stop = (f"exit {server.proc.returncode} after SIGINT in "
                    f"{time.perf_counter() - t0:.1f} s")
            with os.fdopen(log_fd, "rb") as log_file:
                log_file.seek(0)
                log_text = log_file.read().decode(errors="replace")
            if redis_url:
                cleanup_redis(redis_url, prefix)
    lines, ok = report(args, soak, check, osm, procs_end, server_cpu, busy, log_text, stop)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.append and out.exists():
            text = out.read_text().rstrip("\n") + "\n\n" + text
        else:
            text = f"{TITLE}\n\nProduced by `benchmarks/soak.py` (its docstring says what is " \
                   "checked and how).\n\n" + text
        out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
