"""``gyrophare`` command line, engine side: build graphs, ask for routes, replay scenarios
(``gyrophare serve`` is added by :mod:`api.cli`, so the engine never imports the service).

Exit codes: 0 success, 2 bad input (including a point off the road network or an unreadable
source), 3 no route between valid points. The reason goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from engine.errors import GyrophareError, InvalidCoordinate, PointOffNetwork, SourceError

EXIT_OK, EXIT_BAD_INPUT, EXIT_NO_ROUTE = 0, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on bad usage, which is our bad-input code too."""


def _latlon(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LAT,LON, got {text!r}")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected LAT,LON numbers, got {text!r}") from exc


def _radius(text: str) -> float:
    """A snapping radius: a positive, finite number of metres."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of metres, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of metres, got {text}")
    return value


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("expected WEST,SOUTH,EAST,NORTH")
    return tuple(float(p) for p in parts)  # type: ignore[return-value]


def add_source_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--osm", metavar="FILE", help="OSM file (.osm.pbf, .osm[.gz|.bz2]), "
                   "osmnx GraphML, DIMACS .gr, or a cached graph .npz")
    g.add_argument("--graph", metavar="CACHE", help="a cached graph file (.npz)")
    g.add_argument("--place", metavar="NAME", help='download with osmnx, e.g. "Dijon, France"')
    g.add_argument("--bbox", type=_bbox, metavar="W,S,E,N", help="download a bounding box")
    p.add_argument("--cache-dir", metavar="DIR", help="graph cache folder "
                   "(default $GYROPHARE_CACHE_DIR or ~/.cache/gyrophare)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def _load(args: argparse.Namespace, *, progress: bool) -> Any:
    from pathlib import Path

    from engine.io import load_graph

    source = args.osm or args.graph
    if source:
        path = Path(source).expanduser()
        if path.is_dir():
            raise SourceError(f"{source} is a directory: give a map file (.osm.pbf, "
                              ".osm[.gz|.bz2], .graphml[.gz], DIMACS .gr[.gz]) or a cached "
                              "graph (.npz)")
    return load_graph(source, place=args.place, bbox=args.bbox, cache=not args.no_cache,
                      cache_dir=args.cache_dir, progress=progress)


def _fmt_duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


# ------------------------------------------------------------------------------ commands
def cmd_graph_build(args: argparse.Namespace) -> int:
    from engine.graph import graph_stats

    t0 = time.perf_counter()
    args.graph = None
    args.osm = args.source or args.osm  # neither: the embedded sample city
    graph = _load(args, progress=not args.json)
    stats = graph_stats(graph)
    stats["graph_seconds"] = round(time.perf_counter() - t0, 3)
    if not args.no_hierarchy:
        from engine.cch import CCHIndex
        from engine.io import tqdm_progress

        t1 = time.perf_counter()
        index = CCHIndex.load_or_build(graph.turn_graph(), cache_dir=args.cache_dir,
                                       progress=None if args.json else tqdm_progress())
        stats["hierarchy"] = {"arcs": index.n_arcs, "mbytes": round(index.nbytes / 1e6, 1),
                              "source": index.meta.get("source"),
                              "seconds": round(time.perf_counter() - t1, 3)}
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["cache_file"] = graph.meta.get("cache_file")
    if args.json:
        print(json.dumps(stats))
        return EXIT_OK
    print(f"graph      {stats['name']}")
    print(f"nodes      {stats['nodes']:,}")
    print(f"edges      {stats['edges']:,} ({stats['car_edges']:,} open to cars)")
    print(f"road       {stats['road_km']:,.1f} km")
    print(f"largest strongly connected component: {stats['largest_scc_share']:.1%} of car nodes")
    print(f"signals    {stats['traffic_signals']:,} traffic signals")
    print(f"hospitals  {stats['hospitals']} amenity=hospital objects (as mapped in OSM)")
    print(f"turns      {stats['turn_arcs']:,} turns between {stats['turn_nodes']:,} directed "
          f"roads (traffic keeps {stats['driving_side']})")
    _print_restrictions(stats["restrictions"])
    if "hierarchy" in stats:
        h = stats["hierarchy"]
        print(f"hierarchy  {h['arcs']:,} arcs, {h['mbytes']} MB "
              f"({'built' if h['source'] == 'built' else 'cached'}, {h['seconds']:.2f} s)")
    if stats["cache_file"]:
        print(f"cache      {stats['cache_file']}")
    print(f"time       {stats['seconds']:.2f} s")
    print("data       © OpenStreetMap contributors, ODbL 1.0")
    return EXIT_OK


def _print_restrictions(r: dict[str, Any]) -> None:
    """Turn restrictions read, applied and skipped, by kind (and skipped by reason)."""
    if not r.get("n_read") and not r.get("n_skipped"):
        print("restrictions none in this map")
        return
    print(f"restrictions {r.get('n_read', 0)} read, {r.get('n_applied', 0)} applied, "
          f"{r.get('n_skipped', 0)} skipped")
    for kind in sorted(set(r.get("read", {})) | set(r.get("applied", {}))):
        print(f"  {kind:<18} read {r.get('read', {}).get(kind, 0):>4}  "
              f"applied {r.get('applied', {}).get(kind, 0):>4}")
    for reason, kinds in r.get("skipped", {}).items():
        what = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"  skipped: {reason}: {what}")
    for note, kinds in r.get("notes", {}).items():
        what = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"  note: {note}: {what}")


def _fmt_distance(metres: float) -> str:
    return f"{metres / 1000:.1f} km" if metres >= 1000 else f"{metres:.0f} m"


def cmd_route(args: argparse.Namespace) -> int:
    from engine.query import Router, Unreachable

    graph = _load(args, progress=not args.json)
    # no warm-up: one route loads the few kernels it runs from numba's cache (a server
    # warms them all, ahead of its requests)
    router = Router(graph, snap_radius_m=args.snap_radius, warm_up=False)
    result = router.route(args.from_, args.to, profile=args.profile, metric=args.metric,
                          algorithm=args.algorithm, contraflow=args.contraflow,
                          restricted_turns=args.restricted_turns)
    if isinstance(result, Unreachable):
        if args.json:
            print(json.dumps(result.to_dict()))
        print(f"no route: {result.reason}", file=sys.stderr)
        return EXIT_NO_ROUTE
    if args.json:
        print(json.dumps(result.to_dict(args.language)))
        return EXIT_OK
    print(f"route on {graph.meta.get('name', 'graph')} ({args.metric}, {args.profile}, "
          "free flow)")
    print(f"  duration  {_fmt_duration(result.duration_s)} ({result.duration_s:.1f} s, of which "
          f"{result.turn_delay_s:.1f} s at turns, junctions and signals)")
    if args.profile == "ambulance" and result.eta_normal_s is not None:
        print(f"  ETA       {_fmt_duration(result.duration_s)} with lights and sirens, "
              f"{_fmt_duration(result.eta_normal_s)} at normal traffic speed")
    print(f"  distance  {result.distance_m / 1000:.2f} km")
    print(f"  from      {result.origin.lat:.6f},{result.origin.lon:.6f} "
          f"(snapped {result.origin.distance_m:.0f} m)")
    print(f"  to        {result.destination.lat:.6f},{result.destination.lon:.6f} "
          f"(snapped {result.destination.distance_m:.0f} m)")
    print(f"  OSM nodes {len(result.osm_nodes)}; traffic signals passed: {len(result.signals)}")
    for note in result.notes:
        print(f"  note      {note}")
    _print_guidance(result.all_steps, args.language)
    for sig in result.signals:
        print(f"  signal    node {sig.osm_id} at {sig.seconds_from_start:.0f} s")
    print("  © OpenStreetMap contributors, ODbL 1.0")
    return EXIT_OK


def _print_guidance(steps: list[Any], language: str) -> None:
    """The turn-by-turn guidance: one numbered line per step, its instruction in
    ``language``, then the distance and the time it drives (to the next step)."""
    from engine.guidance import instruction

    print("  guidance:")
    for i, step in enumerate(steps, start=1):
        print(f"    {i:>3}. {instruction(step, language):<58} "
              f"{_fmt_distance(step.distance_m):>8} {_fmt_duration(step.duration_s):>9}")


#: commands that do not need the ``replay`` subcommand's parser, whose import (the scenario
#: models: pydantic, shapely) costs more than a whole ``gyrophare route``
_LIGHT_COMMANDS = ("graph", "route", "serve")


def command_of(argv: list[str] | None) -> str | None:
    """The subcommand ``argv`` (default ``sys.argv[1:]``) names, if it names one first."""
    args = sys.argv[1:] if argv is None else argv
    return args[0] if args and not args[0].startswith("-") else None


def build_parser(extra: Iterable[Callable[[Any], None]] = (), *,
                 command: str | None = None) -> argparse.ArgumentParser:
    """The ``gyrophare`` parser with the engine's subcommands; each of ``extra`` adds more
    subcommands to the subparsers it is given (``serve``, from :mod:`api.cli`). When
    ``command`` (:func:`command_of`) is one of :data:`_LIGHT_COMMANDS`, the ``replay``
    subcommand is left out: it is not the one to parse."""
    parser = _Parser(prog="gyrophare", description="Emergency routing on OpenStreetMap roads.")
    sub = parser.add_subparsers(dest="command", required=True)

    graph = sub.add_parser("graph", help="build and inspect road graphs")
    gsub = graph.add_subparsers(dest="graph_command", required=True)
    build = gsub.add_parser("build", help="compile a map source into a cached graph")
    build.add_argument("source", nargs="?", help="map file (default: the embedded sample city)")
    add_source_args(build)
    build.add_argument("--json", action="store_true", help="print the figures as JSON")
    build.add_argument("--no-hierarchy", action="store_true",
                       help="do not build (or check) the routing hierarchy (CCH) now")
    build.set_defaults(func=cmd_graph_build)

    route = sub.add_parser("route", help="fastest or shortest route between two points")
    add_source_args(route)
    route.add_argument("--from", dest="from_", type=_latlon, required=True, metavar="LAT,LON")
    route.add_argument("--to", type=_latlon, required=True, metavar="LAT,LON")
    route.add_argument("--profile", choices=("car", "ambulance"), default="car",
                       help="ambulance: lights and sirens, bus lanes, emergency links")
    route.add_argument("--contraflow", action="store_true",
                       help="ambulance may drive against one-way streets (with a penalty)")
    route.add_argument("--restricted-turns", action="store_true",
                       help="ambulance may take turns that OSM restrictions forbid (with a "
                            "penalty)")
    route.add_argument("--metric", choices=("time", "distance"), default="time")
    route.add_argument("--algorithm", choices=("cch", "bidirectional", "dijkstra", "astar"),
                       default=None, help="default: cch (Customizable Contraction Hierarchy)")
    route.add_argument("--snap-radius", type=_radius, default=500.0, metavar="M",
                       help="max distance from a road, metres, > 0 (default 500)")
    # engine.guidance.LANGUAGES, written out: importing the engine only to build the parser
    # would slow down every command (tests/test_cli_io.py checks the two agree)
    route.add_argument("--language", choices=("en", "fr"), default="en",
                       help="language of the turn-by-turn instructions (default en)")
    route.add_argument("--json", action="store_true", help="print one JSON object (the "
                       "steps with their instructions included)")
    route.set_defaults(func=cmd_route)

    if command not in _LIGHT_COMMANDS:
        from engine.replay.cli import add_replay_parser

        add_replay_parser(sub)
    for add in extra:
        add(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; errors become exit codes with a message."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (InvalidCoordinate, PointOffNetwork, SourceError) as exc:
        print(f"gyrophare: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except GyrophareError as exc:
        print(f"gyrophare: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # pragma: no cover - `gyrophare ... | head`
        return EXIT_OK
    except OSError as exc:  # an unreadable map file, a cache folder we may not write...
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"gyrophare: cannot read or write a file{where}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    """The engine's commands alone (``python -m engine.cli``); ``gyrophare`` is
    :func:`api.cli.main`, which adds ``serve``."""
    return run(build_parser(command=command_of(argv)), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

