"""gyrophare's guidance against OSRM's (car.lua, CH) on the same trips: do the two engines
announce the same maneuvers at the same junctions?

Usage (the Python 3.12 venv with the ``bench-osrm`` extra, from the repository root)::

    .venv312/bin/python benchmarks/bench_guidance.py
    .venv312/bin/python benchmarks/bench_guidance.py \\
        --osm ../shared/data/osm/monaco_osrm-bindings.osm.pbf --pairs 1000 --seed 42 \\
        --out benchmarks/results/guidance-osrm-monaco.md

Method. ``--pairs`` random origin/destination pairs on car roads (``bench_osrm.random_pairs``:
the same drawing as the ETA comparison). Both engines route each pair with steps; only the
pairs where they follow **the same roads** (identical OSM node sequences,
``bench_osrm.same_roads``) are compared, so that a difference is one of guidance, not of
routing. A *decision point* is a junction where at least one engine starts a step (depart
and arrive left out); the two engines' maneuvers are matched by location (within
``MATCH_M`` metres). At each decision point: **exact** agreement (same type and modifier),
**type** agreement, one engine silent where the other announces. Per OSRM type, what
gyrophare says there (a confusion table), and examples of the most frequent disagreements.

Also measured on all gyrophare routes: turns of 60 degrees or more at a junction with a
choice that start no step (``engine.guidance.unannounced_turns``; the issue counted ~8 % of
steps hiding one before guidance), and the share of OSRM's steps hiding such a turn.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _osrm
from _common import emit
from bench_osrm import default_pbf, git_head, random_pairs, same_roads

from engine import Route, Router, load_graph
from engine.errors import PointOffNetwork
from engine.graph import haversine_m
from engine.guidance import unannounced_turns

#: two maneuvers within this many metres are at the same junction
MATCH_M = 3.0
SILENT = "(none)"


def label(m: dict[str, Any] | None) -> str:
    if m is None:
        return SILENT
    return f"{m['type']} {m['modifier']}" if m.get("modifier") else str(m["type"])


def ours(route: Route) -> list[dict[str, Any]]:
    out = []
    for s in route.steps[1:]:
        m = s.maneuver
        assert m is not None
        out.append({"type": m.type, "modifier": m.modifier, "location": m.location,
                    "exit": m.exit, "name": s.name})
    return out


def theirs(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for leg in res["routes"][0]["legs"]:
        for s in leg["steps"]:
            m = s["maneuver"]
            if m["type"] in ("depart", "arrive"):
                continue
            out.append({"type": m["type"], "modifier": m.get("modifier"),
                        "location": m["location"],
                        "exit": int(m["exit"]) if "exit" in m else None, "name": s["name"]})
    return out


def match(a: list[dict[str, Any]], b: list[dict[str, Any]]
          ) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """Pairs (gyrophare, OSRM) at the same junction, plus the unmatched of each."""
    used: set[int] = set()
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    for x in a:
        best, best_d = None, MATCH_M
        for j, y in enumerate(b):
            if j in used:
                continue
            d = float(haversine_m(x["location"][1], x["location"][0],
                                  y["location"][1], y["location"][0]))
            if d <= best_d:
                best, best_d = j, d
        if best is None:
            pairs.append((x, None))
        else:
            used.add(best)
            pairs.append((x, b[best]))
    pairs += [(None, y) for j, y in enumerate(b) if j not in used]
    return pairs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--osm", default=str(default_pbf()))
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    pbf = Path(args.osm)
    graph = load_graph(pbf)
    router = Router(graph)
    engine = _osrm.open_engine(str(pbf))
    pairs = random_pairs(graph, args.pairs, args.seed)

    routed = same = 0
    points = exact = type_ok = only_ours = only_theirs = 0
    confusion: dict[str, Counter[str]] = {}
    ours_total: Counter[str] = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    exit_agree = exit_total = 0
    hidden_ours = steps_ours = 0
    hidden_osrm = steps_osrm = 0
    t_guid = 0.0
    for i, (a, b) in enumerate(pairs):
        try:
            t0 = time.perf_counter()
            g_res = router.route(a, b)
            t_guid += time.perf_counter() - t0
        except PointOffNetwork:
            continue
        if not isinstance(g_res, Route):
            continue
        try:
            o_res = _osrm.route(engine, a, b, steps=True, geometry="geojson",
                                annotations=("nodes",), overview="false")
        except RuntimeError:
            continue
        routed += 1
        steps_ours += len(g_res.steps)
        hidden_ours += len(unannounced_turns(graph, g_res.edges, g_res.steps))
        o_nodes = o_res["routes"][0]["legs"][0]["annotation"]["nodes"]
        if not same_roads(g_res.osm_nodes, o_nodes):
            continue
        same += 1
        o_steps = theirs(o_res)
        steps_osrm += len(o_steps) + 1
        # OSRM's steps over gyrophare's edges: which turns >= 60 degrees start no OSRM step
        o_locs = [s["location"] for s in o_steps]
        for k, _angle in unannounced_turns(graph, g_res.edges, []):
            node = int(graph.tail[g_res.edges[k]])
            lon, lat = float(graph.point_lon[node]), float(graph.point_lat[node])
            if not any(float(haversine_m(lat, lon, q[1], q[0])) <= MATCH_M for q in o_locs):
                hidden_osrm += 1
        for x, y in match(ours(g_res), o_steps):
            points += 1
            lx, ly = label(x), label(y)
            ours_total[lx] += 1
            confusion.setdefault(ly, Counter())[lx] += 1
            if x is None:
                only_theirs += 1
            elif y is None:
                only_ours += 1
            else:
                if lx == ly:
                    exact += 1
                if x["type"] == y["type"]:
                    type_ok += 1
                if y["exit"] is not None and y["type"] in ("roundabout", "rotary",
                                                            "exit roundabout", "exit rotary"):
                    exit_total += 1
                    exit_agree += int(x["exit"] == y["exit"])
            if lx != ly:
                where = (x or y or {}).get("location", [0, 0])
                ex = examples.setdefault((ly, lx), [])
                if len(ex) < 2:
                    ex.append(f"pair {i}: {where[1]:.6f},{where[0]:.6f}")
        if (i + 1) % 200 == 0:
            print(f"{i + 1} pairs", file=sys.stderr)

    def pct(x: int, n: int) -> str:
        return f"{100.0 * x / n:.1f} %" if n else "n/a"

    lines = [
        "# Guidance: gyrophare against OSRM on Monaco",
        "",
        f"`{' '.join(['.venv312/bin/python', 'benchmarks/bench_guidance.py', *sys.argv[1:]])}`"
        f" — {pbf.name}, {args.pairs} pairs, seed {args.seed}, osrm-bindings "
        f"{_osrm.bindings_version()}, gyrophare {git_head()}, "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        f"Pairs routed by both: {routed}; on the same roads (compared): {same}.",
        "",
        "## Maneuvers at the decision points of same-road routes",
        "",
        "| | count | share |",
        "|---|---:|---:|",
        f"| decision points (either engine starts a step) | {points} | |",
        f"| same type and modifier | {exact} | {pct(exact, points)} |",
        f"| same type | {type_ok} | {pct(type_ok, points)} |",
        f"| only gyrophare announces | {only_ours} | {pct(only_ours, points)} |",
        f"| only OSRM announces | {only_theirs} | {pct(only_theirs, points)} |",
        f"| roundabout exit numbers equal (where both give one) | {exit_agree} / {exit_total}"
        f" | {pct(exit_agree, exit_total)} |",
        "",
        "## Turns of 60 degrees or more at a junction with a choice, without a step",
        "",
        "| | hidden turns | steps | per step |",
        "|---|---:|---:|---:|",
        f"| gyrophare (all routed pairs) | {hidden_ours} | {steps_ours} | "
        f"{pct(hidden_ours, steps_ours)} |",
        f"| OSRM (same-road pairs, on gyrophare's junctions) | {hidden_osrm} | {steps_osrm} | "
        f"{pct(hidden_osrm, steps_osrm)} |",
        "",
        "## What gyrophare says where OSRM says ... (same-road pairs)",
        "",
        "| OSRM | n | exact | gyrophare's most frequent answers |",
        "|---|---:|---:|---|",
    ]
    for ly, row in sorted(confusion.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(row.values())
        top = ", ".join(f"{lx} {c}" for lx, c in row.most_common(4))
        lines.append(f"| {ly} | {n} | {pct(row.get(ly, 0), n)} | {top} |")
    lines += ["", "## Most frequent disagreements, with examples (lat,lon of the junction)", "",
              "| OSRM | gyrophare | n | examples |", "|---|---|---:|---|"]
    pairs_count = Counter({(ly, lx): c for ly, row in confusion.items()
                           for lx, c in row.items() if lx != ly})
    for (ly, lx), c in pairs_count.most_common(15):
        lines.append(f"| {ly} | {lx} | {c} | {'; '.join(examples.get((ly, lx), []))} |")
    lines += ["", f"gyrophare route + guidance: {1000 * t_guid / max(routed, 1):.2f} ms per "
              "route (mean, all routed pairs, this process: a Router without CCH, guidance "
              "asked of the rules the first time a route passes a junction, the table "
              "read after; timings are noisy on a shared machine)."]
    if not math.isfinite(t_guid):
        lines.append("")
    lines += ["", *EXPLANATION.splitlines()]
    emit(lines, args.out)


EXPLANATION = """## Why they differ

gyrophare's guidance (`engine/guidance.py`, the junction rules) follows osrm-backend's
handlers in their main rules (obvious turns, name announcements, forks, end of road, ramps,
roundabout types and exit counting), and `engine/guidance_collapse.py` its main
post-processing (`collapseTurnInstructions`: U-turns over a median, name oscillations, a
short name change before a maneuver, a maneuver onto a short stretch before a name change;
`suppressShortNameSegments`: `new name` steps under 105 m or onto the name before). Not
everything OSRM does; read the tables above with this in mind.

1. **Where steps start**: the "(none)" rows on either side. gyrophare never folds a step
   whose junction is a turn of 60 degrees or more with another way to go (its promise, the
   table above), where OSRM does (`closeChoicelessTurnAfterTurn`, `doubleChoiceless`,
   staggered intersections, sliproads: not implemented); and where OSRM's angles put a turn
   at the junction before or after gyrophare's, both engines announce it, at two points
   the comparison does not match (`turn right` against "(none)" next to "(none)" against
   `turn slight right`). Some name changes OSRM still folds (its name comparison knows
   street suffixes, `requiresNameAnnounced`), and `turn straight` onto a through street
   where OSRM's through-street test is stricter.
2. **End of road versus turn**: where OSRM says `turn right` / `left` gyrophare often says
   `end of road` (and the reverse). Both test a T (two roads about 90 degrees off, on
   opposite sides; gyrophare, as OSRM finding the street obvious, not where the street
   arrived by goes on along one of them), but OSRM measures angles at a representative
   coordinate further along the roads (lane count based, `coordinate_extractor`) and first
   looks for an obvious road with a longer rule list (`findObviousTurn`); gyrophare
   measures the first 10 m.
3. **Modifiers near the thresholds**: `slight right` against `right` or `straight`, at
   roundabout entries and exits above all, and `turn slight left / right` against `fork`
   or `turn straight`: the modifiers switch at 10, 40 and 120 degrees, so a few degrees of
   measurement (10 m here, OSRM's extractor there) change the word; OSRM's fork test also
   looks at the lanes and the road priorities in more cases.
4. **Roundabouts**: a ring is a `roundabout turn` (no exit step) only when it is small
   (15 m radius at most), has at most four arms, one road per arm, and the arms leave in
   well distinct directions (OSRM `qualifiesAsRoundaboutIntersection`); where OSRM counts
   an arm gyrophare does not (a one-way road only entering the ring), the type or the exit
   number still differ. Where both count exits, the numbers agree in the share given above.

Not compared: depart / arrive (always both), names, intersections and lanes."""


if __name__ == "__main__":
    main()
