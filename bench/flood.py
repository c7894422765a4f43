"""Flood benchmark: how much one client's chat flood, and a volley of
malformed frames from a few others, slow everyone else down. These timing
goals were assertions in tests/reliability/test_flood.py and test_fuzz.py;
on a shared machine they belong here, where the figures are printed, not
failed on.

The server runs in its own process at 20 Hz. Five calm clients ping it in
three phases of the same run: quiet (the baseline), during the flood (one
client sends chat lines as fast as it can until it is cut off with 4005),
and during the garbage (6 connections send 3,000 mutated frames). Goals:
a calm client's ping p99 under 250 ms and the server's tick p99 under
50 ms during the flood; a ping answered within a second under garbage.
The last line printed is a JSON object:
    {"ping_p99_ms_quiet": ..., "ping_p99_ms_flood": ..., "flood_vs_quiet_ping_p99": ...,
     "tick_p99_ms_flood": ..., "ping_p99_ms_garbage": ..., ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_demo.client import HamletClient  # noqa: E402
from tests.reliability.helpers import ServerProcess  # noqa: E402
from tests.reliability.test_fuzz import corpus  # noqa: E402

GOALS = {"ping_p99_ms_flood": 250.0, "tick_p99_ms_flood": 50.0, "ping_max_ms_garbage": 1000.0}


def p99(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(0.99 * len(v)))] if v else 0.0


def tick_stats(port: int, last: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats?last={last}", timeout=10) as r:
        return json.loads(r.read())


async def pings(calm: list[HamletClient], rounds: int) -> list[float]:
    rtts = []
    for _ in range(rounds):
        for c in calm:
            rtts.append(await c.ping())
        await asyncio.sleep(0.05)
    return rtts


async def flood(c: HamletClient) -> None:
    for i in range(100_000):
        if c.closed:
            return
        try:
            await c.say(f"spam {i}", wait=False)
        except Exception:
            return


async def garbage(url: str, frames: list[bytes]) -> None:
    c = await HamletClient.connect(url)
    for frame in frames:
        if c.closed:
            c = await HamletClient.connect(url)
        try:
            await c.send_raw(frame)
        except Exception:
            continue
        await asyncio.sleep(0.002)
    await c.close()


async def run(rounds: int, seed: int) -> dict:
    random.seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "bench.db", "--tick-rate", "20").start()
        try:
            calm = []
            for i in range(5):
                c = await HamletClient.connect(server.url)
                await c.join(f"calm{i}")
                calm.append(c)
            quiet = await pings(calm, rounds)
            flooder = await HamletClient.connect(server.url)
            await flooder.join("flooder")
            during_flood, _ = await asyncio.gather(pings(calm, rounds), flood(flooder))
            flood_ticks = tick_stats(server.port, last=int(rounds * 0.05 * 20) + 20)
            frames = corpus(3000, seed=seed)
            during_garbage, *_ = await asyncio.gather(
                pings(calm, rounds), *(garbage(server.url, frames[i::6]) for i in range(6)))
            cut_off = flooder.close_code
            await asyncio.gather(*(c.close() for c in calm), return_exceptions=True)
        finally:
            server.stop()
    result = {
        "ping_p99_ms_quiet": round(p99(quiet) * 1000, 2),
        "ping_p99_ms_flood": round(p99(during_flood) * 1000, 2),
        "flood_vs_quiet_ping_p99": round(p99(during_flood) / max(1e-6, p99(quiet)), 2),
        "tick_p99_ms_flood": flood_ticks["tick_p99_ms"],
        "ping_p99_ms_garbage": round(p99(during_garbage) * 1000, 2),
        "ping_max_ms_garbage": round(max(during_garbage) * 1000, 2),
        "flooder_close_code": cut_off,
        "pings_per_phase": len(quiet),
    }
    result["goals_met"] = all(result[k] < goal for k, goal in GOALS.items())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=40, help="ping rounds per phase (5 pings each)")
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    result = asyncio.run(run(args.rounds, args.seed))
    for k, v in result.items():
        print(f"{k:>26}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
