"""``gyrophare`` command line: the engine's commands plus ``serve``, which runs the HTTP
service (kept here so that the engine never imports the web layer)."""

from __future__ import annotations

import argparse
import sys

from engine.cli import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    add_source_args,
    build_parser,
    command_of,
    run,
)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP service: the map loaded and the kernels of routes, tables and nearest
    warmed before the first request, one progress line per stage on stderr; the other
    kernels follow in the background (:mod:`engine.warmup`)."""
    import os

    import uvicorn

    env = {"GYROPHARE_OSM": args.osm, "GYROPHARE_GRAPH": args.graph,
           "GYROPHARE_PLACE": args.place, "GYROPHARE_REDIS_URL": args.redis_url,
           "GYROPHARE_HOSPITALS": args.hospitals, "GYROPHARE_CACHE_DIR": args.cache_dir}
    for key, value in env.items():
        if value:
            os.environ[key] = str(value)
    from api.settings import Settings

    settings = Settings()
    host = args.host or settings.host
    if settings.open_access and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"gyrophare: no API keys configured (GYROPHARE_API_KEYS): refusing to listen on "
              f"{host}; listening on 127.0.0.1 only", file=sys.stderr)
        host = "127.0.0.1"
    if args.workers > 1 and not settings.redis_url:
        print("gyrophare: several workers share state through Redis: add --redis-url "
              "(the embedded store serves one worker)", file=sys.stderr)
        return EXIT_BAD_INPUT
    port = args.port or settings.port
    print(f"gyrophare: API docs at http://{host}:{port}/docs (health: /health); "
          f"store: {'redis ' + settings.redis_url if settings.redis_url else 'embedded'}; "
          "map data © OpenStreetMap contributors, ODbL 1.0", file=sys.stderr)
    if args.workers == 1:
        uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port,
                    log_level=args.log_level, access_log=args.access_log)
        return EXIT_OK
    import socket

    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("api.app:app_from_env", factory=True, host=host, port=port,
                            workers=args.workers, log_level=args.log_level,
                            access_log=args.access_log)
    # The shared listening socket is created with an explicit IPPROTO_TCP: with protocol 0
    # asyncio never sets TCP_NODELAY on accepted connections, and every keep-alive request
    # waits ~40 ms for a delayed ACK (uvicorn issue #3149; measured 44 ms vs 2 ms here).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()
    return EXIT_OK


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """The ``serve`` subcommand."""
    serve = sub.add_parser("serve", help="run the HTTP API (FastAPI) on this map")
    add_source_args(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--redis-url", help="shared state in Redis, e.g. redis://127.0.0.1:6379/0"
                       " (default: embedded store, one worker)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (needs Redis)")
    serve.add_argument("--hospitals", metavar="FILE", help="hospital file (data/hospitals "
                       "format); default: the map's OSM hospitals or the demo facilities")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true",
                       help="log every request (off by default: it costs throughput)")
    serve.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gyrophare`` console command."""
    return run(build_parser(extra=(add_serve_parser,), command=command_of(argv)), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
