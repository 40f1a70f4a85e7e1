"""Extract: OpenStreetMap sources (files, GraphML, osmnx graphs, downloads) to directed edges."""

from engine.extract.osm import (
    Extract,
    Hospital,
    download,
    from_networkx,
    read_graphml,
    read_osm_file,
)

__all__ = ["Extract", "Hospital", "download", "from_networkx", "read_graphml", "read_osm_file"]
