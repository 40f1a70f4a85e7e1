"""An independent turn-cost oracle for the hand-written fixtures: imports nothing from
``engine``.

It prices the turns of a route given as its OSM node sequence, straight from the fixture's
XML (node coordinates and tags, ways and their tags, read by ``tests/osm_reader.py``), by the
turn model as documented (OSRM car.lua of osrm-backend 26.10, ``process_turn`` and
``obstacles.lua``; ambulance numbers from ``engine/profiles.py``'s docstring):

* at a junction where more than two roads usable by the vehicle meet, or on a U-turn, a turn
  of angle ``a`` (degrees, positive = right) costs
  ``7.5 / (1 + exp(-((13 / b) a / 180 - 6.5 b)))`` for ``a >= 0`` and
  ``7.5 / (1 + exp(-((13 b) (-a) / 180 - 6.5 / b)))`` for ``a < 0``, ``b = 1.075``;
* at such a junction a turn across oncoming traffic (``a < 0``), not a U-turn, neither road a
  roundabout, adds ``2 / (1 + exp(-(13 |a| / 180 - 3.25)))``;
* a U-turn adds 20 s;
* a traffic signal / stop / give-way sign at the node adds 2 / 2 / 1 s for the car, 1 / 1 /
  0.5 s for the ambulance, on every turn through the node by a road the sign faces
  (``forward`` / ``backward`` relative to the arriving way's node order; anything else: both).

The angle is the difference of two great-circle initial bearings: junction -> next node
(leaving) and previous node -> junction (arriving). The fixtures are drawn with straight
segments of 70 m or more, so the neighbouring node is the point the engine measures at (the
first point 10 m or more along the road). "Roads meeting" at a node are the segments of
usable ways that end there (a way passing through counts twice, a clipped neighbour not at
all). A barrier node is split by the extract into two road ends joined by a zero-length
link without direction: passing it costs nothing, turning round in front of it is a dead-end
U-turn.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from osm_reader import OsmData, read_osm

EARTH_RADIUS_M = 6_371_008.8

#: highway values open to general motor traffic (subject to access tags)
MOTOR = {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
         "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
         "residential", "living_street", "service", "road"}
CAR_NO_ACCESS = {"no", "private", "psv", "emergency", "agricultural", "forestry", "delivery",
                 "customers"}


@dataclass(frozen=True)
class Model:
    """Seconds, as documented for each profile."""

    penalty: float = 7.5
    bias: float = 1.075
    oncoming: float = 2.0
    uturn: float = 20.0
    signal: float = 2.0
    stop: float = 2.0
    give_way: float = 1.0


MODELS = {"car": Model(), "ambulance": Model(signal=1.0, stop=1.0, give_way=0.5)}


def haversine(p: tuple[float, float], q: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*p, *q))
    a = (math.sin((la2 - la1) / 2) ** 2
         + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


def bearing(p: tuple[float, float], q: tuple[float, float]) -> float:
    """Initial great-circle bearing from ``p`` to ``q`` (lat, lon), degrees in [0, 360)."""
    la1, la2 = math.radians(p[0]), math.radians(q[0])
    dl = math.radians(q[1] - p[1])
    x = math.sin(dl) * math.cos(la2)
    y = math.cos(la1) * math.sin(la2) - math.sin(la1) * math.cos(la2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


def turn_angle(p, j, n) -> float:
    """Angle of the turn p -> j -> n in (-180, 180], positive to the right."""
    a = ((bearing(j, n) - bearing(p, j) + 180.0) % 360.0) - 180.0
    return 180.0 if a == -180.0 else a


def angle_cost(a: float, model: Model) -> float:
    b = model.bias
    if a >= 0:
        return model.penalty / (1 + math.exp(-((13 / b) * a / 180 - 6.5 * b)))
    return model.penalty / (1 + math.exp(-((13 * b) * -a / 180 - 6.5 / b)))


def oncoming_cost(a: float, model: Model) -> float:
    return model.oncoming / (1 + math.exp(-(13 * abs(a) / 180 - 3.25)))


class TurnOracle:
    """Turn costs of routes on one fixture (a path to an ``.osm`` file)."""

    def __init__(self, path: str | Path) -> None:
        self.data: OsmData = read_osm(path)

    # ---- roads
    def usable(self, way: int, vehicle: str) -> bool:
        """Whether ``vehicle`` may drive way ``way`` in at least one direction."""
        tags = self.data.way_tags[way]
        hw = tags.get("highway")
        if tags.get("oneway") in ("reversible", "alternating"):
            return False
        if vehicle == "ambulance" and tags.get("emergency") == "no":
            return False
        motor = tags.get("motor_vehicle", tags.get("motorcar"))
        car = (hw in MOTOR and tags.get("service") != "emergency_access"
               and (motor in ("yes", "designated", "permissive")
                    or (motor is None and tags.get("access", "yes") not in CAR_NO_ACCESS)))
        if vehicle == "car":
            return car
        return car or (hw in MOTOR and tags.get("access") == "private") \
            or tags.get("emergency") in ("yes", "designated") or hw == "busway" \
            or tags.get("service") == "emergency_access"

    def way_of(self, a: int, b: int) -> tuple[int, bool]:
        """The way with the segment a-b, and whether a -> b follows its node order."""
        found = []
        for wid, refs in self.data.ways.items():
            for x, y in itertools.pairwise(refs):
                if (x, y) == (a, b):
                    found.append((wid, True))
                elif (x, y) == (b, a):
                    found.append((wid, False))
        assert len(found) == 1, f"segment {a}-{b}: expected one way, got {found}"
        return found[0]

    def roads_at(self, j: int, vehicle: str) -> int:
        """Road pieces usable by ``vehicle`` that end at node ``j``."""
        n = 0
        for wid, refs in self.data.ways.items():
            if not self.usable(wid, vehicle):
                continue
            for i, ref in enumerate(refs):
                if ref != j:
                    continue
                n += sum(1 for k in (i - 1, i + 1)
                         if 0 <= k < len(refs) and refs[k] in self.data.nodes)
        return n

    def roundabout(self, way: int) -> bool:
        return self.data.way_tags[way].get("junction") in ("roundabout", "circular")

    # ---- turns
    def controls(self, p: int, j: int, vehicle: str) -> float:
        """Delay of the sign / signal at ``j`` for a vehicle arriving from ``p``."""
        tags = self.data.node_tags.get(j, {})
        model = MODELS[vehicle]
        hw = tags.get("highway")
        delay = {"traffic_signals": model.signal, "stop": model.stop,
                 "give_way": model.give_way}.get(hw)
        if delay is None:
            return 0.0
        direction = tags.get("direction")
        if hw == "traffic_signals":
            direction = tags.get("traffic_signals:direction") or direction
        _, along = self.way_of(p, j)
        if (direction == "forward" and not along) or (direction == "backward" and along):
            return 0.0
        return delay

    def turn(self, p: int, j: int, n: int, vehicle: str = "car") -> float:
        """Seconds the turn from p -> j into j -> n costs ``vehicle``."""
        model = MODELS[vehicle]
        nodes = self.data.nodes
        uturn = p == n
        if "barrier" in self.data.node_tags.get(j, {}):
            # split by the extract: no angle through it, a dead end in front of it
            return (angle_cost(turn_angle(nodes[p], nodes[j], nodes[n]), model) + model.uturn
                    if uturn else 0.0)
        a = turn_angle(nodes[p], nodes[j], nodes[n])
        junction = self.roads_at(j, vehicle) > 2
        cost = angle_cost(a, model) if (junction or uturn) else 0.0
        ring = self.roundabout(self.way_of(p, j)[0]) or self.roundabout(self.way_of(j, n)[0])
        if junction and not uturn and not ring and a < 0:
            cost += oncoming_cost(a, model)
        if uturn:
            cost += model.uturn
        return cost + self.controls(p, j, vehicle)

    def route(self, nodes: list[int], vehicle: str = "car") -> float:
        """Total turn cost of a route through OSM nodes ``nodes`` (first and last: the far
        ends of the segments the route starts and ends in)."""
        return sum(self.turn(p, j, n, vehicle) for p, j, n in zip(nodes, nodes[1:], nodes[2:]))

    def before(self, nodes: list[int], index: int, vehicle: str = "car") -> float:
        """Turn cost paid before arriving at ``nodes[index]``."""
        return self.route(nodes[: index + 1], vehicle)
