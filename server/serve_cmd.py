"""`hamlet serve`: run the world server."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the world server (WebSocket + HTTP on one port)",
                              description="Run the Hamlet world server. Settings come from defaults, "
                                          "then --config FILE ([server] table), then HAMLET_<NAME> "
                                          "environment variables, then these flags.")
    p.add_argument("--config", metavar="FILE", help="TOML file with a [server] table")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8765; 0 picks a free one)")
    p.add_argument("--db", metavar="PATH", help="world database (default ./hamlet-data/world.db)")
    p.add_argument("--seed", type=int, help="world seed for a new database (default 1)")
    p.add_argument("--tick-rate", type=float, dest="tick_rate", help="ticks per second (default 20)")
    p.add_argument("--grace", type=float, dest="grace_s", help="seconds an avatar waits for its owner (default 60)")
    p.add_argument("--max-clients", type=int, dest="max_clients", help="refuse connections past this (default 2000)")
    p.add_argument("--model", help="embedded (default), a local model folder, an http:// OpenAI-compatible URL "
                                    "(several, comma-separated: the least loaded takes each job), nats://HOST:PORT/WORLD "
                                    "(the queue group of hamlet llm-worker processes), or none")
    p.add_argument("--llm-runner", dest="llm_runner", help="auto, process, thread or cuda (default auto)")
    p.add_argument("--llm-nice", type=int, dest="llm_nice",
                   help="nice value of the CPU model worker, 0-19 (default 15: the tick first; 0: replies first)")
    p.add_argument("--llm-threads", type=int, dest="llm_threads",
                   help="threads of the CPU model worker (default 0: one per core)")
    p.add_argument("--personas", metavar="FILE", help="persona file (default agents/data/village.toml)")
    p.add_argument("--goods", metavar="FILE",
                   help="goods file for a new world: items, prices, shops (default agents/data/goods.toml)")
    p.add_argument("--max-clients-per-ip", type=int, dest="max_clients_per_ip",
                   help="connections from one address (default 64)")
    p.add_argument("--no-npcs", action="store_const", const=False, dest="npcs", help="start without NPCs")
    p.add_argument("--log-level", dest="log_level", help="DEBUG, INFO, WARNING (default INFO)")
    p.set_defaults(func=run)


def where_to_connect(host: str, port: int) -> str:
    """The line that tells a person where to open the browser client and
    connect a program, for a port that speaks hamlet.v1 (`hamlet serve`'s,
    a gateway's)."""
    from server.http import reachable_host

    host = reachable_host(host)
    return f"Open http://{host}:{port}/ in a browser, or connect a client to ws://{host}:{port}"


def run(args: argparse.Namespace) -> int:
    from server.config import ServerConfig, load_config

    overrides = {name: getattr(args, name, None) for name in ServerConfig.field_names()}
    try:
        config = load_config(args.config, overrides=overrides)
    except (OSError, ValueError) as exc:
        print(f"hamlet serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # uvloop is a dependency, but the server works without it
        runner = asyncio.run
    try:
        return runner(_main(config))
    except KeyboardInterrupt:
        return 0


async def _main(config) -> int:
    from server.app import HamletServer

    try:
        server = HamletServer(config)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"hamlet serve: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        print(f"hamlet serve: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        server.db.close()
        return 1
    print(f"Hamlet is running. {where_to_connect(config.host, server.port)}", flush=True)
    print(f"World database: {config.db}  (Ctrl-C to stop)", flush=True)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, server._tick_task}, return_when=asyncio.FIRST_COMPLETED)
    await server.stop()
    print("Hamlet stopped; world saved.", flush=True)
    return 0
