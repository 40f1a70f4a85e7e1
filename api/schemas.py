"""Request bodies (pydantic, at the edge only). Coordinates are GeoJSON ``[lon, lat]``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator


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
    departure: AwareDatetime | None = Field(None, description="traffic valid at this time "
                                            "(default now)")
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
    ambulances: dict[str, LonLat] | None = Field(None, description="free ambulances: id -> "
                                                 "[lon, lat]; the first to arrive is chosen")
    ambulance_id: str | None = None
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
    """EDXL-HAVE-shaped status: bed capacity per BedType, EMS traffic and offload status."""

    beds: dict[str, BedCount | Annotated[int, Field(ge=0)]] | None = Field(
        None, examples=[{"AdultICU": {"baseline": 20, "available": 3}, "MedicalSurgical": 40}])
    ed_status: Literal["Normal", "Advisory", "Closed", "NotApplicable"] | None = None
    offload_status: Literal["Normal", "Delayed"] | None = None

    def beds_payload(self) -> dict[str, Any] | None:
        if self.beds is None:
            return None
        return {k: (v if isinstance(v, int) else v.model_dump(exclude_none=True))
                for k, v in self.beds.items()}


class Window(Strict):
    source: str = "api"
    starts_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    note: str = ""

    def window(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "note": self.note}
        for key in ("starts_at", "expires_at"):
            value: datetime | None = getattr(self, key)
            if value is not None:
                out[key] = value.isoformat()
        return out


class SpeedsRequest(Window):
    speeds: list[Annotated[list[float], Field(min_length=3, max_length=3)]] | None = Field(
        None, description="[from_osm_id, to_osm_id, speed_kmh] per segment")
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
