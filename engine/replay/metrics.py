"""Metrics of a replay: response and transport times, unserved calls, hospital loads,
saturation levels, diversions, extra travel caused by closures.

Definitions (times in seconds unless the key says otherwise):

- **response**: call received -> ambulance on scene (call processing, queue wait, turnout and
  travel included), for every call an ambulance reached;
- **transport**: departure from the scene -> arrival at the hospital;
- **within target**: share of the reached calls whose response is <= the target;
- **unserved**: calls no ambulance reached (off the road network, unreachable, or still
  queued at the end); **not transported**: reached, but no hospital could take the patient;
- **diversion**: the dispatcher chose a hospital other than the nearest able one (shortest
  ETA among the hospitals offering the need); ``extra_eta_s`` is the ETA difference;
- **closure extra**: per trip, travel with the closures minus travel without them (same
  origin, destination, time and other traffic), both legs added;
- **occupancy**: occupied beds = baseline - available (+ patients admitted beyond capacity),
  per hospital and tracked bed type, as a step function over time; ``peak_occupancy`` is the
  maximum of occupied / baseline;
- **time at level**: seconds spent at each saturation level (the board's own levels with
  hysteresis) per hospital, overall and per tracked bed type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from engine.hospitals import SaturationLevel

LEVELS = [lv.label for lv in SaturationLevel]


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


def stats(values: Iterable[float]) -> dict[str, Any]:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {"n": 0, "mean": None, "p50": None, "p90": None, "max": None}
    return {"n": len(v), "mean": _r(v.mean()), "p50": _r(np.percentile(v, 50)),
            "p90": _r(np.percentile(v, 90)), "max": _r(v.max())}


def _share(values: Sequence[float], limit_s: float) -> float | None:
    if not values:
        return None
    return _r(sum(1 for v in values if v <= limit_s) / len(values), 4)


def compute_metrics(*, trips: Sequence[Mapping[str, Any]],
                    occupancy: Mapping[tuple[str, str], Sequence[Sequence[float]]],
                    level_changes: Sequence[tuple[float, str, str | None, int]],
                    initial_levels: Mapping[tuple[str, str | None], int], horizon_s: float,
                    targets_min: Sequence[float],
                    ambulances: Mapping[str, tuple[float, int]], max_queue: int,
                    hospital_names: Mapping[str, str],
                    over_capacity: Mapping[tuple[str, str], int]) -> dict[str, Any]:
    """All metrics of one run (JSON-ready); ``over_capacity`` counts the admissions beyond
    capacity per (hospital id, bed type): the board's own count (``HospitalBoard.overflows``)."""
    response = [t["response_s"] for t in trips if t["response_s"] is not None]
    transport = [t["transport_s"] for t in trips if t["transport_s"] is not None]
    status: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for t in trips:
        status[t["status"]] = status.get(t["status"], 0) + 1
        if t["status"] in ("unserved", "not_transported"):
            key = t["reason"].split(":", 1)[0] if t["status"] == "unserved" else "no_hospital"
            reasons[key] = reasons.get(key, 0) + 1
    waits = [t["queue_wait_s"] for t in trips if t["queue_wait_s"] is not None]
    transported = [t for t in trips if t["hospital"] is not None]
    diverted = [t for t in transported if t["diverted"]]
    affected = [t["closure_extra_s"] for t in trips if t["closure_extra_s"] > 0.5]
    by_severity: dict[str, Any] = {}
    for sev in sorted({t["severity"] for t in trips}):
        r = [t["response_s"] for t in trips if t["severity"] == sev and t["response_s"]
             is not None]
        by_severity[sev or "(none)"] = {"calls": sum(1 for t in trips if t["severity"] == sev),
                                        "response_s": stats(r)}
    hospitals: dict[str, Any] = {}
    for hid, name in hospital_names.items():
        mine = [t for t in transported if t["hospital"] == hid]
        hospitals[hid] = {
            "name": name,
            "transports": len(mine),
            "admissions": sum(1 for t in mine if t["t_at_hospital"] is not None),
            "over_capacity_admissions": sum(n for (h, _), n in over_capacity.items()
                                            if h == hid),
            "diverted_here": sum(1 for t in mine if t["diverted"]),
            "diverted_away": sum(1 for t in diverted if t["nearest_hospital"] == hid),
            "beds": {}, "time_at_level_s": {},
        }
    for (hid, bt), rows in occupancy.items():
        hospitals[hid]["beds"][bt] = _occupancy_stats(rows, horizon_s)
    for (hid, bed), level in initial_levels.items():
        hospitals[hid]["time_at_level_s"][bed or "overall"] = _time_at_levels(
            level, [(t, lv) for t, h, b, lv in level_changes if h == hid and b == bed],
            horizon_s)
    busy = sum(b for b, _ in ambulances.values())
    n_amb = len(ambulances)
    return {
        "calls": len(trips),
        "completed": status.get("completed", 0),
        "not_transported": status.get("not_transported", 0),
        "unserved": status.get("unserved", 0),
        "in_progress_at_end": status.get("in_progress_at_end", 0),
        "incomplete_reasons": dict(sorted(reasons.items())),
        "response_s": stats(response),
        "response_within_target": {f"{m:g}min": _share(response, m * 60.0)
                                   for m in targets_min},
        "transport_s": stats(transport),
        "queue": {"calls_waited": sum(1 for w in waits if w > 0.5),
                  "wait_s": stats(waits), "max_length": max_queue},
        "diversions": {"count": len(diverted),
                       "share": _r(len(diverted) / len(transported), 4) if transported
                       else None,
                       "extra_eta_s": stats(t["diversion_extra_eta_s"] for t in diverted)},
        "closures": {"trips_affected": len(affected),
                     "extra_total_s": _r(sum(affected)),
                     "extra_per_affected_trip_s": stats(affected)},
        "by_severity": by_severity,
        "hospitals": hospitals,
        "fleet": {"ambulances": n_amb,
                  "missions": sum(m for _, m in ambulances.values()),
                  "utilisation": _r(busy / (n_amb * horizon_s), 4) if n_amb and horizon_s
                  else None},
        "horizon_s": _r(horizon_s),
    }


def _occupancy_stats(rows: Sequence[Sequence[float]], horizon_s: float) -> dict[str, Any]:
    """Peak and time-weighted mean of a step series ``[t, occupied, baseline, en_route]``."""
    if not rows:
        return {}
    arr = np.asarray(rows, dtype=float)
    t = np.append(arr[:, 0], max(horizon_s, arr[-1, 0]))
    dt = np.diff(t)
    occ, base = arr[:, 1], arr[:, 2]
    frac = np.where(base > 0, occ / np.where(base > 0, base, 1.0), 0.0)
    total = dt.sum()
    k = int(np.argmax(frac))
    return {
        "baseline_start": int(base[0]), "baseline_end": int(base[-1]),
        "occupied_start": int(occ[0]), "occupied_end": int(occ[-1]),
        "peak_occupied": int(occ.max()),
        "peak_occupancy": _r(frac.max(), 4), "peak_at_s": _r(arr[k, 0]),
        "mean_occupancy": _r((frac * dt).sum() / total, 4) if total > 0 else _r(frac[0], 4),
        "over_capacity_s": _r(dt[occ > base].sum()),
    }


def _time_at_levels(initial: int, changes: Sequence[tuple[float, int]], horizon_s: float
                    ) -> dict[str, float]:
    out = dict.fromkeys(LEVELS, 0.0)
    t0, level = 0.0, initial
    for t, lv in changes:
        t = min(t, horizon_s)
        out[LEVELS[level]] += max(0.0, t - t0)
        t0, level = t, lv
    out[LEVELS[level]] += max(0.0, horizon_s - t0)
    return {k: round(v, 3) for k, v in out.items()}


def pooled(results: Sequence[Mapping[str, Any]], targets_min: Sequence[float]
           ) -> dict[str, Any]:
    """Summary over several runs of one variant (seeds pooled: every trip counts once)."""
    trips = [t for r in results for t in r["trips"]]
    response = [t["response_s"] for t in trips if t["response_s"] is not None]
    transport = [t["transport_s"] for t in trips if t["transport_s"] is not None]
    transported = [t for t in trips if t["hospital"] is not None]
    diverted = [t for t in transported if t["diverted"]]
    peaks: dict[str, float] = {}
    for r in results:
        for hid, h in r["metrics"]["hospitals"].items():
            for bt, b in h["beds"].items():
                key = f"{hid}|{bt}"
                if b:
                    peaks[key] = max(peaks.get(key, 0.0), b["peak_occupancy"])
    return {
        "runs": len(results),
        "seeds": [r["seed"] for r in results],
        "calls": len(trips),
        "unserved": sum(r["metrics"]["unserved"] for r in results),
        "not_transported": sum(r["metrics"]["not_transported"] for r in results),
        "response_s": stats(response),
        "response_within_target": {f"{m:g}min": _share(response, m * 60.0)
                                   for m in targets_min},
        "transport_s": stats(transport),
        "diversions": len(diverted),
        "diversion_share": _r(len(diverted) / len(transported), 4) if transported else None,
        "closure_extra_total_s": _r(sum(t["closure_extra_s"] for t in trips)),
        "closure_trips_affected": sum(1 for t in trips if t["closure_extra_s"] > 0.5),
        "peak_occupancy": dict(sorted(peaks.items())),
    }


__all__ = ["compute_metrics", "pooled", "stats"]
