"""Response models of the pages' JSON endpoints: the road layer and the service description."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LonLatPair = tuple[float, float]


class RoadProperties(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    road_class: str = Field(alias="class", description="OSM highway class (``road`` when the "
                            "map has no classes, e.g. DIMACS)", examples=["primary"])
    rank: int = Field(description="importance for styling, 0 = most important")
    roads: int = Field(description="number of road chains in this feature")


class RoadGeometry(BaseModel):
    type: Literal["MultiLineString"]
    coordinates: list[list[LonLatPair]] = Field(description="one [lon, lat] line per road")


class RoadFeature(BaseModel):
    type: Literal["Feature"]
    properties: RoadProperties
    geometry: RoadGeometry


class RoadLayerOut(BaseModel):
    """The roads of the map in a bounding box as GeoJSON, one feature per road class,
    simplified to half a pixel at ``zoom``."""

    type: Literal["FeatureCollection"]
    bbox: list[float] = Field(description="the requested west, south, east, north")
    zoom: int
    roads: int = Field(description="road chains drawn")
    points: int = Field(description="coordinates sent")
    dropped: int = Field(description="smallest roads left out to keep the answer under about "
                         "1 MB (zoom in to see them)")
    tolerance_m: float = Field(description="simplification tolerance, metres (0: full detail)")
    attribution: str = Field(description="map data credit, to show with the map")
    features: list[RoadFeature]


class MapInfo(BaseModel):
    name: str = Field(description="the map the service routes on")
    bbox: list[float] = Field(description="west, south, east, north of the map")
    center: LonLatPair
    timezone: str = Field(description="IANA time zone of the map's city: times are shown in it",
                          examples=["Europe/Paris"])
    tile_url: str | None = Field(description="raster background tiles (GYROPHARE_TILE_URL); "
                                 "null: the road graph alone is the base map")
    tile_attribution: str | None = None


class ServiceInfo(BaseModel):
    """What a machine needs to find its way around the service."""

    service: Literal["gyrophare"]
    version: str
    attribution: str
    attribution_html: str
    docs: str
    redoc: str
    openapi: str
    health: str
    pages: dict[str, str] = Field(description="browser pages: command centre, field report")
    open_access: bool = Field(description="no API keys configured: every loopback caller is "
                              "admin (the pages then need no key)")
    map: MapInfo


RoleName = Literal["dispatcher", "command_centre", "planner", "admin"]


class WhoAmI(BaseModel):
    """The caller as the service sees it, so that a page shows only what the key may do."""

    role: RoleName = Field(description="the role of the caller's key; roles are cumulative, "
                           "lowest first: dispatcher (routes, dispatch, coverage, reads), "
                           "command_centre (+ traffic writes, field reports, hospital status), "
                           "planner (+ scenario runs), admin (all)", examples=["dispatcher"])
    open_access: bool = Field(description="no API keys configured: every (loopback) caller "
                              "is admin")
