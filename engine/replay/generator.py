"""Incident streams: the calls of a scenario, listed or generated from a documented model.

Model of one generated stream (``incidents.streams[i]`` in a scenario):

- **When**: a Poisson process whose rate (calls per hour) is piecewise constant — a constant
  ``per_hour``, ``piecewise`` segments ``{from, per_hour}``, or a ``daily`` profile (``per_day``
  spread over 24 hourly weights, hours counted in the time zone of the scenario's ``start``).
  On each constant piece ``[a, b)`` the number of calls is Poisson(rate x (b - a)) and their
  times are uniform on the piece (the textbook construction, exact).
- **Where**: an area is drawn with probability proportional to its ``weight`` (e.g. a
  population figure written in the scenario), then a point uniformly inside the area's
  polygon (rejection sampling in its bounding box). Areas are GeoJSON polygons or commune
  outlines read at run time from a boundaries file by INSEE code. When a road graph is
  available the point must also lie within ``max_snap_m`` of a road an ambulance may use
  (a call from the middle of a park or the sea is redrawn in the same area).
- **What**: a need (EDXL-HAVE bed type, capability) and a severity drawn from the ``mix``
  with probabilities proportional to the weights.

Randomness comes from ``numpy.random.default_rng`` seeded with ``SeedSequence([seed, i])``
for stream ``i``: the same scenario and seed give the same calls on every machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from engine.replay.scenario import (
    Area,
    IncidentEvent,
    Scenario,
    ScenarioError,
    Stream,
    expand_path,
    parse_duration,
)

Accept = Callable[[float, float], bool]
_BOUNDARIES: dict[str, dict[str, tuple[str, Any]]] = {}
MAX_BATCHES = 200
BATCH = 32


@dataclass(frozen=True)
class Incident:
    """One call: when (seconds from the start), where, what the patient needs."""

    id: str
    t: float
    lat: float
    lon: float
    bed_type: str | None = None
    capability: str | None = None
    severity: str = ""
    stream: str = "timeline"
    area: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_boundaries(path: Path) -> dict[str, tuple[str, Any]]:
    """``{INSEE code: (name, shapely geometry)}`` from a communes GeoJSON (cached)."""
    key = str(path)
    if key not in _BOUNDARIES:
        data = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, tuple[str, Any]] = {}
        for feat in data.get("features", []):
            props = feat.get("properties") or {}
            code = str(props.get("code", props.get("insee", "")))
            if code:
                out[code] = (str(props.get("nom", props.get("name", code))),
                             shapely.geometry.shape(feat["geometry"]))
        _BOUNDARIES[key] = out
    return _BOUNDARIES[key]


@dataclass
class _Area:
    label: str
    geom: Any
    weight: float
    path: str


def resolve_areas(scenario: Scenario, areas: Sequence[Area], path: str) -> list[_Area]:
    """Shapely geometries of the areas (commune outlines read from the boundaries file)."""
    spec = scenario.model.incidents
    out: list[_Area] = []
    table = None
    for k, a in enumerate(areas):
        where = f"{path}[{k}]"
        if a.commune is not None:
            if table is None:
                bpath = expand_path(spec.boundaries)
                if not bpath.is_file():
                    raise ScenarioError([f"incidents.boundaries: file not found: {bpath} (a "
                                         "path relative to the shared data dir, see "
                                         "$GYROPHARE_DATA_DIR)"], name=scenario.name)
                table = load_boundaries(bpath)
            if a.commune not in table:
                raise ScenarioError([f"{where}.commune: INSEE code {a.commune!r} is not in "
                                     f"{spec.boundaries}"], name=scenario.name)
            name, geom = table[a.commune]
            out.append(_Area(a.name or name, geom, a.weight, where))
        else:
            assert a.geometry is not None  # (the scenario model requires commune or geometry)
            out.append(_Area(a.label, shapely.geometry.shape(a.geometry), a.weight, where))
        shapely.prepare(out[-1].geom)
    return out


def rate_pieces(scenario: Scenario, stream: Stream) -> list[tuple[float, float, float]]:
    """Constant pieces ``(a, b, calls per hour)`` of a stream's rate, in seconds from start."""
    lo = scenario.offset(stream.start)
    hi = scenario.offset(stream.end) if stream.end is not None else scenario.duration_s
    rate = stream.rate
    pieces: list[tuple[float, float, float]] = []
    if rate.per_hour is not None:
        pieces = [(lo, hi, float(rate.per_hour))]
    elif rate.piecewise is not None:
        starts = [scenario.offset(seg.from_) for seg in rate.piecewise]
        for k, seg in enumerate(rate.piecewise):
            a = starts[k]
            b = starts[k + 1] if k + 1 < len(starts) else hi
            pieces.append((max(a, lo), min(b, hi), float(seg.per_hour)))
    elif rate.daily is not None:
        weights = np.asarray(rate.daily.hourly, dtype=float)
        per_hour = rate.daily.per_day * weights / weights.sum()
        local = scenario.model.start  # its own UTC offset: "hours of the day" there
        t = lo
        while t < hi:
            now = local + timedelta(seconds=t)
            next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            b = min(hi, t + (next_hour - now).total_seconds())
            pieces.append((t, b, float(per_hour[now.hour])))
            t = b
    return [(a, b, r) for a, b, r in pieces if b > a and r > 0]


def _point_in(area: _Area, rng: np.random.Generator, accept: Accept | None,
              max_snap_m: float, scenario: Scenario) -> tuple[float, float]:
    x0, y0, x1, y1 = area.geom.bounds
    for _ in range(MAX_BATCHES):
        xs = x0 + rng.random(BATCH) * (x1 - x0)
        ys = y0 + rng.random(BATCH) * (y1 - y0)
        inside = shapely.contains_xy(area.geom, xs, ys)
        for x, y in zip(xs[inside], ys[inside], strict=True):
            if accept is None or accept(float(y), float(x)):
                return float(y), float(x)
    raise ScenarioError([f"{area.path} ({area.label}): no point inside it lies within "
                         f"{max_snap_m:g} m of a road usable by ambulances after "
                         f"{MAX_BATCHES * BATCH} draws (an area off the map?)"],
                        name=scenario.name)


def generate(scenario: Scenario, seed: int, *, accept: Accept | None = None
             ) -> list[Incident]:
    """The generated calls of every stream, in time order."""
    spec = scenario.model.incidents
    out: list[tuple[float, int, int, Incident]] = []
    for i, stream in enumerate(spec.streams):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, i]))
        path = f"incidents.streams[{i}].areas" if stream.areas else "incidents.areas"
        areas = resolve_areas(scenario, stream.areas or spec.areas or [], path)
        aw = np.array([a.weight for a in areas], dtype=float)
        aw /= aw.sum()
        mw = np.array([m.weight for m in stream.mix], dtype=float)
        mw /= mw.sum()
        times: list[np.ndarray] = []
        for a, b, per_hour in rate_pieces(scenario, stream):
            n = int(rng.poisson(per_hour * (b - a) / 3600.0))
            times.append(np.sort(a + rng.random(n) * (b - a)))
        t_all = np.concatenate(times) if times else np.zeros(0)
        for k, t in enumerate(t_all):
            area = areas[int(rng.choice(len(areas), p=aw))]
            mix = stream.mix[int(rng.choice(len(stream.mix), p=mw))]
            lat, lon = _point_in(area, rng, accept, spec.max_snap_m, scenario)
            inc = Incident(id=f"{stream.name}-{k + 1}", t=float(t), lat=lat, lon=lon,
                           bed_type=mix.need.bed_type, capability=mix.need.capability,
                           severity=mix.severity, stream=stream.name, area=area.label)
            out.append((float(t), i, k, inc))
    out.sort(key=lambda x: x[:3])
    return [x[3] for x in out]


def listed(scenario: Scenario) -> list[Incident]:
    """The calls written in the timeline (``type: incident``)."""
    out = []
    for i, ev in enumerate(scenario.model.timeline):
        if not isinstance(ev, IncidentEvent):
            continue
        out.append(Incident(id=ev.id or f"timeline-{i}", t=scenario.offset(ev.at),
                            lat=ev.location.lat, lon=ev.location.lon,
                            bed_type=ev.need.bed_type, capability=ev.need.capability,
                            severity=ev.severity, stream="timeline"))
    return out


def incidents(scenario: Scenario, seed: int, *, accept: Accept | None = None
              ) -> list[Incident]:
    """Every call of the scenario (listed and generated), in time order (stable)."""
    calls = listed(scenario) + generate(scenario, seed, accept=accept)
    return sorted(calls, key=lambda c: c.t)


def expected_calls(scenario: Scenario) -> float:
    """Expected number of generated calls (sum of rate x length over the pieces)."""
    total = 0.0
    for stream in scenario.model.incidents.streams:
        total += sum(r * (b - a) / 3600.0 for a, b, r in rate_pieces(scenario, stream))
    return total


def call_time(scenario: Scenario, incident: Incident) -> str:
    return (scenario.start + timedelta(seconds=incident.t)).astimezone(UTC).isoformat()


__all__ = ["Incident", "expected_calls", "generate", "incidents", "listed", "load_boundaries",
           "parse_duration", "rate_pieces", "resolve_areas"]
