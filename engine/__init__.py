"""gyrophare's engine: OpenStreetMap road graph, Numba shortest paths, routing.

Typical use::

    from engine import load_graph, Router
    graph = load_graph("monaco.osm.pbf")          # or None for the embedded sample city
    router = Router(graph)
    route = router.route((43.7384, 7.4246), (43.7313, 7.4197))
    route.duration_s, route.distance_m, route.osm_nodes, route.geometry

Map data: © OpenStreetMap contributors, ODbL 1.0.
"""

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
