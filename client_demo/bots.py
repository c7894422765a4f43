"""`hamlet bots`: a bounded load test against a Hamlet server.

N bots (many per process, asyncio on uvloop; `--procs K` spreads them over
K processes) join with their own names and behave like people for a fixed
duration, then the run stops by itself and reports. Only loopback targets
are allowed unless `--allow-remote` is given.

`--behaviour trade` bots shop at the NPCs' shops and trade with each other
(a quarter of `mixed` do); the report counts their trades and times each
from request to ack. `--reconnect` bots resume their avatars when the
server comes back after going down; `--trade-log FILE` writes every trade
request a bot sent, with its outcome, and each trading bot's purse at the
end (JSON), for an audit against the server's log (bench/economy.py).
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

# Hard caps so that a typo cannot start an unbounded run.
MAX_BOTS = 20_000
MAX_DURATION_S = 3600.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bots", help="load-test a server with bots that behave like people",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="ws://127.0.0.1:8765")
    p.add_argument("--count", type=int, default=50, help="bots in all (default 50)")
    p.add_argument("--ramp", type=float, default=5.0, help="seconds over which bots connect (default 5)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds the run lasts after the ramp (default 30)")
    p.add_argument("--behaviour", "--behavior", dest="behaviour", default="mixed",
                   choices=["wander", "chat", "talk-to-npcs", "trade", "mixed"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--procs", type=int, default=1, help="spread the bots over this many processes")
    p.add_argument("--churn", action="store_true", help="bots drop now and then and resume with their token")
    p.add_argument("--reconnect", action="store_true",
                   help="a bot whose connection is lost resumes its avatar once the server is back")
    p.add_argument("--trade-log", metavar="FILE", help="write the trading bots' requests and outcomes here (JSON)")
    p.add_argument("--slow-readers", type=int, default=0, metavar="K", help="K bots stop reading")
    p.add_argument("--garbage", type=int, default=0, metavar="K", help="K bots send malformed frames")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON here")
    p.add_argument("--allow-remote", action="store_true", help="allow a target that is not on this machine")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.add_argument("--nice", type=int, default=0, metavar="N",
                   help="lower the bots' CPU priority (on one machine, leave the server its share)")
    p.add_argument("--part", help=argparse.SUPPRESS)  # internal: "I/K" for a child process
    p.set_defaults(func=run)


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_args(args: argparse.Namespace) -> str | None:
    if urlparse(args.url).scheme not in ("ws", "wss"):
        return f"--url must be ws:// or wss://, not {args.url!r}"
    if not args.allow_remote and not is_loopback(args.url):
        return f"refusing to load-test {args.url}: not a loopback address (pass --allow-remote if you own it)"
    if not 1 <= args.count <= MAX_BOTS:
        return f"--count must be between 1 and {MAX_BOTS}"
    if not 0 < args.duration <= MAX_DURATION_S or args.ramp < 0:
        return f"--duration must be in (0, {MAX_DURATION_S:g}] and --ramp >= 0"
    if args.slow_readers + args.garbage > args.count or args.procs < 1:
        return "--slow-readers + --garbage cannot exceed --count; --procs must be >= 1"
    return None


def run(args: argparse.Namespace) -> int:
    problem = check_args(args)
    if problem:
        print(f"hamlet bots: {problem}", file=sys.stderr)
        return 2
    if args.nice:
        os.nice(args.nice)
    if args.part:
        return _run_part(args)
    from client_demo import bots_report as rep

    base = args.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    before = _try(lambda: rep.read_metrics(base))
    if args.procs == 1:
        raw = _run_loop(_run_bots(args, range(args.count), progress=not args.quiet))
        parts = [raw]
    else:
        parts = _run_children(args)
    after = _try(lambda: rep.read_metrics(base))
    merged = rep.merge(parts)
    if args.trade_log:
        with open(args.trade_log, "w") as fh:
            json.dump({"records": merged["trade_log"], "purses": merged["trade_purses"]}, fh)
    report = rep.summarise(merged, before, after)
    print(rep.table(report))
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(rep.dumps(report) + "\n")
    return 0 if report["connects"]["succeeded"] > 0 else 1


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


def _run_loop(coro):
    try:
        import uvloop
        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _run_part(args: argparse.Namespace) -> int:
    index, total = (int(x) for x in args.part.split("/"))
    mine = range(index, args.count, total)
    raw = _run_loop(_run_bots(args, mine, progress=False))
    with open(args.json, "w") as fh:
        json.dump(raw, fh)
    return 0


def _run_children(args: argparse.Namespace) -> list[dict]:
    tmp = tempfile.mkdtemp(prefix="hamlet-bots-")
    procs = []
    for i in range(args.procs):
        out = os.path.join(tmp, f"part{i}.json")
        cmd = [sys.executable, "-m", "server.cli", "bots", "--url", args.url, "--count", str(args.count),
               "--ramp", str(args.ramp), "--duration", str(args.duration), "--behaviour", args.behaviour,
               "--seed", str(args.seed), "--slow-readers", str(args.slow_readers), "--garbage", str(args.garbage),
               "--part", f"{i}/{args.procs}", "--json", out, "--nice", "0"] + (["--churn"] if args.churn else []) \
            + (["--allow-remote"] if args.allow_remote else []) + (["--reconnect"] if args.reconnect else []) \
            + (["--trade-log", "yes"] if args.trade_log else [])
        procs.append((subprocess.Popen(cmd), out))
    limit = time.monotonic() + args.ramp + args.duration + 120
    parts = []
    for proc, out in procs:
        try:
            proc.wait(max(1.0, limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            continue
        if os.path.exists(out):
            with open(out) as fh:
                parts.append(json.load(fh))
    return parts


async def _run_bots(args: argparse.Namespace, indices, progress: bool) -> dict:
    from client_demo.bot import Bot
    from client_demo.bot_shops import KNOWN_SHOPS
    from client_demo.bots_report import bots_part

    KNOWN_SHOPS.clear()  # what an earlier run in this process learnt may not hold for this server
    indices = list(indices)
    bots = []
    for i in indices:
        mode = "slow" if i < args.slow_readers else "garbage" if i < args.slow_readers + args.garbage \
            else "churn" if args.churn else "normal"
        bots.append(Bot(i, args.url, args.behaviour, args.seed, mode, reconnect=getattr(args, "reconnect", False)))
    stop = asyncio.Event()
    tasks = []
    started = time.monotonic()
    reporter = asyncio.create_task(_progress(bots, stop, started)) if progress else None
    await start_on_schedule([lambda bot=bot: tasks.append(asyncio.create_task(bot.run(stop))) for bot in bots],
                            args.ramp, started)
    await asyncio.sleep(max(0.0, started + args.ramp + args.duration - time.monotonic()))
    stop.set()
    done, pending = await asyncio.wait(tasks, timeout=30)
    for t in pending:
        t.cancel()
    if reporter:
        reporter.cancel()
    return bots_part(bots, time.monotonic() - started, trade_log=bool(getattr(args, "trade_log", None)))


async def start_on_schedule(starts, ramp: float, started: float) -> None:
    """Call each of `starts` in order, the k-th at `started + k * ramp / n`.
    Every one due is started at once: on a busy loop (a thousand bots
    decoding their state updates) each sleep returns late, and one sleep per
    bot stretched a 5 s ramp of 1,000 bots to ~80 s."""
    n = len(starts)
    gap = ramp / max(1, n)
    k = 0
    while k < n:
        due = n if gap <= 0 else min(n, int((time.monotonic() - started) / gap) + 1)
        while k < due:
            starts[k]()
            k += 1
        if k < n:
            await asyncio.sleep(max(0.0, started + k * gap - time.monotonic()))


async def _progress(bots, stop: asyncio.Event, started: float) -> None:
    last_in = 0
    last_t = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(1.0)
        now = time.monotonic()
        connected = sum(1 for b in bots if b.stats.connected and b.client and not b.client.closed)
        failed = sum(1 for b in bots if b.stats.connect_error)
        bytes_in = sum(b.client.stats.bytes_in for b in bots if b.client)
        frames = sum(b.client.stats.frames_in for b in bots if b.client)
        rate = (bytes_in - last_in) / max(1e-9, now - last_t)
        pings = sorted(x for b in bots for x in b.ping_rtt.values[-5:])
        p50 = f"{pings[len(pings) // 2] * 1000:.1f} ms" if pings else "-"
        print(f"\r{now - started:6.1f}s  connected {connected:5d}  failed {failed:4d}  frames {frames:9d}  "
              f"{rate / 1024:8.1f} KiB/s in  ping p50 {p50}   ", end="", file=sys.stderr, flush=True)
        last_in, last_t = bytes_in, now
    print(file=sys.stderr)
