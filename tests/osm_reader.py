"""An independent OSM reader for tests: imports nothing from ``engine``.

``read_osm`` reads ``.osm`` / ``.osm.gz`` / ``.osm.bz2`` with ElementTree and ``.pbf`` with
pyosmium's ``SimpleHandler`` into plain dicts. ``restrictions`` applies the OSM wiki rules
("Relation:restriction") in the most direct way, as an oracle for the engine's reader: no
time-condition handling beyond recording the condition text.
"""

from __future__ import annotations

import bz2
import gzip
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

Member = tuple[str, int, str]  # (type "n" / "w" / "r", ref, role)


@dataclass
class OsmData:
    nodes: dict[int, tuple[float, float]] = field(default_factory=dict)  # id -> (lat, lon)
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)  # tagged nodes only
    ways: dict[int, list[int]] = field(default_factory=dict)  # id -> node refs
    way_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    relations: list[tuple[int, dict[str, str], list[Member]]] = field(default_factory=list)


def read_osm(path: str | Path) -> OsmData:
    path = Path(path)
    if path.name.endswith(".pbf"):
        return _read_pbf(path)
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    data = OsmData()
    with opener(path, "rb") as fh:
        for _, elem in ET.iterparse(fh, events=("end",)):
            if elem.tag not in ("node", "way", "relation"):
                continue
            oid = int(elem.get("id"))
            tags = {t.get("k"): t.get("v") for t in elem.findall("tag")}
            if elem.tag == "node":
                if elem.get("lat") is not None:
                    data.nodes[oid] = (float(elem.get("lat")), float(elem.get("lon")))
                if tags:
                    data.node_tags[oid] = tags
            elif elem.tag == "way":
                data.ways[oid] = [int(nd.get("ref")) for nd in elem.findall("nd")]
                data.way_tags[oid] = tags
            else:
                members = [(m.get("type")[0], int(m.get("ref")), m.get("role") or "")
                           for m in elem.findall("member")]
                data.relations.append((oid, tags, members))
            elem.clear()
    return data


def _read_pbf(path: Path) -> OsmData:
    import osmium

    data = OsmData()

    class Handler(osmium.SimpleHandler):
        def node(self, n):
            if n.location.valid():
                data.nodes[n.id] = (n.location.lat, n.location.lon)
            if len(n.tags):
                data.node_tags[n.id] = {t.k: t.v for t in n.tags}

        def way(self, w):
            data.ways[w.id] = [nd.ref for nd in w.nodes]
            data.way_tags[w.id] = {t.k: t.v for t in w.tags}

        def relation(self, r):
            data.relations.append((r.id, {t.k: t.v for t in r.tags},
                                   [(m.type, m.ref, m.role) for m in r.members]))

    Handler().apply_file(str(path))
    return data


# ------------------------------------------------------------------------------ restrictions
KINDS = {"no_left_turn", "no_right_turn", "no_straight_on", "no_u_turn", "no_entry", "no_exit",
         "only_left_turn", "only_right_turn", "only_straight_on", "only_u_turn"}
CAR_KEYS = ["restriction:motorcar", "restriction:motor_vehicle", "restriction:vehicle",
            "restriction"]
EMERGENCY_KEYS = ["restriction:emergency", *CAR_KEYS]


@dataclass(frozen=True)
class RawRestriction:
    relation_id: int
    kind: str
    from_way: int
    to_way: int
    via_node: int | None
    via_ways: tuple[int, ...]
    car: bool
    emergency: bool
    condition: str | None = None  # the text after "@", or the legacy day_/hour_ tags


def restrictions(data: OsmData) -> list[RawRestriction]:
    out = []
    for rid, tags, members in data.relations:
        kind_type = tags.get("type", "")
        if kind_type != "restriction" and not kind_type.startswith("restriction:"):
            continue
        if kind_type.startswith("restriction:") and "restriction" in tags:
            # deprecated type=restriction:<mode> + restriction=<value>
            tags = {**tags, kind_type: tags["restriction"]}
            del tags["restriction"]
        for conditional in (False, True):
            suffix = ":conditional" if conditional else ""
            car = next((tags[k + suffix] for k in CAR_KEYS if k + suffix in tags), None)
            emergency = next((tags[k + suffix] for k in EMERGENCY_KEYS if k + suffix in tags),
                             None)
            for value in {v for v in (car, emergency) if v is not None}:
                kind, condition = value.strip(), None
                if conditional:
                    kind, _, condition = (s.strip() for s in value.partition("@"))
                    condition = condition.strip("()").strip()
                elif any(k in tags for k in ("day_on", "day_off", "hour_on", "hour_off")):
                    condition = " ".join(f"{k}={tags[k]}" for k in
                                         ("day_on", "day_off", "hour_on", "hour_off")
                                         if k in tags)
                out += _expand(rid, tags, members, kind, condition,
                               car=car == value, emergency=emergency == value)
    return out


def _expand(rid, tags, members, kind, condition, *, car, emergency) -> list[RawRestriction]:
    exempt = set(tags.get("except", "").split(";"))
    if exempt & {"motorcar", "motor_vehicle", "vehicle"}:
        car = emergency = False
    if "emergency" in exempt:
        emergency = False
    if kind not in KINDS or not (car or emergency):
        return []
    roles = {"from": [], "to": [], "via": []}
    for mtype, ref, role in members:
        if role in roles:
            roles[role].append((mtype, ref))
    froms, tos, vias = roles["from"], roles["to"], roles["via"]
    if any(t != "w" for t, _ in froms + tos) or any(t not in "nw" for t, _ in vias):
        return []
    via_nodes = [ref for t, ref in vias if t == "n"]
    via_ways = tuple(ref for t, ref in vias if t == "w")
    if not froms or not tos or (len(froms) > 1 and kind != "no_entry") \
            or (len(tos) > 1 and kind != "no_exit"):
        return []
    if not (len(via_nodes) == 1 and not via_ways) and not (via_ways and not via_nodes):
        return []
    return [RawRestriction(rid, kind, f, t, via_nodes[0] if via_nodes else None, via_ways,
                           car, emergency, condition)
            for _, f in froms for _, t in tos]
