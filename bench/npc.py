"""NPC responsiveness under load: how long a person waits for an NPC's reply
to a greeting (send to reply on screen) while 25 NPCs converse, with the
embedded model on the CPU runner, once with the engine's priorities and
once with FIFO scheduling, in the same run. Last line:

    {"human_reply_p95_ms": ..., "human_reply_p95_ms_no_priority": ..., ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.villagers import write_villagers  # noqa: E402
from client_demo.client import HamletClient  # noqa: E402
from server.app import HamletServer  # noqa: E402
from server.config import ServerConfig  # noqa: E402

NAMES = ["Ada", "Bo", "Cai", "Dov", "Eda", "Fen", "Gus", "Hal", "Ivo", "Jun", "Kit", "Lev", "Mo", "Nia", "Oli",
         "Pia", "Quin", "Ros", "Sol", "Tam", "Uma", "Vik", "Wen", "Xan", "Yul"]


def personas_file(path: Path, n: int) -> Path:
    """n villagers who spend the day around the square and the market."""
    return write_villagers(path, NAMES[:n], ["market", "square", "square"])


async def measure(policy: str, npcs: int, seconds: float, tmp: Path) -> dict:
    cfg = ServerConfig(port=0, db=str(tmp / f"{policy}.db"), personas=str(personas_file(tmp / "p.toml", npcs)),
                       llm_runner="process", llm_policy=policy, npc_tokens_per_minute=60_000.0,
                       max_clients_per_ip=1000)
    server = HamletServer(cfg)
    await server.start()
    waits: list[float] = []
    timeouts = 0
    try:
        c = await HamletClient.connect(server.url)
        await c.join("Visitor")
        await asyncio.sleep(15)  # NPCs arrive and start talking among themselves
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            me = c.me
            npcs_near = [e for e in c.entities.values() if e.kind == "npc"]
            if me is None or not npcs_near:
                await asyncio.sleep(0.5)
                continue
            target = min(npcs_near, key=lambda e: (e.x - me.x) ** 2 + (e.y - me.y) ** 2)
            if (target.x - me.x) ** 2 + (target.y - me.y) ** 2 > 64:
                await c.move((target.x, target.y + 1), wait=False)
                await asyncio.sleep(1.0)
                continue
            c.drain()
            t0 = time.perf_counter()
            try:
                await c.say(f"Hello {target.name}, how are you today?", to=target.id)
                await c.wait_for(lambda m: m.type == "event" and m.data["kind"] == "say"
                                 and m.data["from"] == target.id and m.data.get("to") == c.entity, timeout=45)
                waits.append(time.perf_counter() - t0)
            except (asyncio.TimeoutError, Exception):
                timeouts += 1
            await asyncio.sleep(1.0)
        engine = server.llm.info() if server.llm else {}
        await c.close()
    finally:
        await server.stop()
    waits.sort()
    p95 = waits[min(len(waits) - 1, int(0.95 * len(waits)))] * 1000 if waits else None
    p50 = waits[len(waits) // 2] * 1000 if waits else None
    return {"p95_ms": round(p95, 1) if p95 else None, "p50_ms": round(p50, 1) if p50 else None,
            "replies": len(waits), "timeouts": timeouts, "engine": engine.get("runner")}


async def main_async(args) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        prio = await measure("priority", args.npcs, args.seconds, tmp)
        print(f"priority: {prio}", flush=True)
        fifo = await measure("fifo", args.npcs, args.seconds, tmp)
        print(f"fifo:     {fifo}", flush=True)
    return {"human_reply_p95_ms": prio["p95_ms"], "human_reply_p95_ms_no_priority": fifo["p95_ms"],
            "human_reply_p50_ms": prio["p50_ms"], "human_reply_p50_ms_no_priority": fifo["p50_ms"],
            "replies": prio["replies"], "replies_no_priority": fifo["replies"], "npcs": args.npcs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npcs", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of greetings per mode")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
