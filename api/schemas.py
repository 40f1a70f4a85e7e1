"""Request bodies (pydantic, at the edge only). Coordinates are GeoJSON ``[lon, lat]``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.errors import InvalidTimestamp
from engine.hospitals.model import (
    AMBULANCE_ID_PATTERN,
    AMBULANCE_ID_RULE,
    InvalidAmbulanceId,
    check_ambulance_id,
)
from engine.timeutil import EARLIEST, EXAMPLE, LATEST, parse_time


def _lonlat(value: list[float]) -> list[float]:
    lon, lat = value
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside [-180, 180] (GeoJSON order is [lon, lat])")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90] (GeoJSON order is [lon, lat])")
    return value


LonLat = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]],
                   Field(min_length=2, max_length=2,
                         description="GeoJSON position [longitude, latitude]",
                         examples=[[7.4246, 43.7384]]),
                   AfterValidator(_lonlat)]


def _instant(value: object) -> datetime:
    try:
        return parse_time(value, what=None)
    except InvalidTimestamp as exc:
        raise PydanticCustomError("iso_time", "{reason}", {"reason": str(exc)}) from None


#: A time as every request gives it: ISO 8601 text with a time zone, between 1970 and 2200
#: (:func:`engine.timeutil.parse_time`, the engine's one parser); numbers (Unix times) and
#: times without a zone are refused with the expected format, not guessed.
Instant = Annotated[datetime, BeforeValidator(_instant), Field(
    description=f"ISO 8601 time with a time zone, e.g. {EXAMPLE}, between "
                f"{EARLIEST.date()} and {LATEST.date()}")]


def _ambulance_id(value: object) -> str:
    try:
        return check_ambulance_id(value)
    except InvalidAmbulanceId as exc:
        raise PydanticCustomError("ambulance_id", "{reason}", {"reason": str(exc)}) from None


#: An ambulance id (:data:`engine.hospitals.model.AMBULANCE_ID_PATTERN`).
AmbulanceId = Annotated[str, BeforeValidator(_ambulance_id), Field(
    description=f"ambulance id: {AMBULANCE_ID_RULE}", examples=["SMUR-21:3"],
    json_schema_extra={"pattern": AMBULANCE_ID_PATTERN, "maxLength": 64})]


def latlon(p: list[float]) -> tuple[float, float]:
    """GeoJSON ``[lon, lat]`` to the engine's ``(lat, lon)``."""
    return (p[1], p[0])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RouteRequest(Strict):
    """A route request: ``origin`` and exactly one of ``destination`` (a position) or
    ``destination_hospital`` (a hospital id: the route ends at its entrance)."""

    origin: LonLat
    destination: LonLat | None = None
    destination_hospital: str | None = Field(None, description="a hospital id instead of "
                                             "coordinates: routes to its entrance")
    profile: Literal["car", "ambulance"] = "ambulance"
    metric: Literal["time", "distance"] = "time"
    departure: Instant | None = Field(None, description="traffic valid at this time "
                                      f"(default now; ISO 8601 with a time zone, e.g. {EXAMPLE})",
                                      examples=[EXAMPLE])
    contraflow: bool = Field(False, description="ambulance only: may drive against one-way "
                             "streets (x2 time, at most 30 km/h, never on motorways)")
    restricted_turns: bool = Field(False, description="ambulance only: may take turns that "
                                   "OSM restrictions forbid (+30 s each)")
    algorithm: Literal["cch", "bidirectional", "dijkstra", "astar"] | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> RouteRequest:
        if (self.destination is None) == (self.destination_hospital is None):
            raise ValueError("give exactly one of destination or destination_hospital")
        return self

    def target(self) -> tuple[float, float] | str:
        """The destination: ``(lat, lon)``, or the hospital id to route to."""
        if self.destination is not None:
            return latlon(self.destination)
        return str(self.destination_hospital)


class NeedModel(Strict):
    bed_type: str | None = Field(None, examples=["AdultICU"])
    capability: str | None = None
    severity: str = ""


class DispatchRequest(Strict):
    incident: LonLat
    need: NeedModel = Field(default_factory=NeedModel)
    ambulances: dict[AmbulanceId, LonLat] | None = Field(
        None, max_length=500, description="free ambulances: id -> [lon, lat]; the first to "
        "arrive is chosen (and registered en route under its id)")
    ambulance_id: AmbulanceId | None = Field(None, description="the id registered en route "
                                             f"(default: the chosen ambulance's, or a generated "
                                             f"one): {AMBULANCE_ID_RULE}")
    policy: Literal["saturation_aware", "nearest"] = "saturation_aware"
    contraflow: bool = False
    restricted_turns: bool = False
    register_en_route: bool = Field(True, alias="register",
                                    description="count the ambulance as on its way")


class ArrivedRequest(Strict):
    admit: bool = True


class BedCount(Strict):
    baseline: int | None = Field(None, ge=0)
    available: int = Field(ge=0)


class HospitalStatus(Strict):
    """EDXL-HAVE-shaped status: bed capacity per BedType, EMS traffic and offload status. A
    report refreshes the hospital's status (clears its stale flag); a report that changes
    nothing must say so with ``heartbeat: true``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["beds"], "properties": {"beds": {"type": "object", "minProperties": 1}}},
        {"required": ["ed_status"], "properties": {"ed_status": {"type": "string"}}},
        {"required": ["offload_status"], "properties": {"offload_status": {"type": "string"}}},
        {"required": ["heartbeat"], "properties": {"heartbeat": {"const": True}}}]})

    beds: dict[str, BedCount | Annotated[int, Field(ge=0)]] | None = Field(
        None, examples=[{"AdultICU": {"baseline": 20, "available": 3}, "MedicalSurgical": 40}])
    ed_status: Literal["Normal", "Advisory", "Closed", "NotApplicable"] | None = None
    offload_status: Literal["Normal", "Delayed"] | None = None
    heartbeat: bool = Field(False, description="true: the hospital confirms its last status "
                            "is still right (nothing changed); required when the report gives "
                            "no beds and no status")

    @model_validator(mode="after")
    def _not_empty(self) -> HospitalStatus:
        if not self.beds and self.ed_status is None and self.offload_status is None \
                and not self.heartbeat:
            raise PydanticCustomError(
                "empty_report", "{reason}", {"reason": "empty status report: give beds, "
                "ed_status or offload_status, or send {\"heartbeat\": true} to confirm that "
                "nothing changed"})
        return self

    def beds_payload(self) -> dict[str, Any] | None:
        if self.beds is None:
            return None
        return {k: (v if isinstance(v, int) else v.model_dump(exclude_none=True))
                for k, v in self.beds.items()}


class Window(Strict):
    """Who says it and when it holds: from ``starts_at`` (default: when applied) to
    ``expires_at`` (default: until removed; at most 5 years after it starts, never already
    past)."""

    source: str = Field("api", max_length=200)
    starts_at: Instant | None = None
    expires_at: Instant | None = None
    note: str = Field("", max_length=2000)

    def window(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "note": self.note}
        for key in ("starts_at", "expires_at"):
            value: datetime | None = getattr(self, key)
            if value is not None:
                out[key] = value.isoformat()
        return out


#: An OSM id: a positive integer (``25239340.5`` is refused, never truncated).
OsmId = Annotated[int, Field(ge=1, le=2**62, description="OSM id (a positive integer)")]


def _segment_row(value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise PydanticCustomError("segment_row", "expected [from_osm_id, to_osm_id, speed_kmh]"
                                  ", three values")
    return value


#: One segment speed: ``[from_osm_id, to_osm_id, speed_kmh]``.
SegmentRow = Annotated[tuple[OsmId, OsmId, float], BeforeValidator(_segment_row)]


class SpeedsRequest(Window):
    speeds: list[SegmentRow] | None = Field(
        None, max_length=100_000, description="[from_osm_id, to_osm_id, speed_kmh] per segment",
        examples=[[[25239340, 25239343, 20.0]]])
    ways: dict[str, float] | None = Field(None, description="OSM way id -> speed_kmh")


class ReportRequest(Window):
    location: LonLat
    kind: Literal["blocked", "slowed"] = "blocked"
    factor: float = Field(0.3, gt=0, le=4)


class CoverageRequest(Strict):
    stations: list[LonLat] = Field(min_length=1, max_length=200)
    minutes: float = Field(gt=0, le=240)
    profile: Literal["car", "ambulance"] = "ambulance"


class ChangesRequest(Strict):
    """Any batch of traffic changes (all or nothing), each ``{"type": ..., ...}`` as in
    :func:`engine.traffic.change_from_dict`."""

    changes: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
