"""Hospital saturation board: where an ambulance can still take its patient.

During the Covid-19 crisis Dijon's command centre watched hospital saturation so that patients
were not all sent to the same full hospital. This package is that board, one job per module:

- :mod:`~engine.hospitals.vocabulary`: EDXL-HAVE bed types and statuses, saturation levels;
- :mod:`~engine.hospitals.model`: the hospital record (beds, statuses, entrance, provenance)
  and ambulances en route, validated in one place whether they come from code or JSON;
- :mod:`~engine.hospitals.policy`: thresholds, hysteresis and staleness that turn occupancy
  (ambulances en route included) and statuses into levels;
- :mod:`~engine.hospitals.board`: the board itself, its saturation table, candidates and the
  signals raised on every change of level;
- :mod:`~engine.hospitals.cap`: a signal as an OASIS CAP 1.2 alert;
- :mod:`~engine.hospitals.loaders`: hospital files, OSM hospitals, entrances snapped to roads.

Every public name is importable from ``engine.hospitals``.
"""

from engine.hospitals.board import (
    BOARD_FORMAT,
    EXPIRED_KEPT,
    EXPIRED_MEMORY,
    Candidate,
    HospitalBoard,
    SaturationRow,
    SaturationSignal,
    Subscriber,
)
from engine.hospitals.cap import CAP_NAMESPACE, cap_datetime
from engine.hospitals.loaders import (
    DEFAULT_ASSUMED_BEDS,
    FILE_FORMAT,
    dump_hospitals,
    hospitals_from_dict,
    hospitals_from_graph,
    load_hospitals,
    project_data_path,
    snap_entrances,
)
from engine.hospitals.model import (
    AMBULANCE_ID_PATTERN,
    MAX_ETA_S,
    BedCapacity,
    EnRoute,
    Hospital,
    InvalidAmbulanceId,
    check_ambulance_id,
)
from engine.hospitals.policy import DEFAULT_EN_ROUTE_GRACE, SaturationPolicy
from engine.hospitals.vocabulary import (
    CAPABILITIES,
    BedType,
    EDStatus,
    OffloadStatus,
    SaturationLevel,
)
from engine.timeutil import utcnow

__all__ = [
    "AMBULANCE_ID_PATTERN",
    "BOARD_FORMAT",
    "CAPABILITIES",
    "CAP_NAMESPACE",
    "DEFAULT_ASSUMED_BEDS",
    "DEFAULT_EN_ROUTE_GRACE",
    "EXPIRED_KEPT",
    "EXPIRED_MEMORY",
    "FILE_FORMAT",
    "MAX_ETA_S",
    "BedCapacity",
    "BedType",
    "Candidate",
    "EDStatus",
    "EnRoute",
    "Hospital",
    "HospitalBoard",
    "InvalidAmbulanceId",
    "OffloadStatus",
    "SaturationLevel",
    "SaturationPolicy",
    "SaturationRow",
    "SaturationSignal",
    "Subscriber",
    "cap_datetime",
    "check_ambulance_id",
    "dump_hospitals",
    "hospitals_from_dict",
    "hospitals_from_graph",
    "load_hospitals",
    "project_data_path",
    "snap_entrances",
    "utcnow",
]
