"""Extract: OpenStreetMap sources (files, GraphML, osmnx graphs, downloads) to directed edges."""

from engine.extract.osm import (
    Extract,
    OsmHospital,
    download,
    from_networkx,
    read_graphml,
    read_osm_file,
)
from engine.extract.restrictions import RC_CAR, RC_EMERGENCY, TurnRestriction

__all__ = [
    "RC_CAR",
    "RC_EMERGENCY",
    "Extract",
    "OsmHospital",
    "TurnRestriction",
    "download",
    "from_networkx",
    "read_graphml",
    "read_osm_file",
]
