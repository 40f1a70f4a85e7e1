"""``gyrophare replay``: replay a crisis scenario and write metrics and an HTML report.

Wired into the main command line by :func:`add_replay_parser`; exit codes follow
``engine.cli``: 0 success, 2 bad input (an invalid scenario — the message lists every bad
field —, a map that cannot be loaded, e.g. a ``place`` without network).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.attribution import ATTRIBUTION
from engine.errors import GyrophareError, SourceError

if TYPE_CHECKING:
    from engine.io import ProgressFn

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_replay_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand to ``gyrophare``'s subparsers."""
    p = subparsers.add_parser(
        "replay", help="replay a crisis scenario (calls, closures, hospital statuses) and "
        "report response times and hospital loads",
        description="Replay a scenario file (data/scenarios/README.md) on the engine: "
        "metrics.json, metrics.csv, trips.csv, occupancy.csv, result.json and report.html "
        "go into --out.")
    p.add_argument("scenario", help="scenario file (.yaml, .yml or .json)")
    p.add_argument("--compare", nargs="+", metavar="POLICY",
                   help="variants to compare, e.g. 'nearest saturation_aware', or "
                   "'priority normal', 'closures-on closures-off'; words may be joined "
                   "with '+' (nearest+normal). Default: the scenario's own policy")
    p.add_argument("--seeds", type=_positive, default=1, metavar="N",
                   help="replay each variant with N seeds (scenario seed, +1, ...)")
    p.add_argument("--seed", type=int, help="first seed (default: the scenario's)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=_positive, metavar="N",
                   help="run on a local Dask cluster of N worker processes")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask scheduler (e.g. tcp://127.0.0.1:8786)")
    p.add_argument("--osm", metavar="FILE", help="replace the scenario's map by this file "
                   "(e.g. a local extract when the scenario downloads a place)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)
    return p


def _progress(enabled: bool) -> ProgressFn | None:
    if not enabled:
        return None
    from engine.io import tqdm_progress

    return tqdm_progress("replay ")


def cmd_replay(args: argparse.Namespace) -> int:
    from engine.replay.report import write_outputs
    from engine.replay.runner import compare
    from engine.replay.scenario import ScenarioError, load_scenario, parse_variant
    from engine.replay.world import load_map

    t0 = time.perf_counter()
    try:
        sc = load_scenario(args.scenario)
        if args.osm:
            if not Path(args.osm).exists():
                raise SourceError(f"map file not found: {args.osm}")
            sc = sc.with_map(str(Path(args.osm).resolve()))
        variants = [parse_variant(v, sc.default_variant) for v in (args.compare or [])] or None
        graph, _ = load_map(sc, progress=not args.no_progress)  # fail fast, before any run
        cmp = compare(sc, variants, seeds=args.seeds, seed=args.seed, workers=args.workers,
                      scheduler=args.scheduler, progress=_progress(not args.no_progress))
        files = write_outputs(cmp, args.out, graph=graph, scenario=sc)
    except ScenarioError as exc:
        print(f"gyrophare replay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (SourceError, GyrophareError, ValueError) as exc:
        print(f"gyrophare replay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    elapsed = time.perf_counter() - t0
    print(f"replay {cmp.scenario}: {len(cmp.results)} run(s) in {elapsed:.1f} s")
    for name, s in cmp.summary.items():
        r = s["response_s"]
        p50 = "-" if r["p50"] is None else f"{r['p50'] / 60:.1f}"
        p90 = "-" if r["p90"] is None else f"{r['p90'] / 60:.1f}"
        within = ", ".join(f"{k} {'-' if v is None else f'{v:.0%}'}"
                           for k, v in s["response_within_target"].items())
        print(f"  {name:<28} calls {s['calls']:>5}  response p50 {p50:>5} min  p90 "
              f"{p90:>5} min  within {within}  unserved {s['unserved']}  diversions "
              f"{s['diversions']}")
    for f in files.values():
        print(f"  wrote {f}")
    print(f"  map data {ATTRIBUTION}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m engine.replay.cli replay ...``), for use before
    the subcommand is wired into ``gyrophare``."""
    parser = argparse.ArgumentParser(prog="gyrophare")
    sub = parser.add_subparsers(dest="command", required=True)
    add_replay_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
