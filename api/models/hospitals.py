"""Response bodies of the hospital endpoints (hospitals, saturation table, signals, ambulances
en route), built from the board's records; positions are GeoJSON ``[lon, lat]``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer

from engine.hospitals.board import SaturationRow, SaturationSignal
from engine.hospitals.model import EnRoute, Hospital
from engine.hospitals.vocabulary import BedType, EDStatus, OffloadStatus

#: GeoJSON position.
LonLat = Annotated[list[float], Field(min_length=2, max_length=2,
                                      description="GeoJSON position [longitude, latitude]",
                                      examples=[[5.0653, 47.322]])]
#: A time as the engine writes it: ISO 8601 with its UTC offset (``+00:00``).
Timestamp = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(), return_type=str),
                      Field(description="ISO 8601 time with UTC offset",
                            examples=["2026-11-27T21:00:00+00:00"])]
#: Saturation level names, in increasing order.
Level = Literal["normal", "tension", "saturated", "closed"]


class BedCapacityOut(BaseModel):
    """Beds of one EDXL-HAVE type."""

    baseline: int = Field(description="staffed beds; 0 = not offered")
    available: int = Field(description="free right now")


class SaturationRowOut(BaseModel):
    """One line of the saturation table: a hospital's bed type, or (``bed_type`` null) the
    hospital overall (sums over offered bed types; occupancy of the worst one)."""

    hospital_id: str
    hospital_name: str
    bed_type: BedType | None = Field(description="EDXL-HAVE bed type; null: overall")
    baseline: int
    available: int
    en_route: int = Field(description="ambulances on their way, counted as occupied beds")
    occupancy: float | None = Field(description="(baseline - available + en route) / baseline")
    level: Level
    stale: bool = Field(description="no status report for the policy's stale_after (or never)")
    ed_status: EDStatus
    offload_status: OffloadStatus | None
    updated_at: Timestamp | None = Field(description="last status report; null: never")

    @classmethod
    def of(cls, row: SaturationRow) -> SaturationRowOut:
        return cls.model_validate(row.to_dict())


class HospitalOut(BaseModel):
    """A hospital with its saturation rows (overall first, then per offered bed type)."""

    id: str
    name: str
    lat: float
    lon: float
    address: str
    external_ids: dict[str, str] = Field(examples=[{"finess": "210987558"}])
    capabilities: list[str] = Field(examples=[["emergency", "stroke"]])
    beds: dict[BedType, BedCapacityOut]
    ed_status: EDStatus
    offload_status: OffloadStatus | None
    updated_at: Timestamp | None
    entrance: LonLat | None = Field(description="arrival point on the road network (routes "
                                    "end there); null until snapped")
    entrance_note: str
    source: str
    capacity_assumed: bool = Field(description="bed figures are assumptions, not reports")
    assumed: str
    demo: bool = Field(description="demonstration facility, not a real hospital")
    location: LonLat = Field(description="the building")
    saturation: list[SaturationRowOut]

    @classmethod
    def of(cls, hospital: Hospital, rows: Iterable[SaturationRow]) -> HospitalOut:
        """``hospital`` with its ``rows`` (of :meth:`HospitalBoard.saturation`; other
        hospitals' rows are skipped)."""
        return cls.model_validate(_hospital(hospital, rows))


def _hospital(hospital: Hospital, rows: Iterable[SaturationRow]) -> dict[str, Any]:
    entrance = hospital.entrance
    return {**hospital.to_dict(), "location": [hospital.lon, hospital.lat],
            "entrance": None if entrance is None else [entrance[1], entrance[0]],
            "saturation": [r.to_dict() for r in rows if r.hospital_id == hospital.id]}


class GeoPoint(BaseModel):
    """A GeoJSON Point."""

    type: Literal["Point"]
    coordinates: LonLat


class SignalRef(BaseModel):
    """The signal a later one replaces."""

    id: str
    at: Timestamp


class SignalOut(BaseModel):
    """A change of saturation level (or of the stale flag); ``/v1/alerts/{id}.cap`` gives it
    as a CAP 1.2 alert."""

    id: str
    hospital_id: str
    hospital_name: str
    bed_type: BedType | None = Field(description="null: the hospital's overall level")
    previous_level: Level
    new_level: Level
    occupancy: float | None
    en_route: int
    stale: bool
    previous_stale: bool
    at: Timestamp
    reason: str
    msg_type: Literal["Alert", "Update"] = Field(description="CAP msgType")
    demo: bool
    replaces: SignalRef | None = Field(description="the previous signal for this hospital and "
                                       "bed type (CAP references)")
    location: GeoPoint

    @classmethod
    def of(cls, signal: SaturationSignal) -> SignalOut:
        return cls.model_validate(signal.to_dict())


class HospitalStatusResponse(HospitalOut):
    """The hospital after a status report, with the signals the report raised."""

    signals: list[SignalOut]
    weights_version: int

    @classmethod
    def after(cls, hospital: Hospital, rows: Iterable[SaturationRow],
              signals: Iterable[SaturationSignal], *, weights_version: int
              ) -> HospitalStatusResponse:
        return cls.model_validate({**_hospital(hospital, rows),
                                   "signals": [s.to_dict() for s in signals],
                                   "weights_version": weights_version})


class SaturationResponse(BaseModel):
    """The saturation table: per hospital its overall row, then one row per bed type."""

    rows: list[SaturationRowOut]
    stale: bool = Field(description="the state store is unreachable: last known state")


class EnRouteOut(BaseModel):
    """An ambulance on its way, counted as occupying a bed at its destination."""

    ambulance_id: str
    hospital_id: str
    bed_type: BedType
    eta_s: float = Field(description="seconds from registration to arrival at the hospital")
    registered_at: Timestamp
    eta_at: Timestamp
    expires_at: Timestamp = Field(description="when the board stops counting it if neither "
                                  "its arrival nor a cancel is reported: eta_at plus the "
                                  "board's grace")

    @classmethod
    def of(cls, entry: EnRoute, *, expires_at: datetime) -> EnRouteOut:
        return cls.model_validate({**entry.to_dict(), "expires_at": expires_at})
