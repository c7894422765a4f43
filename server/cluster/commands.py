"""`hamlet region` (run one region of a world, or stand by for it),
`hamlet gateway` (clients' sockets, routed to the regions) and the
arguments of `hamlet cluster` (cluster_cmd.py: nats-server, every region
of a world and a gateway on this machine, in one command)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("region", help="run one region of a world split across processes (NATS)",
                              description="Own one region of a world under a lease in NATS JetStream (or wait "
                                          "for it as a standby), tick it and keep its database.")
    p.add_argument("--nats", required=True, metavar="URL", help="NATS server URL, e.g. nats://127.0.0.1:4222")
    p.add_argument("--world", default="hamlet", help="world name, the same in every region (default hamlet)")
    p.add_argument("--region", required=True, help="region name: r0, r1, ... (see --regions)")
    p.add_argument("--regions", type=int, default=2, help="the map is split into this many columns (default 2)")
    p.add_argument("--db", metavar="PATH", help="this region's database (default hamlet-data/<world>-<region>.db)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tick-rate", type=float, default=20.0)
    p.add_argument("--lease-ttl", type=float, default=3.0, help="seconds a dead owner keeps the region (default 3)")
    p.add_argument("--wait", type=float, default=3600.0, help="seconds to wait for the lease as a standby")
    p.add_argument("--walkers", type=int, default=0, help="wandering entities to start in this region (a demo, the bench)")
    p.add_argument("--replicate", action="store_true", help="replicate the database through JetStream: a standby "
                   "keeps its own copy, no shared disk (default off)")
    _npc_options(p)
    p.add_argument("--status-every", type=float, default=5.0, help="seconds between JSON status lines on stdout")
    p.add_argument("--http-port", type=int, default=-1, metavar="P",
                   help="serve /metrics (labelled with the region) and /healthz on this port (0: any free one)")
    p.add_argument("--http-host", default="127.0.0.1")
    p.set_defaults(func=run_region)

    g = subparsers.add_parser("gateway", help="hold clients' WebSockets and route them to a world's regions (NATS)",
                              description="Serve the hamlet.v1 protocol to clients and route each session to the "
                                          "region that holds its avatar, following it across handoffs.")
    g.add_argument("--nats", required=True, metavar="URL", help="NATS server URL, e.g. nats://127.0.0.1:4222")
    g.add_argument("--world", default="hamlet", help="world name, as the regions were given (default hamlet)")
    g.add_argument("--regions", type=int, default=2, help="the world's regions: the map split into this many columns")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=8765)
    g.set_defaults(func=run_gateway)

    c = subparsers.add_parser("cluster", help="start nats-server and a local cluster of regions in one command",
                              description="Start nats-server (JetStream) and one `hamlet region` process per "
                                          "region on this machine; a region that dies is started again.")
    c.add_argument("--regions", type=int, default=2)
    c.add_argument("--world", default="hamlet")
    c.add_argument("--data", default="hamlet-data/cluster", help="databases and the NATS store (default hamlet-data/cluster)")
    c.add_argument("--nats", metavar="URL", help="use this NATS server instead of starting one")
    c.add_argument("--walkers", type=int, default=0, help="wandering entities per region")
    c.add_argument("--replicate", action="store_true", help="every region with --replicate (see hamlet region)")
    c.add_argument("--standbys", action="store_true",
                   help="a second process for every region, which takes it over within the lease when the "
                        "owner dies (with --replicate each keeps its own database, else they share the region's)")
    _npc_options(c)
    c.add_argument("--llm-workers", type=int, default=1, metavar="N",
                   help="with --npcs and a model run here (embedded or a folder): the `hamlet llm-worker`s "
                        "every region shares over NATS (default 1; shared_engine.py)")
    c.add_argument("--host", default="127.0.0.1", help="the gateway's address (default 127.0.0.1)")
    c.add_argument("--port", type=int, default=8765, help="the gateway's port (default 8765; 0: any free port)")
    c.set_defaults(func=run_cluster)


def run_cluster(args: argparse.Namespace) -> int:
    from server.cluster.cluster_cmd import run_cluster as run

    return run(args)


def _npc_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--npcs", action="store_true",
                   help="run the village's NPCs: each in the region that holds it, handed off with its mind "
                        "(every region of a world alike; default off)")
    p.add_argument("--model", "--llm", dest="model", default="none",
                   help="the NPCs' language model: none (default: they follow their routines), embedded (a "
                        "region loads it; `hamlet cluster` starts llm-workers its regions share), an http(s):// "
                        "OpenAI-compatible URL or nats://HOST:PORT/WORLD (llm-workers) shared by the regions")


def run_region(args: argparse.Namespace) -> int:
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return asyncio.run(_region(args))
    except KeyboardInterrupt:
        return 0


async def _region(args: argparse.Namespace) -> int:
    import random

    from server.cluster.db_replica import ReplicaError
    from server.cluster.lease import LeaseLost
    from server.cluster.region import RegionNode
    from server.cluster.regions import RegionMap
    from server.cluster.walkers import PREFIX, walker_system
    from server.config import load_config
    from server.world.village import village

    m = village()
    try:
        regions = RegionMap.columns(args.regions, m.width, m.height)
        if args.region not in regions.regions:
            raise ValueError(f"no region {args.region!r}; with --regions {args.regions}: {', '.join(regions.names())}")
        db = args.db or f"hamlet-data/{args.world}-{args.region}.db"
        # HAMLET_* settings apply as to `hamlet serve` (spawn, grace_s, limits...)
        config = load_config(overrides={"db": db, "npcs": args.npcs, "model": args.model, "seed": args.seed,
                                        "tick_rate": args.tick_rate})
        node = RegionNode(args.world, args.region, regions, args.nats, config, lease_ttl_s=args.lease_ttl,
                          replicate=args.replicate)
        await node.start(wait_s=args.wait)
    except (ValueError, TimeoutError, OSError, ReplicaError, LeaseLost) as exc:
        print(f"hamlet region: {exc}", file=sys.stderr)
        return 1
    node.game.agent_systems.append(walker_system(args.region, random.Random(args.seed)))
    first = {"region": args.region, "owner": node.owner, "tick": node.game.world.tick, "entities": len(node.entity_ids()),
             "model": args.model if args.npcs else None}
    if args.http_port >= 0:
        from server.cluster.region_http import serve_http

        http = await serve_http(node, args.http_host, args.http_port)
        first["http"] = "http://{}:{}".format(*http.sockets[0].getsockname()[:2])
    print(json.dumps(first), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Walkers are made once per region, in a new world; later they live
    # wherever they walked to (their names are held there).
    for i in range(args.walkers if node.db.account_by_name(f"{PREFIX}{args.region}-0") is None else 0):
        x, y = _free_tile(node, i)
        await node.join(f"{PREFIX}{args.region}-{i}", x, y)
    while not stop.is_set() and node.running:
        try:
            await asyncio.wait_for(stop.wait(), args.status_every)
        except asyncio.TimeoutError:
            pass
        print(json.dumps(status(node)), flush=True)
    if node.lost_lease:
        print(f"hamlet region: lost the lease of {args.region}", file=sys.stderr)
        return 3
    if node.failed:
        print(f"hamlet region: {args.region} stopped on an error (logged above); what was committed stays",
              file=sys.stderr)
        await node.crash()  # no snapshot, no goodbye: the lease runs out and a standby takes over
        return 4
    from server.cluster.region_figures import region_figures

    figures = region_figures(node)  # between two ticks, right before the last: this region as it stops
    await node.stop()
    print(json.dumps(dict(status(node), final=True, figures=figures)), flush=True)
    return 0


def _free_tile(node, i: int) -> tuple[int, int]:
    m, r, cell = node.game.world.map, node.region, node.regions.cell
    tiles = [(x, y) for y in range(r.y0 * cell, r.y1 * cell) for x in range(r.x0 * cell, r.x1 * cell)
             if m.walkable(x, y)]
    return tiles[(i * 7919) % len(tiles)]


def _p99(xs) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(len(s) * 0.99))], 2) if s else 0.0


def status(node) -> dict:
    """A region's status line; `ticks_ms` and `handoffs_ms` are the ticks'
    durations and the confirmed handoffs' latencies since the last line
    (bench/cluster.py takes exact percentiles over them)."""
    window = [round(t, 2) for t in node.tick_window]
    node.tick_window.clear()
    handoffs = [round(t, 2) for t in node.handoff_window]
    node.handoff_window.clear()
    return {"region": node.region.name, "tick": node.game.world.tick, "entities": sorted(node.entity_ids()),
            "in_transit": sorted(node.in_transit()), "tick_p99_ms": _p99(node.tick_ms),
            "handoffs": len(node.handoff_ms), "handoff_p99_ms": _p99(node.handoff_ms),
            "ghosts": len(node.ghosts.ids()), "sessions": len(node.remote),
            "npcs": node.npcs.bound() if node.npcs is not None else 0, "ticks_ms": window,
            "handoffs_ms": handoffs,
            **({"replica": {"acked_n": node.publisher.acked_n, "unacked": node.publisher.pending()}}
               if node.publisher is not None else {})}


def run_gateway(args: argparse.Namespace) -> int:
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        logging.getLogger("websockets").setLevel(logging.WARNING)  # a line per connection otherwise
        return asyncio.run(_gateway(args))
    except KeyboardInterrupt:
        return 0


async def _gateway(args: argparse.Namespace) -> int:
    from server.cluster.gateway import Gateway
    from server.cluster.regions import RegionMap
    from server.config import load_config
    from server.world.village import village

    m = village()
    try:
        regions = RegionMap.columns(args.regions, m.width, m.height)
        config = load_config(overrides={"host": args.host, "port": args.port, "npcs": False})
        gw = Gateway(args.world, args.nats, regions, config, spawn=m.places["square"].entry)
        await gw.start()
    except (ValueError, OSError) as exc:
        print(f"hamlet gateway: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"gateway": gw.name, "url": gw.url, "port": gw.port, "world": args.world}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gw.stop()
    return 0
