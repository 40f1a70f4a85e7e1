"""gyrophare's engine: OpenStreetMap road graph, Numba shortest paths, routing.

Typical use::

    from engine import load_graph, Router
    graph = load_graph("monaco.osm.pbf")          # or None for the embedded sample city
    router = Router(graph)
    route = router.route((43.7384, 7.4246), (43.7313, 7.4197))
    route.duration_s, route.distance_m, route.osm_nodes, route.geometry

The names below are imported on first use (PEP 562): ``import engine.errors`` or a command
that never routes does not pay for numba, scipy and the routing modules.

Map data: © OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.errors import (
        CacheError,
        GyrophareError,
        InvalidCoordinate,
        PointOffNetwork,
        SourceError,
    )
    from engine.graph import RoadGraph, graph_stats
    from engine.io import load_graph, read_dimacs, sample_city_path, save_graph
    from engine.query import Isochrone, Route, Router, Table, Unreachable

__version__ = "0.1.0"

#: public name -> the module that defines it
_WHERE = {
    "CacheError": "engine.errors",
    "GyrophareError": "engine.errors",
    "InvalidCoordinate": "engine.errors",
    "PointOffNetwork": "engine.errors",
    "SourceError": "engine.errors",
    "RoadGraph": "engine.graph",
    "graph_stats": "engine.graph",
    "load_graph": "engine.io",
    "read_dimacs": "engine.io",
    "sample_city_path": "engine.io",
    "save_graph": "engine.io",
    "Isochrone": "engine.query",
    "Route": "engine.query",
    "Router": "engine.query",
    "Table": "engine.query",
    "Unreachable": "engine.query",
}

__all__ = [
    "CacheError",
    "GyrophareError",
    "InvalidCoordinate",
    "Isochrone",
    "PointOffNetwork",
    "RoadGraph",
    "Route",
    "Router",
    "SourceError",
    "Table",
    "Unreachable",
    "graph_stats",
    "load_graph",
    "read_dimacs",
    "sample_city_path",
    "save_graph",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
