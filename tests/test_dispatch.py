"""Dispatch: saturation-aware choice with reasons, en-route ambulances seen by the next
dispatch, nearest ambulance, signal pre-emption plans, coverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from engine.dispatch import (
    Dispatcher,
    DispatchPolicy,
    Need,
    NoHospitalAvailable,
    signal_plan,
)
from engine.hospitals import (
    BedCapacity,
    BedType,
    EDStatus,
    Hospital,
    HospitalBoard,
    load_hospitals,
    project_data_path,
    snap_entrances,
)
from engine.io import load_graph
from engine.query import Router
from engine.traffic import Closure

T0 = datetime(2020, 3, 25, 10, 0, tzinfo=UTC)  # Covid-19 first wave
INCIDENT = (43.7384, 7.4246)  # Monte-Carlo
NEAR = (43.7400, 7.4270)  # a few hundred metres away
FAR = (43.7313, 7.4197)  # La Condamine, about 1 km


def hospital(hid: str, where: tuple[float, float], *, icu_free: int, icu: int = 10,
             ed: EDStatus = EDStatus.NORMAL) -> Hospital:
    return Hospital(id=hid, name=f"Test {hid}", lat=where[0], lon=where[1],
                    capabilities=frozenset({"emergency"}),
                    beds={BedType.ADULT_ICU: BedCapacity(icu, icu_free),
                          BedType.MEDICAL_SURGICAL: BedCapacity(60, 30)},
                    ed_status=ed, updated_at=T0, demo=True)


@pytest.fixture()
def router(monaco) -> Router:
    return Router(monaco)


def make(router: Router, *hospitals: Hospital, **policy) -> Dispatcher:
    board = HospitalBoard(hospitals, at=T0)
    snap_entrances(board, router)
    return Dispatcher(router, board, policy=DispatchPolicy(**policy))


def test_saturated_nearest_hospital_is_skipped_with_reasons(router: Router) -> None:
    d = make(router, hospital("near", NEAR, icu_free=0), hospital("far", FAR, icu_free=6))
    dec = d.dispatch(INCIDENT, Need(bed_type="AdultICU"), at=T0)
    by_id = {o.hospital_id: o for o in dec.ranking}
    assert by_id["near"].eta_s < by_id["far"].eta_s  # near really is nearer
    assert dec.hospital_id == "far"
    assert "rather than the nearest" in dec.explanation and "Test near" in dec.explanation
    assert "100% occupied" in dec.explanation
    assert by_id["near"].level.label == "saturated"
    # the nearest policy, for comparison, goes to the full one
    nearest = d.dispatch(INCIDENT, Need(bed_type="AdultICU"), at=T0, register=False,
                         policy=DispatchPolicy(mode="nearest"))
    assert nearest.hospital_id == "near"


def test_second_dispatch_sees_the_first_ambulance(router: Router) -> None:
    d = make(router, hospital("near", NEAR, icu_free=1, icu=4),
             hospital("far", FAR, icu_free=3, icu=4))
    first = d.dispatch(INCIDENT, Need(bed_type="AdultICU"), at=T0, ambulance_id="SMUR-1")
    assert first.hospital_id == "near" and first.registered
    assert [e.ambulance_id for e in d.board.en_route("near")] == ["SMUR-1"]
    second = d.dispatch(INCIDENT, Need(bed_type="AdultICU"), at=T0 + timedelta(minutes=1))
    near = next(o for o in second.ranking if o.hospital_id == "near")
    assert near.en_route == 1 and any("already on the way" in r for r in near.reasons)
    assert second.hospital_id == "far"
    # the first ambulance arrives, the bed is taken; cancel frees the second
    d.arrived("SMUR-1", at=T0 + timedelta(minutes=5))
    assert d.board.en_route("near") == []
    d.cancel(second.ambulance_id, at=T0 + timedelta(minutes=6))
    assert d.board.en_route("far") == []


def test_etas_from_one_search_equal_single_routes(router: Router) -> None:
    sites = {"a": NEAR, "b": FAR, "c": (43.7280, 7.4140), "d": (43.7450, 7.4330)}
    d = make(router, *(hospital(k, v, icu_free=5) for k, v in sites.items()))
    options, version = d.rank(INCIDENT, Need(bed_type="AdultICU"), at=T0)
    assert version == router.overlay.version
    for o in options:
        dest = d.board.hospital(o.hospital_id).destination
        single = router.route(INCIDENT, dest, profile="ambulance", at=T0)
        assert o.eta_s == pytest.approx(single.duration_s, rel=1e-9)


def test_closed_or_unsuitable_hospitals_are_never_chosen(router: Router) -> None:
    d = make(router, hospital("near", NEAR, icu_free=5, ed=EDStatus.CLOSED),
             hospital("far", FAR, icu_free=5))
    for mode in ("nearest", "saturation_aware"):
        dec = d.dispatch(INCIDENT, Need(bed_type="AdultICU"), at=T0, register=False,
                         policy=DispatchPolicy(mode=mode))
        assert dec.hospital_id == "far"
        assert "near" not in {o.hospital_id for o in dec.ranking}
    with pytest.raises(NoHospitalAvailable, match="Burn"):
        d.dispatch(INCIDENT, Need(bed_type="Burn"), at=T0)


def test_closed_entrance_road_falls_back_with_the_reason(router: Router) -> None:
    """A hospital whose entrance road is closed is still reached, at the nearest open road,
    and the ranking says so."""
    d = make(router, hospital("near", NEAR, icu_free=5), hospital("far", FAR, icu_free=5))
    dest = router.snap(d.board.hospital("near").destination, profile="ambulance")
    router.overlay.apply(Closure(edges=[e for e in (dest.edge, dest.twin) if e >= 0]), at=T0)
    dec = d.dispatch(INCIDENT, Need(bed_type="AdultICU"), at=T0, register=False)
    near = next(o for o in dec.ranking if o.hospital_id == "near")
    assert near.reachable
    assert any("entrance's road is cut off" in r and "closed by live traffic" in r
               for r in near.reasons)


def test_unreachable_hospital_is_ranked_but_not_chosen(monaco) -> None:
    """Every road within the snapping radius of a hospital closed: unreachable, ranked last
    with the reason, never chosen."""
    router = Router(monaco, snap_radius_m=80.0, fallback_radius_m=100.0)
    d = make(router, hospital("near", NEAR, icu_free=5), hospital("far", FAR, icu_free=5))
    lat, lon = d.board.hospital("near").destination
    router.overlay.apply(Closure(geometry={"type": "Point", "coordinates": [lon, lat]},
                                 radius_m=150.0), at=T0)
    dec = d.dispatch(INCIDENT, Need(bed_type="AdultICU"), at=T0, register=False)
    near = next(o for o in dec.ranking if o.hospital_id == "near")
    assert not near.reachable and "unreachable by road now" in near.reasons
    assert dec.hospital_id == "far"
    assert dec.weights_version == router.overlay.version


def test_nearest_ambulance_is_the_fastest_to_arrive(router: Router) -> None:
    d = make(router, hospital("far", FAR, icu_free=5))
    fleet = {"VSAV-1": (43.7313, 7.4197), "VSAV-2": (43.7420, 7.4300),
             "VSAV-3": (43.7270, 7.4150)}
    dec = d.dispatch(INCIDENT, Need(), at=T0, ambulances=fleet)
    times = {k: router.route(v, INCIDENT, profile="ambulance", at=T0).duration_s
             for k, v in fleet.items()}
    assert dec.ambulance.ambulance_id == min(times, key=times.get)
    assert dec.ambulance.route.duration_s == pytest.approx(min(times.values()))
    assert dec.ambulance_id == dec.ambulance.ambulance_id
    # the signal plan starts when the ambulance leaves the incident for the hospital
    if dec.signals:
        assert dec.signals[0].eta_at > T0 + timedelta(seconds=dec.ambulance.route.duration_s)


def test_signal_plan_on_the_sample_city() -> None:
    """Central Helsinki has many signals; the demo facilities are labelled as such."""
    g = load_graph(None)
    router = Router(g)
    hospitals = load_hospitals(project_data_path("hospitals/helsinki-demo.json"))
    assert hospitals and all(h.demo for h in hospitals)
    board = HospitalBoard(hospitals, at=T0)
    snap_entrances(board, router)
    d = Dispatcher(router, board)
    dec = d.dispatch((60.1699, 24.9384), Need(bed_type="AdultICU"), at=T0, register=False)
    plan = dec.signals
    assert len(plan) >= 1
    assert [s.osm_id for s in plan] == [s.osm_id for s in dec.route.signals]
    dist = [s.distance_from_start_m for s in plan]
    assert dist == sorted(dist) and 0 < dist[0] and dist[-1] <= dec.route.distance_m + 1e-6
    for s in plan:
        assert s.hold_from < s.eta_at < s.hold_until
        assert s.eta_at == T0 + timedelta(seconds=s.eta_s)
        assert 0 <= s.approach_bearing < 360 and 0 <= s.exit_bearing < 360
        assert g.point_signal[np.flatnonzero(g.point_osm_id == s.osm_id)].any()
    # an explicit departure shifts the whole plan
    later = signal_plan(dec.route, departure=T0 + timedelta(minutes=3))
    assert later[0].eta_at - plan[0].eta_at == timedelta(minutes=3)
    assert dec.to_dict()["signal_plan"][0]["location"][0] > 24.9  # [lon, lat]


def test_coverage_grows_with_time_and_shrinks_with_closures(router: Router) -> None:
    d = make(router, hospital("far", FAR, icu_free=5))
    stations = [(43.7313, 7.4197), (43.7450, 7.4330)]
    c3 = d.coverage(stations, minutes=3, at=T0)
    c6 = d.coverage(stations, minutes=6, at=T0)
    assert 0 < c3.road_km < c6.road_km and c3.nodes < c6.nodes
    assert 0 < c6.share_of_network <= 1
    assert c6.polygon["geometry"]["type"] in ("Polygon", "MultiPolygon")
    g = router.graph
    iso = router.isochrone(stations, 360, profile="ambulance", at=T0)
    assert c6.nodes == len(iso.nodes)
    near_station = g.tail[np.isin(g.tail, iso.nodes[:50])]
    closed = np.flatnonzero(np.isin(g.tail, near_station))
    router.overlay.apply(Closure(edges=closed.tolist()), at=T0)
    assert d.coverage(stations, minutes=6, at=T0).road_km < c6.road_km
