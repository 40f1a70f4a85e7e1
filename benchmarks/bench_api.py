"""HTTP load benchmark: ``gyrophare serve`` on a map, hit by concurrent route requests.

Usage::

    python benchmarks/bench_api.py                       # Monaco, 3,000 requests, 16 in flight
    python benchmarks/bench_api.py --requests 1000 --concurrency 8 --out results/api.md
    python benchmarks/bench_api.py --profile             # + where one request's time goes

For each case — embedded store with 1 worker, Redis store with 1 and with 2 workers — the
script starts ``python -m api.cli serve`` as a subprocess on a free loopback port, waits
for ``/health``, then fires ``--requests`` requests of ``POST /v1/route`` and as many of
``GET /route/v1/driving/...`` (random origin/destination near road nodes, fixed seed, only
pairs the engine can join), ``--concurrency`` in flight, with each load generator of
``--clients``: ``httpx`` (one ``httpx.AsyncClient``) and ``raw`` (a minimal HTTP/1.1
keep-alive client on asyncio streams that uses about a tenth of httpx's CPU per request).
Every run stops by itself: after its request count or its ``--time-cap`` seconds, whichever
comes first; the server is then stopped. Loopback only; the Redis cases use database
``/15`` with a private key prefix, and remove the keys they created.

The load generator runs on the same machine as the server and takes CPU from it: on a
2-core machine the figures are a lower bound for the server alone (hence the raw client).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, loopback_url, service_env

from engine.io import load_graph, shared_data_dir

ROOT = Path(__file__).resolve().parent.parent
FLOOR_RPS, FLOOR_P99_MS = 500.0, 50.0
WARMUP_REQUESTS = 100


@dataclass
class Run:
    store: str
    workers: int
    client: str
    endpoint: str
    sent: int
    ok: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray
    capped: bool
    server_cpu: float = 0.0  #: cores used by the server during the run
    client_cpu: float = 0.0  #: cores used by the load generator
    other_cpu: float = 0.0  #: cores used by everything else on the machine

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def row(self) -> str:
        lat = self.latencies_ms
        p50, p99, worst = ((float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                            float(lat.max())) if len(lat) else (float("nan"),) * 3)
        meets = "yes" if self.rps >= FLOOR_RPS and p99 <= FLOOR_P99_MS else "no"
        cap = " (time cap)" if self.capped else ""
        return (f"| {self.store} | {self.workers} | {self.client} | {self.endpoint} | "
                f"{self.sent:,}{cap} | "
                f"{self.errors:,} | {self.rps:,.0f} | {p50:.1f} | {p99:.1f} | {worst:.1f} | "
                f"{meets} | {self.server_cpu:.2f} | {self.client_cpu:.2f} | "
                f"{self.other_cpu:.2f} |")


def cpu_busy(interval: float = 1.0) -> float:
    """Share of all cores busy over ``interval`` seconds (``/proc/stat``; 0 elsewhere)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except OSError:
        return 0.0
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def machine_ticks() -> tuple[int, int]:
    """(total, busy) clock ticks of all cores so far (``/proc/stat``)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields)
    return total, total - fields[3] - fields[4]


def process_tree_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live children."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(Exception):
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                             timeout=5).stdout.split()
        pids += [int(p) for p in out]
    seconds = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            seconds += (int(fields[11]) + int(fields[12])) / tick
    return seconds


def self_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def settle(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (at most ``max_wait`` s) until other processes leave the cores idle; returns the
    busy share seen last (what the run starts with)."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_pairs(osm: Path, n: int, seed: int) -> list[tuple[list[float], list[float]]]:
    """``n`` (origin, destination) ``[lon, lat]`` pairs a car can drive, near road nodes."""
    from engine.query import Router

    graph = load_graph(osm)
    router = Router(graph)
    rng = np.random.default_rng(seed)
    nodes = np.unique(graph.tail[np.isfinite(router.weights("car").values)])
    pairs: list[tuple[list[float], list[float]]] = []
    while len(pairs) < n:
        a, b = rng.choice(nodes, 2)
        o = [float(graph.lon[a] + rng.normal(0, 1e-4)), float(graph.lat[a] + rng.normal(0, 1e-4))]
        d = [float(graph.lon[b] + rng.normal(0, 1e-4)), float(graph.lat[b] + rng.normal(0, 1e-4))]
        try:
            if router.route((o[1], o[0]), (d[1], d[0])).reachable:
                pairs.append((o, d))
        except Exception:  # a jittered point off the network: draw again
            continue
    return pairs


class Server:
    """``gyrophare serve`` in a subprocess (own process group), stopped on exit."""

    def __init__(self, osm: Path, *, workers: int, redis_url: str | None, env: dict[str, str],
                 startup_s: float = 180.0, launcher: list[str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # ``launcher`` replaces ``python -m api.cli`` (the command before ``serve``)
        cmd = [*(launcher or [sys.executable, "-m", "api.cli"]), "serve", "--osm", str(osm),
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        if redis_url:
            cmd += ["--redis-url", redis_url]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.workers = workers
        self._wait(startup_s)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    if self.workers > 1:
                        self._wait_all_workers(deadline)
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not healthy after {timeout:.0f} s:\n{self.output()}")

    def _wait_all_workers(self, deadline: float) -> None:
        """With several workers /health answers as soon as one is up (a worker accepts
        connections only once its graph is loaded and its kernels warm): wait until every
        worker process exists, then a few seconds for the last one to get ready."""
        until = min(deadline, time.monotonic() + 60)
        while time.monotonic() < until:
            with contextlib.suppress(Exception):
                out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                     text=True, timeout=5).stdout.split()
                if len(out) >= self.workers:
                    break
            time.sleep(0.2)
        time.sleep(5.0)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script started
                self.proc.wait(timeout=10)
        self.log.close()


Spec = tuple[str, str, bytes | None]  # method, path, JSON body


async def fire(base: str, spec: Callable[[int], Spec], n: int, concurrency: int,
               time_cap: float, client_kind: str) -> tuple[int, int, int, float, np.ndarray]:
    """``n`` requests, ``concurrency`` in flight; stop early at ``time_cap`` seconds.
    Returns (sent, ok, errors, seconds, latencies in ms)."""
    url = httpx.URL(base)
    send = (_HttpxSender(base, concurrency) if client_kind == "httpx"
            else _RawSender(url.host, url.port or 80))
    latencies: list[float] = []
    counters = {"sent": 0, "ok": 0, "errors": 0}

    async def run(count: int, deadline: float, record: bool) -> None:
        next_i = 0

        async def worker(w: int) -> None:
            nonlocal next_i
            while next_i < count and time.perf_counter() < deadline:
                i = next_i
                next_i += 1
                t0 = time.perf_counter()
                try:
                    good = await send(spec(i), w) == 200
                except (OSError, httpx.HTTPError, asyncio.IncompleteReadError, ValueError):
                    good = False
                if record:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    counters["sent"] += 1
                    counters["ok" if good else "errors"] += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))

    try:
        if isinstance(send, _RawSender):
            await send.connect_all(concurrency)
        # warm-up: connections, the first requests of each worker; not counted
        await run(WARMUP_REQUESTS, time.perf_counter() + time_cap, record=False)
        start = time.perf_counter()
        await run(n, start + time_cap, record=True)
        elapsed = time.perf_counter() - start
    finally:
        await send.close()
    return (counters["sent"], counters["ok"], counters["errors"], elapsed,
            np.array(latencies))


class _HttpxSender:
    """One ``httpx.AsyncClient`` with ``concurrency`` keep-alive connections."""

    def __init__(self, base: str, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency,
                              max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(base_url=base, limits=limits, timeout=30)

    async def __call__(self, spec: Spec, worker: int) -> int:
        method, path, body = spec
        headers = {"content-type": "application/json"} if body is not None else None
        response = await self.client.request(method, path, content=body, headers=headers)
        return response.status_code

    async def close(self) -> None:
        await self.client.aclose()


class _RawSender:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one connection per worker:
    a tenth of httpx's CPU per request, so the server gets more of the shared cores.
    Enough for uvicorn's answers (status line, headers, Content-Length body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def __call__(self, spec: Spec, worker: int) -> int:
        method, path, body = spec
        conn = self.conns.get(worker)
        if conn is None:
            conn = self.conns[worker] = await asyncio.open_connection(self.host, self.port)
        reader, writer = conn
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            writer.write(head.encode() + b"\r\n" + (body or b""))
            await writer.drain()
            header = await reader.readuntil(b"\r\n\r\n")
            status = int(header.split(b" ", 2)[1])
            length = 0
            for line in header.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.conns.pop(worker, None)
            writer.close()
            raise
        return status

    async def connect_all(self, count: int, pause: float = 0.02) -> None:
        """Open the connections one at a time: a burst of connects is accepted by whichever
        uvicorn worker wakes first (asyncio accepts a whole backlog per wake-up), and
        keep-alive connections stay with the worker that accepted them."""
        for w in range(count):
            if w not in self.conns:
                self.conns[w] = await asyncio.open_connection(self.host, self.port)
                await asyncio.sleep(pause)

    async def close(self) -> None:
        for _, writer in self.conns.values():
            writer.close()
        self.conns.clear()


def requests_for(pairs: list[tuple[list[float], list[float]]]
                 ) -> dict[str, Callable[[int], Spec]]:
    def post_route(i: int) -> Spec:
        o, d = pairs[i % len(pairs)]
        body = json.dumps({"origin": o, "destination": d, "profile": "car"}).encode()
        return ("POST", "/v1/route", body)

    def osrm_route(i: int) -> Spec:
        o, d = pairs[i % len(pairs)]
        return ("GET", f"/route/v1/driving/{o[0]:.6f},{o[1]:.6f};{d[0]:.6f},{d[1]:.6f}", None)

    return {"POST /v1/route": post_route, "GET /route/v1/driving": osrm_route}


def cleanup_redis(url: str, prefix: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    except Exception as exc:  # pragma: no cover - best effort
        print(f"note: could not remove the benchmark's Redis keys: {exc}", file=sys.stderr)


def profile_one(osm: Path, pairs, repeat: int) -> list[str]:
    """Where one request's time goes, in-process: engine, OSRM handler body, the whole
    FastAPI stack (TestClient, sequential; TestClient itself costs ~2 ms, see the trivial
    endpoint row), and cProfile's top functions of the handler body."""
    import cProfile
    import io
    import pstats

    from fastapi.testclient import TestClient
    from starlette.requests import Request

    from api.app import create_app
    from api.routers import osrm
    from api.settings import Settings
    from api.store import EmbeddedStore

    app = create_app(Settings(), graph=load_graph(osm), store=EmbeddedStore(None))
    lines = ["", "## Where one request's time goes (in-process, sequential)", ""]
    with TestClient(app) as client:
        state = app.state.live
        router = state.router

        def timed(fn) -> float:
            times = []
            for i in range(repeat):
                t0 = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - t0)
            return float(np.median(times) * 1000)

        def path(i: int) -> str:
            o, d = pairs[i % len(pairs)]
            return f"{o[0]:.6f},{o[1]:.6f};{d[0]:.6f},{d[1]:.6f}"

        def request(i: int) -> Request:
            return Request({"type": "http", "method": "GET", "path": "/route/v1/driving/",
                            "query_string": b"", "headers": [], "app": app})

        stages = [
            ("engine Router.route (snap, search, geometry)",
             lambda i: router.route((pairs[i % len(pairs)][0][1], pairs[i % len(pairs)][0][0]),
                                    (pairs[i % len(pairs)][1][1], pairs[i % len(pairs)][1][0]))),
            ("OSRM handler body (parse, route, response dict)",
             lambda i: osrm._route(state, request(i), "v1", "driving", path(i))),
            ("GET /route/v1/driving via TestClient (whole stack)",
             lambda i: client.get(f"/route/v1/driving/{path(i)}")),
            ("POST /v1/route via TestClient (whole stack)",
             lambda i: client.post("/v1/route", json={"origin": pairs[i % len(pairs)][0],
                                                      "destination": pairs[i % len(pairs)][1],
                                                      "profile": "car"})),
            ("GET / via TestClient (framework floor: trivial sync endpoint)",
             lambda i: client.get("/")),
        ]
        lines += ["| stage | median ms |", "|---|---:|"]
        for name, fn in stages:
            lines.append(f"| {name} | {timed(fn):.3f} |")
        prof = cProfile.Profile()
        prof.enable()
        for i in range(repeat):
            osrm._route(state, request(i), "v1", "driving", path(i))
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        kept = [line[:150] for line in buf.getvalue().splitlines() if line.strip()]
        lines += ["", f"cProfile of the OSRM handler body ({repeat} calls in the main thread, "
                  "by own time; cProfile inflates small Python calls):", "", "```",
                  *kept[:24], "```"]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--osm", default=str(shared_data_dir() / "osm/monaco_osrm-bindings.osm.pbf"))
    ap.add_argument("--requests", type=int, default=3000, help="per endpoint and case")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--time-cap", type=float, default=60.0, help="seconds per run, at most")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--pairs", type=int, default=500, help="distinct origin/destination pairs")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    ap.add_argument("--cases", default="embedded:1,redis:1,redis:2",
                    help="store:workers list (embedded only with 1 worker)")
    ap.add_argument("--clients", default="httpx,raw",
                    help="load generators: httpx (httpx.AsyncClient) and/or raw (minimal "
                         "HTTP/1.1 on asyncio streams, far less CPU)")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="before each run, wait up to this many seconds for other processes "
                         "to leave the cores idle (shared machines)")
    ap.add_argument("--profile", action="store_true", help="also break one request down")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.time_cap <= 0:
        ap.error("--requests, --concurrency and --time-cap must be positive")
    if not loopback_url(args.redis_url):
        ap.error("loopback only: --redis-url must point at 127.0.0.1")
    osm = Path(args.osm)
    if not osm.is_file():
        ap.error(f"map not found: {osm}")

    with tempfile.TemporaryDirectory(prefix="gyrophare-bench-") as tmp:
        prefix = f"gyrophare-bench-{os.getpid()}"
        env = service_env(tmp, prefix)
        t0 = time.perf_counter()
        pairs = pick_pairs(osm, args.pairs, args.seed)
        print(f"{len(pairs)} reachable pairs picked in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        runs: list[Run] = []
        sequential: list[str] = []
        for case in args.cases.split(","):
            store, workers_s = case.split(":")
            workers = int(workers_s)
            redis_url = args.redis_url if store == "redis" else None
            print(f"case: {store} store, {workers} worker(s)", file=sys.stderr)
            server = Server(osm, workers=workers, redis_url=redis_url, env=env)
            try:
                probes = {"GET /": lambda i: ("GET", "/", None),
                          "GET /route/v1/driving": requests_for(pairs)["GET /route/v1/driving"]}
                seq = []
                for spec in probes.values():
                    _, _, _, _, lat = asyncio.run(fire(server.base, spec, 200, 1, 20, "raw"))
                    seq.append(float(np.percentile(lat, 50)) if len(lat) else float("nan"))
                sequential.append(f"| {store} | {workers} | {seq[0]:.2f} | {seq[1]:.2f} |")
                print(sequential[-1], file=sys.stderr)
                for client in args.clients.split(","):
                    for endpoint, spec in requests_for(pairs).items():
                        settle(args.settle)
                        tick = os.sysconf("SC_CLK_TCK")
                        m0, srv0, cli0 = (machine_ticks(),
                                          process_tree_seconds(server.proc.pid), self_seconds())
                        sent, ok, errors, seconds, lat = asyncio.run(
                            fire(server.base, spec, args.requests, args.concurrency,
                                 args.time_cap, client))
                        m1, srv1, cli1 = (machine_ticks(),
                                          process_tree_seconds(server.proc.pid), self_seconds())
                        wall = (m1[0] - m0[0]) / tick / (os.cpu_count() or 1)
                        busy = (m1[1] - m0[1]) / tick
                        run = Run(store, workers, client, endpoint, sent, ok, errors, seconds,
                                  lat, sent < args.requests,
                                  server_cpu=(srv1 - srv0) / wall,
                                  client_cpu=(cli1 - cli0) / wall,
                                  other_cpu=max(0.0, busy - (srv1 - srv0) - (cli1 - cli0)) / wall)
                        runs.append(run)
                        print(run.row(), file=sys.stderr)
            finally:
                server.stop()
                if redis_url:
                    cleanup_redis(redis_url, prefix)

    cores = os.cpu_count()
    lines = [f"# API load benchmark: {osm.name}", "",
             f"- {args.requests:,} requests per endpoint and case (after {WARMUP_REQUESTS} "
             f"warm-up requests), {args.concurrency} in flight; client `httpx` = one "
             "`httpx.AsyncClient`, `raw` = minimal HTTP/1.1 keep-alive client on asyncio "
             "streams (one connection per in-flight slot, opened one after the other); "
             f"time cap {args.time_cap:.0f} s per run; {len(pairs)} random origin/destination "
             f"pairs near road nodes that a car can join (seed {args.seed})",
             f"- server: `python -m api.cli serve` (uvicorn), loopback; Redis "
             f"`{args.redis_url}`; machine: {platform.machine()}, {cores} cores, Python "
             f"{platform.python_version()}",
             f"- **the load generator runs on the same {cores} cores as the server**: httpx "
             "spends ~1.5-2.5 ms of CPU per request (more than the server), the raw client "
             "much less; all figures are lower bounds for the server alone",
             f"- floor to meet: >= {FLOOR_RPS:.0f} routes/s with p99 <= {FLOOR_P99_MS:.0f} ms",
             "- `POST /v1/route` answers gyrophare's route (car profile, both ETAs, steps, "
             "signals, signal plan); `GET /route/v1/driving` the OSRM route (default options: "
             "simplified polyline overview, no steps)", "",
             "- several workers share one listening socket and asyncio accepts a whole backlog "
             "per wake-up: connections opened in a burst (httpx opens its pool that way) all "
             "land on one worker and stay there (keep-alive), so the second worker idles; the "
             "raw client opens its connections one at a time, which spreads them",
             "- CPU columns: cores used during the run (incl. warm-up) by the server (all its "
             "processes), the load generator, and everything else on the machine (other "
             f"jobs of a shared machine; the script waits up to {args.settle:.0f} s for them to "
             "go idle before each run)", "",
             "| store | workers | client | endpoint | requests | errors | req/s | p50 ms | "
             "p99 ms | max ms | meets floor | server cores | client cores | other cores |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
             *[run.row() for run in runs], "",
             "Sequential latency (one request in flight, raw client, 200 requests): what one "
             "request costs without queueing. With several workers every keep-alive request "
             "waits for the client's delayed ACK (~40 ms) when the accepted sockets lack "
             "TCP_NODELAY (uvicorn's multi-worker listener is created with protocol 0, and "
             "asyncio then skips TCP_NODELAY: uvicorn issue #3149).", "",
             "| store | workers | GET / p50 ms | GET /route/v1/driving p50 ms |",
             "|---|---:|---:|---:|", *sequential]
    if args.profile:
        lines += profile_one(osm, pairs, 300)
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
