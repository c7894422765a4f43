"""Economy bench: does the economy lose, make or double goods and coins
under load and crashes?

A server with its NPCs on routines only (`--model none`) runs as a
subprocess; a few hundred trading bots (`hamlet bots --behaviour trade
--reconnect`) shop at the NPCs' shops, give gifts and trade by offers for a
few minutes, while the server is killed with SIGKILL a few times and
restarted on the same port (the bots resume their avatars with their
tokens). By default the world's goods are the village's with the
workplaces', supplies' and meals' times of day squeezed into the run's
game time, so production and consumption happen during the run.

Then the audit, of the database and the bots' records:

- the event log is replayed from tick 0 (server/restore.py `replay_into`);
  after every tick in which a purse could change, the total of each item
  and of coins over all purses must be what the starting purses plus
  logged production, less what production used and what was consumed, say
  (`conservation_violations`: each item whose total drifted, counted at the
  tick it drifted);
- at each restart point, the world the restarted server loaded (a copy of
  the database taken right after the kill, opened as the server opens it)
  must equal the replay at that tick, and at the end the server's final
  snapshot must equal the replay;
- every trade whose ack a bot received must be in the log at the ack's
  tick (`acked_trades_lost`); no bot's trade may be in the log more often
  than it was sent without a refusal, and no offer accepted twice
  (`duplicated_items`).

The run is bounded (bots, seconds, restarts have caps) and stops by itself.
Its last line is JSON: conservation_violations, acked_trades_lost,
duplicated_items, trades, trade_rtt_p99_ms, and the details.

    python bench/economy.py                          # 200 bots, 180 s, 3 restarts
    python bench/economy.py --bots 50 --duration 60 --restarts 2
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.economy_audit import audit  # noqa: E402
from server.world.catalog import DEFAULT_GOODS  # noqa: E402

MAX_BOTS = 2000
MAX_DURATION_S = 1800.0
MAX_RESTARTS = 20
# Game seconds per real second on the default server (0.5 game s a tick, 20 ticks a second).
GAME_SPEED = 10.0


# -- the goods file -------------------------------------------------------------
def squeezed_goods(dest: Path, window_min: float, source: Path = DEFAULT_GOODS, start_minute: int = 8 * 60) -> Path:
    """A copy of the goods file whose times of day (workplaces, supply
    orders, meals) are squeezed, in their order, into the `window_min` game
    minutes after the world's start (08:00), so a short run sees them."""
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    span = max(2, int(window_min))

    def when(hhmm: str) -> str:
        h, m = (int(x) for x in hhmm.split(":"))
        at = start_minute + 1 + (h * 60 + m) * (span - 1) // 1440
        return f"{at // 60 % 24:02d}:{at % 60:02d}"

    def value(v: Any) -> str:
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return str(v)

    out = [f"start_coins = {data.get('start_coins', 20)}", "", "[goods]"]
    out += [f"{k} = {v}" for k, v in data["goods"].items()]
    for table in ("holder", "shop", "make", "order", "use"):
        for row in data.get(table, []):
            out += ["", f"[[{table}]]"]
            out += [f"{k} = {value(when(v) if k == 'at' else v)}" for k, v in row.items()]
    dest.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dest


# -- the run --------------------------------------------------------------------
class Server:
    """`hamlet serve` as a subprocess on 127.0.0.1, restartable on the same
    port; its output goes to a log file (a pipe nobody reads would stall it)."""

    def __init__(self, db: Path, goods: Path | None, log: Path) -> None:
        self.db, self.goods, self.log = db, goods, log
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.tail: deque[str] = deque(maxlen=40)

    def start(self, timeout: float = 120.0) -> None:
        from tests.reliability.helpers import ServerProcess
        extra = (["--port", str(self.port)] if self.port else []) + (["--goods", str(self.goods)] if self.goods else [])
        env = {"HAMLET_MODEL": "none", "HAMLET_MAX_CLIENTS_PER_IP": "100000"}
        for attempt in range(10):  # the port may take a moment to be free again
            sp = ServerProcess(self.db, *extra, env=env, npcs=True)
            try:
                sp.start(timeout=timeout, drain=False)  # read below, into the run's log
                break
            except AssertionError as exc:
                self.tail.append(str(exc)[-400:])
                if attempt == 9:
                    raise
                time.sleep(1.0)
        self.proc, self.port = sp.proc, sp.port
        threading.Thread(target=self._drain, args=(sp.proc,), daemon=True).start()

    def _drain(self, proc: subprocess.Popen) -> None:
        with open(self.log, "a") as fh:
            for line in proc.stdout:
                fh.write(line)
                self.tail.append(line.rstrip())

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


def copy_db(db: Path, dest: Path) -> Path:
    """The database files as the killed server left them (its WAL too)."""
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        src = Path(str(db) + suffix)
        if src.exists():
            shutil.copyfile(src, dest / (db.name + suffix))
    return dest / db.name


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    db = work / "world.db"
    goods = None
    if args.goods == "squeezed":
        window = (args.ramp + args.duration) * GAME_SPEED / 60.0 * 0.8
        goods = squeezed_goods(work / "goods.toml", window)
    elif args.goods != "default":
        goods = Path(args.goods)
    server = Server(db, goods, work / "server.log")
    t0 = time.monotonic()
    server.start()
    print(f"server on port {server.port} ({time.monotonic() - t0:.1f} s to start)", file=sys.stderr, flush=True)
    trade_log, report = work / "trades.json", work / "report.json"
    cmd = [sys.executable, "-m", "server.cli", "bots", "--url", f"ws://127.0.0.1:{server.port}",
           "--count", str(args.bots), "--ramp", str(args.ramp), "--duration", str(args.duration),
           "--behaviour", "trade", "--seed", str(args.seed), "--procs", str(args.procs), "--reconnect",
           "--trade-log", str(trade_log), "--json", str(report), "--quiet", "--nice", str(args.bots_nice)]
    started = time.monotonic()
    bots = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    restarts, copies = [], []
    try:
        for k in range(args.restarts):
            at = started + args.ramp + args.duration * (k + 1) / (args.restarts + 1)
            while time.monotonic() < at and bots.poll() is None:
                time.sleep(0.2)
            if bots.poll() is not None:
                break
            server.kill9()
            killed = time.monotonic()
            copies.append(copy_db(db, work / f"restart{k + 1}"))
            server.start()
            restarts.append({"at_s": round(killed - started, 1), "down_s": round(time.monotonic() - killed, 2)})
            print(f"restart {k + 1}: killed at {killed - started:.1f} s, back after "
                  f"{restarts[-1]['down_s']} s", file=sys.stderr, flush=True)
        bots.wait(timeout=args.ramp + args.duration + 300)
    except subprocess.TimeoutExpired:
        bots.kill()
    finally:
        if bots.poll() is None:
            bots.kill()
        code = server.stop()
    print(f"bots done after {time.monotonic() - started:.1f} s; server stopped ({code}); auditing",
          file=sys.stderr, flush=True)
    rep = json.loads(report.read_text()) if report.exists() else {}
    log = json.loads(trade_log.read_text()) if trade_log.exists() else {"records": [], "purses": []}
    t1 = time.monotonic()
    result = audit(db, copies, records=log["records"], purses=log["purses"])
    trades = rep.get("trades", {})
    return {
        "conservation_violations": result["conservation_violations"],
        "acked_trades_lost": result["acked_trades_lost"],
        "duplicated_items": result["duplicated_items"],
        "trades": trades.get("done", 0),
        "trade_rtt_p99_ms": rep.get("trade_rtt_ms", {}).get("p99"),
        "ok": result["ok"],
        "bots": args.bots, "duration_s": args.duration, "restarts": restarts,
        "connected": rep.get("connects", {}).get("succeeded"), "reconnects": rep.get("reconnects"),
        "trade_rtt_ms": rep.get("trade_rtt_ms"), "trades_acked": trades.get("acked"),
        "trades_refused": trades.get("refused_by_code"), "trades_lost_in_flight": trades.get("lost"),
        "replay": result["replay"], "restart_points": result["restart_points"], "final": result["final"],
        "totals": result["totals"], "conservation": result["conservation"], "audit_bots": result["bots"],
        "audit_s": round(time.monotonic() - t1, 1), "server_exit": code,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bots", type=int, default=200, help="trading bots (default 200)")
    ap.add_argument("--duration", type=float, default=180.0, help="seconds of trading after the ramp (default 180)")
    ap.add_argument("--ramp", type=float, default=20.0, help="seconds over which the bots join (default 20)")
    ap.add_argument("--restarts", type=int, default=3, help="kill -9 restarts of the server during the run (default 3)")
    ap.add_argument("--procs", type=int, default=1, help="bot processes (default 1)")
    ap.add_argument("--bots-nice", type=int, default=5, help="the bots' nice value (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--goods", default="squeezed",
                    help='"squeezed" (default: the village\'s goods, times of day squeezed into the run), '
                         '"default", or a goods file')
    ap.add_argument("--keep", metavar="DIR", help="keep the database, logs and records here")
    args = ap.parse_args()
    if not 1 <= args.bots <= MAX_BOTS or not 0 < args.duration <= MAX_DURATION_S \
            or not 0 <= args.restarts <= MAX_RESTARTS or args.ramp < 0:
        ap.error(f"--bots 1..{MAX_BOTS}, --duration (0, {MAX_DURATION_S:g}], --restarts 0..{MAX_RESTARTS}")
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        if (work / "world.db").exists():
            ap.error(f"{work} already holds a world.db: choose an empty --keep directory")
        result = run(args, work)
    else:
        with tempfile.TemporaryDirectory(prefix="hamlet-economy-") as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
