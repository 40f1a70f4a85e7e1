"""Shared fixtures: real extracts from ../shared/data (or $GYROPHARE_DATA_DIR).

Outside CI a test needing a missing file is skipped with the reason; with ``CI=true`` it fails,
so a CI machine without the data can never go green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.io import load_graph, shared_data_dir

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def road_midpoint_pairs(graph, n: int, seed: int) -> list[tuple[tuple[float, float], ...]]:
    """``n`` random ``((lat, lon), (lat, lon))`` pairs at the middle of car roads longer than
    5 m (seeded): what the guidance tests route between."""
    rng = np.random.default_rng(seed)
    car = np.flatnonzero(graph.car_allowed() & (graph.length_m > 5.0))
    out = []
    for _ in range(n):
        a, b = rng.choice(car, 2)
        out.append(tuple((float(graph.lat[graph.tail[e]] + graph.lat[graph.head[e]]) / 2,
                          float(graph.lon[graph.tail[e]] + graph.lon[graph.head[e]]) / 2)
                         for e in (a, b)))
    return out


def shared_file(relative: str) -> Path:
    path = shared_data_dir() / relative
    if not path.is_file():
        message = f"real data file missing: {path} (set GYROPHARE_DATA_DIR)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test run builds into a private graph cache, never the user's."""
    path = tmp_path_factory.mktemp("graph-cache")
    os.environ["GYROPHARE_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def monaco_path() -> Path:
    return shared_file("osm/monaco_osrm-bindings.osm.pbf")


@pytest.fixture(scope="session")
def andorra_path() -> Path:
    return shared_file("osm/andorra_graphhopper.osm.pbf")


@pytest.fixture(scope="session")
def monaco(monaco_path: Path):
    return load_graph(monaco_path)


@pytest.fixture(scope="session")
def andorra(andorra_path: Path):
    return load_graph(andorra_path)


@pytest.fixture(scope="session")
def monaco_router(monaco):
    from engine.query import Router

    return Router(monaco)
