"""How random road points fare on an extract: routed directly, routed thanks to a fallback end
(the nearest road was a private lane, a parking aisle, a one-way stub), or unreachable with
the reason given. Not a timing: a count of outcomes, for the notes on snapping.

Usage::

    python benchmarks/fragments.py ../shared/data/osm/monaco_osrm-bindings.osm.pbf \
        [--pairs 1000] [--seed 1] [--profile car]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from engine.io import load_graph
from engine.query import Router, Unreachable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="car", choices=("car", "ambulance"))
    args = ap.parse_args()
    graph = load_graph(args.source)
    router = Router(graph)
    rng = np.random.default_rng(args.seed)
    # a caller's location: a point of some road's geometry, jittered by ~3 m
    picks = rng.integers(0, len(graph.point_lat), 2 * args.pairs)
    lat = graph.point_lat[picks] + rng.normal(0, 3e-5, len(picks))
    lon = graph.point_lon[picks] + rng.normal(0, 3e-5, len(picks))
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for k in range(args.pairs):
        o = (float(lat[2 * k]), float(lon[2 * k]))
        d = (float(lat[2 * k + 1]), float(lon[2 * k + 1]))
        try:
            route = router.route(o, d, profile=args.profile)
        except Exception as exc:  # off the map: a counted outcome, with its class
            outcomes[type(exc).__name__] += 1
            continue
        if isinstance(route, Unreachable):
            outcomes["unreachable (isolated)" if route.isolated else "unreachable"] += 1
            reasons[route.reason] += 1
        elif route.origin.fallback or route.destination.fallback:
            outcomes["routed, with a fallback end"] += 1
        else:
            outcomes["routed directly"] += 1
    print(f"{args.pairs} pairs of random road points on {graph.meta.get('name', args.source)} "
          f"({args.profile}, seed {args.seed}):")
    for what, n in outcomes.most_common():
        print(f"  {what:32s} {n:6d}  ({100 * n / args.pairs:.1f} %)")
    for reason, n in reasons.most_common(5):
        print(f"  {n:5d} x {reason}")


if __name__ == "__main__":
    main()
