"""Start-up: ``gyrophare serve`` says what it is doing (:mod:`engine.progress`), and the
kernel plan of :mod:`engine.warmup` holds together (no timing here:
``benchmarks/bench_startup.py``)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from engine.progress import StartupLog
from engine.warmup import (
    GROUPS,
    KernelCompiler,
    _TinyGraph,
    probe,
    tiny_topology,
    warm_map,
)

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("loading the map", "building the turn graph", "routing hierarchy (CCH)",
          "router (snapping grid, reachability)", "kernels ready")


def _warm_cache(router) -> None:
    """Every at-start group in numba's on-disk cache (this process compiles what it lacks),
    so that the processes started below load them and stay quick."""
    for g in GROUPS:
        if g.at_start and g.name != "map":
            g.warm()
    warm_map(router)


def test_tiny_topology_is_what_the_build_gives() -> None:
    """The written-down topology of the tiny graph is the one the contraction builds."""
    from engine.cch.topology import TOPOLOGY_FIELDS, CCHTopology

    built, written = CCHTopology.build(_TinyGraph()), tiny_topology()
    for name in TOPOLOGY_FIELDS:
        a, b = getattr(built, name), getattr(written, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert (built.key, built.undirected_arcs) == (written.key, written.undirected_arcs)


def test_groups_are_named_once_and_depend_on_earlier_ones() -> None:
    names = [g.name for g in GROUPS]
    assert len(set(names)) == len(names)
    for i, g in enumerate(GROUPS):
        assert set(g.after) <= set(names[:i]), g.name
    assert [g.at_start for g in GROUPS] == sorted((g.at_start for g in GROUPS), reverse=True)


def test_probe_on_an_empty_cache_compiles_nothing(tmp_path: Path) -> None:
    """A cold probe stops at the first kernel that would compile, and compiles nothing."""
    code = ("import numba\nfrom engine.warmup import GROUPS, probe\n"
            "from numba.core.dispatcher import Dispatcher\nimport engine.kernels.checks as c\n"
            "print(probe(GROUPS[0]), sum(len(v.overloads) for v in vars(c).values() "
            "if isinstance(v, Dispatcher)))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "0"]


def test_start_engine_prints_a_line_per_stage(monaco_path: Path, monaco_router) -> None:
    """In process: the server's start (map, turn graph, hierarchy, kernels, router) writes
    one line per stage, each with its time."""
    from api.app import start_engine
    from api.settings import Settings

    _warm_cache(monaco_router)
    out = io.StringIO()
    log = StartupLog(out)
    compiler = KernelCompiler(log, workers=1, map_spec={"source": str(monaco_path)})
    try:
        compiler.begin()
        graph, router = start_engine(Settings(osm=str(monaco_path)), log, compiler)
    finally:
        compiler.close()
    lines = out.getvalue().splitlines()
    for stage in STAGES:
        assert any(line.startswith(f"gyrophare: {stage}") and line.endswith(" s)")
                   for line in lines), (stage, lines)
    assert router.graph is graph and set(compiler.ready) == {g.name for g in GROUPS
                                                               if g.at_start}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_its_progress_then_answers(monaco_path: Path, monaco_router,
                                                tmp_path: Path) -> None:
    """``gyrophare serve`` as a real process: its progress lines on stderr, in order,
    then ``/health`` answers."""
    _warm_cache(monaco_router)
    port = _free_port()
    env = dict(os.environ, GYROPHARE_STATE_FILE=str(tmp_path / "state.jsonl"),
               GYROPHARE_COMPILE_WORKERS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())",
         "serve", "--osm", str(monaco_path), "--port", str(port)], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("gyrophare: ready in"):
                break
        assert any(line.startswith("gyrophare: ready in") for line in lines), lines
        seen = [next(i for i, line in enumerate(lines) if line.startswith(f"gyrophare: {s}"))
                for s in STAGES]
        assert seen == sorted(seen)
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                            timeout=5) as answer:
                    assert answer.status == 200
                    assert json.loads(answer.read())
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("no answer from /health")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_probe_after_warm_up_loads_everything(monaco_router) -> None:
    """Once compiled, every at-start group (but the map's) probes true: nothing compiles."""
    _warm_cache(monaco_router)
    assert all(probe(g) for g in GROUPS if g.at_start and g.name != "map")
