"""World benchmark: bytes per client per second of Hamlet's area-of-interest
deltas against a naive full-state broadcast (every entity to every client
every tick), and the tick time, with 200 clients spread over the map.

The server runs in its own process; the 200 clients run here, wandering and
now and then speaking. Both figures come from the same run. The last line
printed is a JSON object:
    {"bytes_ratio_full_vs_aoi": ..., "tick_p99_ms": ..., ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_demo.client import HamletClient  # noqa: E402
from protocol.codec import encode  # noqa: E402
from tests.reliability.helpers import ServerProcess  # noqa: E402


def start_server(db: str) -> tuple[subprocess.Popen, int]:
    """The server under test, in its own process; NPCs follow their routines
    (the language model is measured in bench/inference.py and bench/npc.py)."""
    server = ServerProcess(Path(db), npcs=True, env={"HAMLET_SPAWN": "anywhere", "HAMLET_MODEL": "none",
                                                     "HAMLET_MAX_CLIENTS_PER_IP": "100000"}).start()
    return server.proc, server.port


def http_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


async def wander(c: HamletClient, rng: random.Random, stop: asyncio.Event) -> None:
    tiles, w, h = c.map["tiles"], c.map["w"], c.map["h"]
    walkable = set(c.map["walkable"])
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(2.0, 6.0))
        me = c.me
        if me is None or c.closed:
            continue
        for _ in range(20):
            x = min(w - 1, max(0, me.x + rng.randint(-15, 15)))
            y = min(h - 1, max(0, me.y + rng.randint(-15, 15)))
            if tiles[y * w + x] in walkable:
                break
        try:
            await c.move((x, y), wait=False)
            if rng.random() < 0.2:
                await c.say(rng.choice(["hello", "nice day", "anyone at the market?", "on my way"]), wait=False)
        except Exception:
            return


def naive_full_state_bytes(n_entities: int, rng: random.Random) -> int:
    """Size of one full-state frame listing every entity."""
    rows = [[i, "player", f"bench-{i:04d}", rng.randrange(128), rng.randrange(96), 0] for i in range(n_entities)]
    return len(encode("state", tick=123456, entities=rows))


async def run(clients: int, warmup: float, measure: float, seed: int) -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(str(Path(tmp) / "bench.db"))
        try:
            url = f"ws://127.0.0.1:{port}"
            conns: list[HamletClient] = []
            for i in range(clients):
                c = await HamletClient.connect(url)
                await c.join(f"bench-{i:04d}")
                conns.append(c)
            stop = asyncio.Event()
            tasks = [asyncio.create_task(wander(c, random.Random(seed * 1000 + i), stop))
                     for i, c in enumerate(conns)]
            await asyncio.sleep(warmup)
            for c in conns:
                c.drain()
            bytes0 = sum(c.stats.bytes_in for c in conns)
            t0 = time.monotonic()
            await asyncio.sleep(measure)
            for c in conns:
                c.drain()
            elapsed = time.monotonic() - t0
            bytes1 = sum(c.stats.bytes_in for c in conns)
            tick_rate = conns[0].welcome["tick_rate"]
            stats = await asyncio.to_thread(http_json, port, f"/stats?last={int(measure * tick_rate)}")
            stop.set()
            for t in tasks:
                t.cancel()
            connected = sum(not c.closed for c in conns)
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        finally:
            proc.terminate()
            proc.wait(30)
    aoi = (bytes1 - bytes0) / clients / elapsed
    full = naive_full_state_bytes(stats["entities"], rng) * tick_rate
    return {
        "bytes_ratio_full_vs_aoi": round(full / aoi, 2),
        "tick_p99_ms": stats["tick_p99_ms"],
        "tick_p50_ms": stats["tick_p50_ms"],
        "lateness_p99_ms": stats["lateness_p99_ms"],
        "aoi_bytes_per_client_s": round(aoi, 1),
        "full_state_bytes_per_client_s": round(full, 1),
        "clients": clients,
        "connected": connected,
        "entities": stats["entities"],
        "measure_s": round(elapsed, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--measure", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    try:
        import uvloop
        result = uvloop.run(run(args.clients, args.warmup, args.measure, args.seed))
    except ImportError:
        result = asyncio.run(run(args.clients, args.warmup, args.measure, args.seed))
    for k, v in result.items():
        print(f"{k:>32}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
