"""Read OpenStreetMap sources into an :class:`Extract`: split roads into directed edges.

Readers:

* ``.osm.pbf``, ``.osm`` XML and ``.osm.gz`` / ``.osm.bz2`` through pyosmium (libosmium),
  one streaming pass plus the area pass for hospitals mapped as buildings;
* osmnx GraphML (optionally gzip-compressed) and in-memory osmnx ``MultiDiGraph``;
* a place name or bounding box, downloaded by osmnx (needs network; fails fast without).

OSM files also give turn restrictions (``type=restriction`` relations, interpreted by
:mod:`engine.extract.restrictions`) and traffic controls on nodes (signals, stop and give-way
signs, :func:`engine.extract.tags.interpret_control`); osmnx sources have neither restrictions
nor control directions.

Clipped extracts (a way that references nodes missing from the file) are cut at the missing
nodes instead of failing, as regional extracts always contain such ways at their border.
"""

from __future__ import annotations

import bz2
import gzip
import socket
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import SourceError
from engine.extract import tags as osm_tags
from engine.extract.restrictions import TurnRestriction, interpret_restriction, order_via_ways

ProgressFn = Callable[[str, int, int | None], None]


def _no_progress(stage: str, done: int, total: int | None) -> None:  # pragma: no cover
    return None


@dataclass(slots=True)
class OsmHospital:
    """An ``amenity=hospital`` object as mapped in OSM (nodes; ways/relations by centroid)."""

    osm_type: str
    osm_id: int
    name: str
    emergency: str | None
    lat: float
    lon: float

    @property
    def id(self) -> str:
        return f"osm-{self.osm_type}-{self.osm_id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "osm_type": self.osm_type,
            "osm_id": self.osm_id,
            "name": self.name,
            "emergency": self.emergency,
            "lat": self.lat,
            "lon": self.lon,
        }


@dataclass
class Extract:
    """Directed edges with their OSM geometry, before compilation into CSR arrays.

    Points are OSM nodes (or, for GraphML, geometry vertices without an id: ``osm_id = -1``).
    Every edge is a polyline of point indices; its first and last points become graph nodes.
    ``point_control`` holds the ``tags.CTRL_*`` bits of each point (signals, stop and give-way
    signs with their direction); ``point_signal`` is its ``CTRL_SIGNAL`` bit, kept for readers
    that predate it. ``restrictions`` are the turn restrictions for cars and emergency
    vehicles (OSM ids, not resolved against the edges: members may be missing from a clipped
    file) and ``restriction_skipped`` the ``(kind, reason)`` of those left out.
    """

    point_lat: list[float] = field(default_factory=list)
    point_lon: list[float] = field(default_factory=list)
    point_osm_id: list[int] = field(default_factory=list)
    point_signal: list[bool] = field(default_factory=list)
    point_control: list[int] = field(default_factory=list)
    edge_points: list[list[int]] = field(default_factory=list)
    edge_way: list[int] = field(default_factory=list)
    edge_highway: list[int] = field(default_factory=list)
    edge_speed: list[float] = field(default_factory=list)
    edge_flags: list[int] = field(default_factory=list)
    edge_name: list[str] = field(default_factory=list)
    edge_twin: list[int] = field(default_factory=list)
    #: guidance tags of each edge (JSON text, ``""`` when none: :func:`tags.guidance_info`)
    edge_info: list[str] = field(default_factory=list)
    hospitals: list[OsmHospital] = field(default_factory=list)
    restrictions: list[TurnRestriction] = field(default_factory=list)
    restriction_skipped: list[tuple[str, str]] = field(default_factory=list)

    def add_point(self, lat: float, lon: float, osm_id: int, signal: bool = False,
                  control: int = 0) -> int:
        self.point_lat.append(lat)
        self.point_lon.append(lon)
        self.point_osm_id.append(osm_id)
        self.point_signal.append(signal)
        self.point_control.append(control)
        return len(self.point_lat) - 1

    def add_edge_pair(
        self,
        points: list[int],
        way: int,
        highway: int,
        speeds: tuple[float, float],
        flags: tuple[int, int],
        name: str,
        *,
        both: bool = True,
        info: tuple[str, str] = ("", ""),
    ) -> None:
        """Add the edge along ``points`` and (``both``) its twin in the opposite direction,
        which carries ``F_REVERSED`` (``points`` follow the way's node order)."""
        first = len(self.edge_points)
        self.edge_points.append(points)
        self.edge_way.append(way)
        self.edge_highway.append(highway)
        self.edge_speed.append(speeds[0])
        self.edge_flags.append(flags[0])
        self.edge_name.append(name)
        self.edge_twin.append(first + 1 if both else -1)
        self.edge_info.append(info[0])
        if both:
            self.edge_points.append(points[::-1])
            self.edge_way.append(way)
            self.edge_highway.append(highway)
            self.edge_speed.append(speeds[1])
            self.edge_flags.append(flags[1] | osm_tags.F_REVERSED)
            self.edge_name.append(name)
            self.edge_twin.append(first)
            self.edge_info.append(info[1])


# --------------------------------------------------------------------------------------------
# OSM files through pyosmium
@dataclass(slots=True)
class _RawWay:
    way_id: int
    rule: osm_tags.WayRule
    runs: list[list[tuple[int, float, float]]]  # pieces of (osm id, lat, lon) with locations


def _runs_with_locations(way: Any) -> list[list[tuple[int, float, float]]]:
    """Cut a way at nodes missing from the extract (clipped at the file border)."""
    runs: list[list[tuple[int, float, float]]] = []
    current: list[tuple[int, float, float]] = []
    for n in way.nodes:
        loc = n.location
        if loc.valid():
            current.append((n.ref, loc.lat, loc.lon))
        else:
            if len(current) >= 2:
                runs.append(current)
            current = []
    if len(current) >= 2:
        runs.append(current)
    return runs


def read_osm_file(path: str | Path, *, progress: ProgressFn | None = None) -> Extract:
    """Read an OSM file (``.pbf``, ``.osm``, ``.osm.gz``, ``.osm.bz2``) into an :class:`Extract`.

    Raises
    ------
    SourceError
        If the file is missing or libosmium cannot parse it.
    """
    import osmium
    import shapely

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"OSM file not found: {path}")
    progress = progress or _no_progress
    # osm id -> (signal, barrier flags, control bits), only for nodes with one of them
    node_info: dict[int, tuple[bool, int, int]] = {}
    ways: list[_RawWay] = []
    hospitals: list[OsmHospital] = []
    restrictions: list[TurnRestriction] = []
    skipped: list[tuple[str, str]] = []
    wkb = osmium.geom.WKBFactory()
    count = 0
    try:
        # untagged objects (most nodes) are dropped in C++ after the location and area
        # handlers have used them: half the reading time on a city
        processor = (osmium.FileProcessor(str(path)).with_areas()
                     .with_filter(osmium.filter.EmptyTagFilter()))
        for obj in processor:
            count += 1
            if count % 200_000 == 0:
                progress("reading OSM", count, None)
            if isinstance(obj, osmium.osm.Node):
                tags = obj.tags
                if not len(tags):
                    continue
                highway = tags.get("highway")
                control = (osm_tags.interpret_control(dict(tags))
                           if highway in osm_tags.CONTROL_HIGHWAYS
                           else 0)
                barrier = 0
                if "barrier" in tags:
                    barrier = osm_tags.interpret_barrier(dict(tags))
                    control |= osm_tags.interpret_gate(dict(tags))
                if control or barrier:
                    node_info[obj.id] = (bool(control & osm_tags.CTRL_SIGNAL), barrier, control)
                if tags.get("amenity") == "hospital" and obj.location.valid():
                    hospitals.append(
                        OsmHospital("node", obj.id, tags.get("name") or "", tags.get("emergency"),
                                 obj.location.lat, obj.location.lon)
                    )
            elif isinstance(obj, osmium.osm.Way):
                if "highway" not in obj.tags:
                    continue
                rule = osm_tags.interpret_way(dict(obj.tags))
                if rule is None:
                    continue
                runs = _runs_with_locations(obj)
                if runs:
                    ways.append(_RawWay(obj.id, rule, runs))
            elif isinstance(obj, osmium.osm.Relation):
                rtype = obj.tags.get("type")
                if rtype is None or not rtype.startswith("restriction"):
                    continue
                found, skip = interpret_restriction(
                    obj.id, dict(obj.tags), [(m.type, m.ref, m.role) for m in obj.members]
                )
                restrictions.extend(found)
                skipped.extend(skip)
            elif isinstance(obj, osmium.osm.Area):
                if obj.tags.get("amenity") != "hospital":
                    continue
                try:
                    geom = shapely.from_wkb(wkb.create_multipolygon(obj))
                except Exception:  # incomplete polygon at the extract border
                    continue
                c = geom.representative_point() if not geom.centroid.within(geom) else geom.centroid
                osm_type = "way" if obj.from_way() else "relation"
                hospitals.append(
                    OsmHospital(osm_type, obj.orig_id(), obj.tags.get("name") or "",
                             obj.tags.get("emergency"), c.y, c.x)
                )
    except RuntimeError as exc:
        raise SourceError(f"cannot read OSM file {path}: {exc}") from exc
    progress("reading OSM", count, count)
    extract = _split_ways(ways, node_info, progress)
    extract.hospitals = hospitals
    extract.restrictions = _order_via_ways(restrictions, ways)
    extract.restriction_skipped = skipped
    return extract


def _order_via_ways(restrictions: list[TurnRestriction], ways: list[_RawWay]
                    ) -> list[TurnRestriction]:
    """Put the via ways of via-way restrictions in driving order (from-way to to-way), using
    the nodes of the road ways read; restrictions whose ways are unknown keep their order."""
    wanted = {w for r in restrictions if len(r.via_ways) > 1 for w in (r.from_way, *r.via_ways)}
    if not wanted:
        return restrictions
    nodes: dict[int, list[int]] = defaultdict(list)
    for w in ways:
        if w.way_id in wanted:
            nodes[w.way_id].extend(nid for run in w.runs for nid, _, _ in run)
    out = []
    for r in restrictions:
        if len(r.via_ways) > 1:
            order = order_via_ways(nodes.get(r.from_way), nodes, r.via_ways)
            if order != r.via_ways:
                r = replace(r, via_ways=order)
        out.append(r)
    return out


_CONTROLS = (osm_tags.CTRL_SIGNAL | osm_tags.CTRL_STOP | osm_tags.CTRL_GIVE_WAY
             | osm_tags.CTRL_GATE)


def _split_ways(
    ways: list[_RawWay],
    node_info: Mapping[int, tuple[bool, int, int]],
    progress: ProgressFn,
) -> Extract:
    """Split way runs at graph nodes (intersections, run ends, barriers, traffic controls)
    into directed edges.

    A traffic signal, stop or give-way sign becomes a graph node even where the road merely
    goes on, so that its delay falls on the turns through it, exactly where it stands (as
    OSRM's obstacles), and a route starting or ending next to it pays it or not.

    A barrier node that stops cars (a bollard) gets one copy per road end that meets it, and
    zero-length ``barrier`` edges join the copies: a car can drive up to the bollard from both
    sides but not through it, and an ambulance profile can open exactly that edge.
    """
    uses: dict[int, int] = defaultdict(int)
    for w in ways:
        for run in w.runs:
            for k, (nid, _, _) in enumerate(run):
                # a run end counts twice so it always becomes a graph node
                uses[nid] += 2 if k in (0, len(run) - 1) else 1
    ex = Extract()
    point_of: dict[int, int] = {}
    barrier_copies: dict[int, list[int]] = defaultdict(list)

    def point(nid: int, lat: float, lon: float, end: bool) -> int:
        info = node_info.get(nid)
        if end and info is not None and info[1]:
            p = ex.add_point(lat, lon, nid, info[0], info[2])
            barrier_copies[nid].append(p)
            return p
        known = point_of.get(nid)
        if known is not None:
            return known
        if info is None:
            p = ex.add_point(lat, lon, nid)
        else:
            p = ex.add_point(lat, lon, nid, info[0], info[2])
        point_of[nid] = p
        return p

    for i, w in enumerate(ways):
        rule = w.rule
        code = osm_tags.HIGHWAY_CODE[rule.highway]
        for run in w.runs:
            start = 0
            last = len(run) - 1
            for k in range(1, last + 1):
                nid = run[k][0]
                info = node_info.get(nid)
                is_node = k == last or uses[nid] > 1 or (
                    info is not None and (info[1] or info[2] & _CONTROLS))
                if not is_node:
                    continue
                pts = [point(*run[j], end=j in (start, k)) for j in range(start, k + 1)]
                ex.add_edge_pair(
                    pts, w.way_id, code, (rule.speed_forward, rule.speed_backward),
                    (rule.flags_forward, rule.flags_backward), rule.name, info=rule.info,
                )
                start = k
        if i % 5000 == 0:
            progress("splitting ways", i, len(ways))
    progress("splitting ways", len(ways), len(ways))

    for nid, copies in barrier_copies.items():
        flags = node_info[nid][1]
        for a in range(len(copies)):
            for b in range(a + 1, len(copies)):
                ex.add_edge_pair(
                    [copies[a], copies[b]], 0, osm_tags.HIGHWAY_CODE["barrier"],
                    (osm_tags.DEFAULT_SPEED_KMH["barrier"],) * 2, (flags, flags), "",
                )
    return ex


# --------------------------------------------------------------------------------------------
# osmnx graphs
def _edge_points_from_osmnx(ex: Extract, node_point: dict[Any, int], u: Any, v: Any,
                            data: Mapping[str, Any]) -> list[int]:
    geom = data.get("geometry")
    if geom is None:
        return [node_point[u], node_point[v]]
    coords = list(geom.coords)
    pts = [node_point[u]]
    for lon, lat in coords[1:-1]:
        pts.append(ex.add_point(float(lat), float(lon), -1, False))
    pts.append(node_point[v])
    return pts


def from_networkx(G: Any, *, progress: ProgressFn | None = None) -> Extract:
    """Convert an osmnx ``MultiDiGraph`` (downloaded, or read from GraphML) to an Extract.

    osmnx has already expanded one-way streets into directed edges, so edges against a one-way
    street are not available for contraflow; interior vertices of simplified edges carry no
    OSM id (``-1``) because osmnx does not keep them.
    """
    progress = progress or _no_progress
    ex = Extract()
    node_point: dict[Any, int] = {}
    for nid, d in G.nodes(data=True):
        try:
            lat, lon = float(d["y"]), float(d["x"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"graph node {nid!r} has no x/y coordinates") from exc
        digits = str(nid).lstrip("-")
        osm_id = int(nid) if digits.isascii() and digits.isdigit() else -1
        node_point[nid] = ex.add_point(lat, lon, osm_id, osm_tags.is_traffic_signal(d),
                                       osm_tags.interpret_control(d))
        if d.get("amenity") == "hospital":
            ex.hospitals.append(OsmHospital("node", osm_id, str(d.get("name", "")),
                                        d.get("emergency"), lat, lon))
    index: dict[tuple[Any, Any, int, float], int] = {}
    edges = list(G.edges(keys=True, data=True))
    for i, (u, v, _k, d) in enumerate(edges):
        tags = dict(d)
        tags["oneway"] = "no"  # direction is already expanded by osmnx
        rule = osm_tags.interpret_way(tags)
        if rule is None:
            continue
        flags = rule.flags_forward
        if str(d.get("oneway", "")).lower() in ("true", "1", "yes"):
            flags |= osm_tags.F_ONEWAY
        pts = _edge_points_from_osmnx(ex, node_point, u, v, d)
        way = osm_tags._first(d.get("osmid"))
        way_id = (int(way) if way is not None and str(way).lstrip("-").isascii()
                  and str(way).lstrip("-").isdigit() else 0)
        e = len(ex.edge_points)
        ex.add_edge_pair(pts, way_id, osm_tags.HIGHWAY_CODE[rule.highway],
                         (rule.speed_forward,) * 2,
                         (flags, flags), rule.name, both=False, info=rule.info)
        length = round(float(d.get("length", 0.0) or 0.0), 1)
        index[(u, v, way_id, length)] = e
        twin = index.get((v, u, way_id, length))
        if twin is not None and ex.edge_twin[twin] == -1:
            ex.edge_twin[twin] = e
            ex.edge_twin[e] = twin
        if i % 20000 == 0:
            progress("converting graph", i, len(edges))
    return ex


def read_graphml(path: str | Path, *, progress: ProgressFn | None = None) -> Extract:
    """Read an osmnx GraphML file (``.graphml`` or ``.graphml.gz``)."""
    import osmnx as ox

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"GraphML file not found: {path}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                G = ox.load_graphml(graphml_str=fh.read())
        elif path.suffix == ".bz2":
            with bz2.open(path, "rt", encoding="utf-8") as fh:
                G = ox.load_graphml(graphml_str=fh.read())
        else:
            G = ox.load_graphml(path)
    except (OSError, ValueError, KeyError) as exc:
        raise SourceError(f"cannot read GraphML {path}: {exc}") from exc
    return from_networkx(G, progress=progress)


#: OSM ``highway`` values downloaded for a place: everything :func:`osm_tags.road_class` may keep.
OVERPASS_FILTER = (
    '["highway"~"motorway|trunk|primary|secondary|tertiary|unclassified|residential|'
    'living_street|service|road|busway|pedestrian|track"]["area"!~"yes"]'
)


def _check_network(host: str = "overpass-api.de", timeout: float = 3.0) -> None:
    try:
        socket.setdefaulttimeout(timeout)
        socket.getaddrinfo(host, 443)
    except OSError as exc:
        raise SourceError(
            f"cannot reach {host} to download OpenStreetMap data ({exc}); "
            "this needs network access: use a local extract with --osm FILE instead"
        ) from exc
    finally:
        socket.setdefaulttimeout(None)


def download(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 20.0,
) -> Extract:
    """Download roads for a place name (``"Dijon, France"``) or a ``(west, south, east, north)``
    bounding box with osmnx, unsimplified so that every OSM node id is kept.

    Fails within seconds with :class:`SourceError` when the network is not reachable.
    """
    import osmnx as ox

    if (place is None) == (bbox is None):
        raise SourceError("give exactly one of place or bbox")
    _check_network("nominatim.openstreetmap.org" if place else "overpass-api.de")
    ox.settings.requests_timeout = timeout
    ox.settings.useful_tags_node = [*ox.settings.useful_tags_node, "barrier", "amenity"]
    ox.settings.useful_tags_way = sorted(
        set(ox.settings.useful_tags_way)
        | {"access", "motor_vehicle", "motorcar", "vehicle", "emergency", "psv", "bus",
           "busway", "service", "junction", "maxspeed:forward", "maxspeed:backward"}
    )
    try:
        if place is not None:
            G = ox.graph_from_place(place, custom_filter=OVERPASS_FILTER, simplify=False,
                                    retain_all=True)
        else:
            assert bbox is not None
            G = ox.graph_from_bbox(bbox, custom_filter=OVERPASS_FILTER, simplify=False,
                                   retain_all=True)
    except Exception as exc:  # osmnx raises requests / its own errors
        raise SourceError(f"download failed for {place or bbox}: {exc}") from exc
    ex = from_networkx(G, progress=progress)
    return ex


def extract_arrays(ex: Extract) -> dict[str, np.ndarray]:
    """Flatten edge polylines (for the compiler)."""
    lengths = np.fromiter((len(p) for p in ex.edge_points), dtype=np.int64,
                          count=len(ex.edge_points))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((q for p in ex.edge_points for q in p), dtype=np.int64,
                       count=int(offsets[-1]))
    return {"offsets": offsets, "flat": flat}
