"""Load benchmark: a server with its NPCs on the embedded model (the CPU
inference runner, a worker process) and bots at 250, 500 and 1,000, 30 s
each, bots in their own processes (`--model none`: NPCs on routines only).
Prints one JSON object as its last line:

    {"runs": {"250": {...}, "500": {...}, "1000": {...}}, "max_bots_held": N}

where each run has tick_p99_ms, action_rtt_p99_ms, bytes_per_bot_s and
connected (and npc_tokens: what the NPCs' model generated during the run),
and max_bots_held is the largest count whose bots all connected with tick
p99 <= 25 ms.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.helpers import ServerProcess  # noqa: E402
TICK_P99_GOAL_MS = 25.0


def start_server(db: str, model: str, llm_nice: int | None = None, llm_threads: int | None = None) -> tuple[subprocess.Popen, int]:
    """The server under test, in its own process, with its NPCs."""
    env = {"HAMLET_SPAWN": "anywhere", "HAMLET_MODEL": model, "HAMLET_MAX_CLIENTS_PER_IP": "100000"}
    if llm_nice is not None:
        env["HAMLET_LLM_NICE"] = str(llm_nice)
    if llm_threads is not None:
        env["HAMLET_LLM_THREADS"] = str(llm_threads)
    server = ServerProcess(Path(db), npcs=True, env=env).start(timeout=300)
    return server.proc, server.port


def generated_tokens(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("hamlet_llm_generated_tokens_total "):
                return float(line.split()[1])
    return 0.0


def stats(port: int, last: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats?last={last}", timeout=10) as r:
        return json.loads(r.read())


def one_run(count: int, duration: float, ramp: float, procs: int, behaviour: str, model: str,
            llm_nice: int | None = None, llm_threads: int | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(str(Path(tmp) / "load.db"), model, llm_nice, llm_threads)
        try:
            tokens_before = generated_tokens(port)
            out = Path(tmp) / "report.json"
            cmd = [sys.executable, "-m", "server.cli", "bots", "--url", f"ws://127.0.0.1:{port}", "--count",
                   str(count), "--ramp", str(ramp), "--duration", str(duration), "--behaviour", behaviour,
                   "--procs", str(procs), "--json", str(out), "--quiet",
                   # the load generator shares this machine: it must not take the server's CPU
                   "--nice", "10"]
            subprocess.run(cmd, cwd=ROOT, check=False, timeout=ramp + duration + 300,
                           stdout=subprocess.DEVNULL)
            report = json.loads(out.read_text())
            s = stats(port, int(duration * 20))  # the steady part: the last `duration` seconds of ticks
            npc_tokens = generated_tokens(port) - tokens_before
        finally:
            proc.terminate()
            proc.wait(60)
    return {
        "tick_p99_ms": s["tick_p99_ms"], "tick_p50_ms": s["tick_p50_ms"], "lateness_p99_ms": s["lateness_p99_ms"],
        "action_rtt_p99_ms": report["action_rtt_ms"].get("p99"), "ping_rtt_p99_ms": report["ping_rtt_ms"].get("p99"),
        "bytes_per_bot_s": report["bytes_in_per_bot_s"], "connected": report["connects"]["succeeded"],
        "attempted": report["connects"]["attempted"], "closes": report["closes_by_code"],
        "server_tick_p99_ms_histogram": report.get("server", {}).get("tick_ms", {}).get("p99"),
        "npc_tokens": npc_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="250,500,1000")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--ramp", type=float, default=15.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--behaviour", default="mixed")
    ap.add_argument("--model", default="embedded", help='"embedded" (default) or "none": NPCs on routines only')
    ap.add_argument("--llm-nice", type=int, default=None, help="the model worker's nice value (server default if unset)")
    ap.add_argument("--llm-threads", type=int, default=None, help="the model worker's threads (server default if unset)")
    args = ap.parse_args()
    runs = {}
    held = 0
    for count in (int(c) for c in args.counts.split(",")):
        r = one_run(count, args.duration, args.ramp, args.procs, args.behaviour, args.model, args.llm_nice, args.llm_threads)
        runs[str(count)] = r
        print(f"{count:5d} bots: {r}", flush=True)
        if r["connected"] == count and r["tick_p99_ms"] <= TICK_P99_GOAL_MS:
            held = max(held, count)
    print(json.dumps({"runs": runs, "max_bots_held": held}))


if __name__ == "__main__":
    main()
