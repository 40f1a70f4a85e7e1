"""Vehicle profiles: base weight arrays per vehicle and metric, computed vectorised.

Issue #2 needs the ordinary ``car`` on free-flow speeds; the ambulance profile and live
traffic build on the same arrays (the graph never changes, only weights do).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from engine.graph import RoadGraph

Metric = Literal["time", "distance"]
METRICS: tuple[str, ...] = ("time", "distance")


def car_weights(graph: RoadGraph, metric: Metric = "time") -> np.ndarray:
    """Weights for an ordinary car: free-flow seconds (or metres), ``inf`` where cars may not go
    (one-way against traffic, access=no/private, bollards, pedestrian zones)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    base = graph.time_s if metric == "time" else graph.length_m
    return np.where(graph.car_allowed(), base, np.inf).astype(np.float64)
