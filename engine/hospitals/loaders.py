"""Where hospitals come from and go to: hospital files (``gyrophare-hospitals/1``, documented
in ``data/hospitals/README.md``), OSM ``amenity=hospital`` objects, entrances snapped to the
road network, and the repository's ``data/`` files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.attribution import ATTRIBUTION
from engine.errors import GyrophareError, HospitalDataError
from engine.hospitals.board import HospitalBoard
from engine.hospitals.model import BedCapacity, Hospital, check_record
from engine.hospitals.vocabulary import BedType, EDStatus

if TYPE_CHECKING:
    from engine.query import Router

__all__ = [
    "DEFAULT_ASSUMED_BEDS",
    "FILE_FORMAT",
    "dump_hospitals",
    "hospitals_from_dict",
    "hospitals_from_graph",
    "load_hospitals",
    "project_data_path",
    "snap_entrances",
]

#: ``format`` field of a hospital file (see ``data/hospitals/README.md``).
FILE_FORMAT = "gyrophare-hospitals/1"
_FILE_FIELDS = frozenset({"format", "name", "description", "sources", "assumptions", "license",
                          "hospitals"})
#: The repository's ``data/`` directory (the package is installed editable).
_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def project_data_path(name: str) -> Path:
    """Path of a file shipped in the repository's ``data/`` directory, e.g.
    ``project_data_path("hospitals/dijon-metropole.json")``.

    The package is installed editable, so ``data/`` sits next to ``engine/``. Absolute names and
    ``..`` are refused: the name may come from an API request.
    """
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"data file name must be relative to data/ without '..': {name!r}")
    path = _DATA_DIR / relative
    if not path.exists():
        raise FileNotFoundError(f"no data file {name!r} (looked for {path})")
    return path


# ---------------------------------------------------------------------------- files
def load_hospitals(path: str | Path) -> list[Hospital]:
    """Read a hospital file (format in ``data/hospitals/README.md``), validating every field.

    Raises
    ------
    HospitalDataError
        Naming the bad field, e.g. ``hospitals[2].beds.AdultICU.available: must be an integer
        >= 0, got -1``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HospitalDataError(str(path), f"not valid JSON: {exc}") from exc
    return hospitals_from_dict(data)


def hospitals_from_dict(data: object) -> list[Hospital]:
    """Validate the content of a hospital file (already parsed JSON): each record through
    :meth:`Hospital.from_dict`, ids unique."""
    record = check_record(data, known=_FILE_FIELDS)
    if record.get("format") != FILE_FORMAT:
        raise HospitalDataError("format", f"must be {FILE_FORMAT!r}, got "
                                f"{record.get('format')!r}")
    items = record.get("hospitals")
    if not isinstance(items, list):
        raise HospitalDataError("hospitals", "required: a list of hospital objects")
    hospitals: list[Hospital] = []
    first_index: dict[str, int] = {}
    for i, item in enumerate(items):
        h = Hospital.from_dict(item, where=f"hospitals[{i}]")
        if h.id in first_index:
            raise HospitalDataError(f"hospitals[{i}].id", f"duplicate id {h.id!r} (also "
                                    f"hospitals[{first_index[h.id]}])")
        first_index[h.id] = i
        hospitals.append(h)
    return hospitals


def dump_hospitals(hospitals: Iterable[Hospital], path: str | Path | None = None, *,
                   name: str = "", description: str = "", sources: Iterable[str] = (),
                   assumptions: str = "", license: str = "") -> dict[str, Any]:
    """Hospitals as a hospital-file dict; written to ``path`` (UTF-8 JSON) when given."""
    data: dict[str, Any] = {"format": FILE_FORMAT}
    for key, value in (("name", name), ("description", description), ("license", license),
                       ("assumptions", assumptions)):
        if value:
            data[key] = value
    if sources:
        data["sources"] = list(sources)
    data["hospitals"] = [h.to_dict() for h in hospitals]
    hospitals_from_dict(data)  # never write a file load_hospitals would refuse
    if path is not None:
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n",
                              encoding="utf-8")
    return data


# ---------------------------------------------------------------------------- OSM
#: Capacities given to OSM hospitals, which carry none: a placeholder so the board works,
#: always flagged ``capacity_assumed`` (empty units: replace with real reports).
DEFAULT_ASSUMED_BEDS: Mapping[BedType, BedCapacity] = MappingProxyType({
    BedType.MEDICAL_SURGICAL: BedCapacity(baseline=50, available=50),
    BedType.ADULT_ICU: BedCapacity(baseline=8, available=8),
})


def hospitals_from_graph(
    graph: Any, *,
    default_beds: Mapping[BedType, BedCapacity] | Mapping[str, BedCapacity] = DEFAULT_ASSUMED_BEDS,
) -> list[Hospital]:
    """Hospitals from the OSM ``amenity=hospital`` objects of a road graph (``graph.hospitals``,
    or an iterable of such objects).

    OSM gives names, positions and ``emergency=*``, never bed counts: every hospital gets
    ``default_beds`` and ``capacity_assumed=True``. ``emergency=yes`` -> capability
    ``"emergency"`` and ED ``Normal``; ``emergency=no`` -> no capability and ED
    ``NotApplicable``; no tag -> no ``"emergency"`` capability (unknown) and ED ``Normal``.
    Objects are kept as mapped (OSM sometimes tags a pharmacy as a hospital).
    """
    beds = {BedType.parse(k, what="default_beds key"): v for k, v in default_beds.items()}
    out: list[Hospital] = []
    seen: set[str] = set()
    for i, obj in enumerate(getattr(graph, "hospitals", graph)):
        where = f"graph.hospitals[{i}]"
        try:
            hid, lat, lon = str(obj["id"]), obj["lat"], obj["lon"]
        except (KeyError, TypeError) as exc:
            raise HospitalDataError(where, f"needs id, lat, lon: {obj!r}") from exc
        if hid in seen:
            continue
        seen.add(hid)
        emergency = obj.get("emergency")
        name = str(obj.get("name") or "").strip()
        note = "bed capacities are placeholders (OSM has none)"
        if not name:
            name = f"Unnamed hospital ({hid})"
        if emergency == "yes":
            caps, ed = frozenset({"emergency"}), EDStatus.NORMAL
        elif emergency == "no":
            caps, ed = frozenset(), EDStatus.NOT_APPLICABLE
        else:
            caps, ed = frozenset(), EDStatus.NORMAL
            note += "; no emergency=* tag: emergency department unknown"
        try:
            out.append(Hospital(
                id=hid, name=name, lat=lat, lon=lon, capabilities=caps,
                beds=beds, ed_status=ed,
                source=f"OpenStreetMap amenity=hospital ({ATTRIBUTION})",
                capacity_assumed=True, assumed=note,
                external_ids={"osm": f"{obj.get('osm_type', '')}/{obj.get('osm_id', '')}"},
            ))
        except HospitalDataError as exc:
            raise HospitalDataError(f"{where}.{exc.field}", exc.problem) from exc
    return out


def snap_entrances(board: HospitalBoard, router: Router) -> dict[str, str]:
    """Put each hospital's ``entrance`` on the road network with ``router.snap``.

    Snapping uses the router's car weights, so an entrance lands on a road an ambulance may
    drive (not a footway inside the grounds). When snapping fails (off the network, bad
    coordinate) the building's own point is kept and the reason recorded in
    ``entrance_note``. Returns ``{hospital_id: note}``.
    """
    notes: dict[str, str] = {}
    for h in board.hospitals():
        try:
            snap = router.snap((h.lat, h.lon), what=f"hospital {h.id!r}")
        except (GyrophareError, ValueError) as exc:
            note = f"not snapped, building point kept: {exc}"
            board.set_entrance(h.id, (h.lat, h.lon), note=note)
        else:
            note = f"snapped {snap.distance_m:.0f} m to the road network"
            board.set_entrance(h.id, (snap.lat, snap.lon), note=note)
        notes[h.id] = note
    return notes
