"""Soak and fault benchmark (bounded; not part of the test suite).

1. kill -9 the server at random moments under chat load, `--restarts`
   times, and count acknowledged chat lines missing after each restart.
2. Send `--fuzz-frames` malformed frames over sockets and count server crashes.
3. Run bots for `--soak` seconds and report the server's memory growth.

Last line: {"acked_chats_lost": ..., "kill9_restarts": ..., "fuzz_frames": ...,
            "server_crashes": ..., "rss_growth_pct": ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_demo.client import HamletClient  # noqa: E402
from tests.reliability.helpers import ServerProcess  # noqa: E402
from tests.reliability.test_fuzz import corpus  # noqa: E402

BIG_LIMIT = {"HAMLET_MAX_CLIENTS_PER_IP": "100000"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def kill9_phase(tmp: Path, restarts: int, clients: int, rng: random.Random) -> tuple[int, int]:
    db = tmp / "kill9.db"
    acked: dict[int, str] = {}
    lost_total = 0
    server = ServerProcess(db, env=BIG_LIMIT).start()
    for r in range(restarts):
        conns = []
        for i in range(clients):
            c = await HamletClient.connect(server.url)
            await c.join(f"s{i}", token=getattr(kill9_phase, "tokens", {}).get(i))
            kill9_phase.tokens = {**getattr(kill9_phase, "tokens", {}), i: c.token}
            conns.append(c)
        stop = asyncio.Event()

        async def talk(c: HamletClient) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                text = f"{c.entity}:{r}:{n}"
                try:
                    acked[await c.say(text)] = text
                except Exception:
                    return

        tasks = [asyncio.create_task(talk(c)) for c in conns]
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        server.kill9()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in conns:
            await c.close()
        server = ServerProcess(db, env=BIG_LIMIT).start()
        stored = dict(sqlite3.connect(db).execute("SELECT id, text FROM chat").fetchall())
        lost = sum(1 for k, v in acked.items() if stored.get(k) != v)
        lost_total = max(lost_total, lost)
        print(f"  restart {r + 1}/{restarts}: {len(acked)} acknowledged lines so far, {lost} missing", flush=True)
    server.stop()
    return lost_total, len(acked)


async def fuzz_phase(tmp: Path, frames: int) -> tuple[int, int]:
    server = ServerProcess(tmp / "fuzz.db", env=BIG_LIMIT).start()
    crashes = 0
    sent = 0
    c = await HamletClient.connect(server.url)
    for frame in corpus(frames, seed=11):
        if server.proc.poll() is not None:
            crashes += 1
            server.start()
            c = await HamletClient.connect(server.url)
        if c.closed:
            c = await HamletClient.connect(server.url)
        try:
            await c.send_raw(frame)
            sent += 1
        except Exception:
            pass
    await asyncio.sleep(0.5)
    if server.proc.poll() is not None:
        crashes += 1
    await c.close()
    server.stop()
    return sent, crashes


def soak_phase(tmp: Path, seconds: float, bots: int) -> float:
    server = ServerProcess(tmp / "soak.db", env=BIG_LIMIT).start()
    try:
        bots_proc = subprocess.Popen([sys.executable, "-m", "server.cli", "bots", "--url", server.url, "--count",
                                      str(bots), "--ramp", "5", "--duration", str(seconds), "--churn", "--quiet"],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(5 + min(30.0, seconds / 5))  # after the ramp and a warm-up
        first = rss_kib(server.proc.pid)
        bots_proc.wait(seconds + 120)
        last = rss_kib(server.proc.pid)
    finally:
        server.stop()
    print(f"  soak: server RSS {first} KiB -> {last} KiB", flush=True)
    return round(100.0 * (last - first) / max(1, first), 2)


async def main_async(args) -> dict:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lost, acked = await kill9_phase(tmp, args.restarts, args.clients, rng)
        sent, crashes = await fuzz_phase(tmp, args.fuzz_frames)
        growth = await asyncio.to_thread(soak_phase, tmp, args.soak, args.bots)
    return {"acked_chats_lost": lost, "acked_chats": acked, "kill9_restarts": args.restarts,
            "fuzz_frames": sent, "server_crashes": crashes, "rss_growth_pct": growth, "soak_s": args.soak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--fuzz-frames", type=int, default=10_000)
    ap.add_argument("--soak", type=float, default=300.0, help="seconds of bot load (default 300)")
    ap.add_argument("--bots", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
