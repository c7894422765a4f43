"""`hamlet sim --regions N`: the headless village split over N region
processes on this machine, in real time, and one summary of the run.

This module owns the run: it starts nats-server and one `hamlet region
--npcs` per region (commands.py, as `hamlet cluster` does, without a
gateway: nobody connects), lets them tick at 20 Hz on the world's clock
for the game minutes asked (ten game seconds a wall second), stops them
(SIGTERM: each prints a final status line with its figures,
region_figures.py), checks that every NPC of the village is exactly once
in the cluster, and writes DIR/summary.json. Fast mode is not available
across processes: each region ticks on its own clock.

Every wait is bounded (start, run, stop); whatever happens (an error, a
region dying, Ctrl-C), every process started here is stopped before this
returns, a straggler killed. Region logs go to DIR/rN.log. With a model
run here (embedded, a folder), one `hamlet llm-worker` serves every region
over the run's NATS (shared_engine.py; its log DIR/llm-worker.log).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from server.cluster import shared_engine
from server.cluster.natsd import NatsServer
from server.cluster.parent_death import die_with_parent
from server.world.world import WorldRules

START_S = 90.0  # a region's first line (imports, NATS, the lease; a model if it loads one)
STOP_S = 20.0  # a region's clean stop after SIGTERM (a snapshot, the lease given up), then SIGKILL
KILL_S = 5.0
WORLD = "sim"


class RegionProc:
    """A region process and what its stdout said: its first line, its
    latest status line and its final one (only those: a reader thread keeps
    the pipe drained, so memory stays bounded however long the run)."""

    def __init__(self, index: int, cmd: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = f"r{index}"
        with open(log, "ab") as err:
            # Ctrl-C reaches us, who stop them in order; a kill -9 of us, them too (SIGTERM)
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True,
                                         start_new_session=True, preexec_fn=die_with_parent())
        self.log = log
        self.first: dict[str, Any] | None = None
        self.latest: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read, name=f"sim-{self.name}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if self.first is None:
                self.first = msg
                self.started.set()
            elif msg.get("final"):
                self.final = msg
            else:
                self.latest = msg
        self.started.set()  # EOF: it exited (first stays None if it never started)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass


class ClusterSimError(RuntimeError):
    """The cluster could not be run: the message says which part and why."""


def wall_seconds(game_minutes: float, tick_rate: float = 20.0) -> float:
    return game_minutes * 60 / (WorldRules().game_seconds_per_tick * tick_rate)


def run_cluster_sim(out: Path, regions: int, minutes: float, model: str = "none", seed: int = 1,
                    personas: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the village over `regions` processes for `minutes` game minutes
    of real time; returns the summary (also DIR/summary.json)."""
    if regions < 2:
        raise ValueError("--regions needs at least 2 (one region is the plain `hamlet sim`)")
    out.mkdir(parents=True, exist_ok=True)
    if (out / "summary.json").exists() or any(out.glob("r*.db")):
        raise FileExistsError(f"{out} holds a run already: choose an empty --out directory")
    names = _npc_names(personas)
    env = dict(os.environ)
    if personas:
        env["HAMLET_PERSONAS"] = str(Path(personas).resolve())
    nats = NatsServer(str(out / "nats")).start()
    procs: list[RegionProc] = []
    workers: list[subprocess.Popen] = []
    stopped_early, error, started = False, None, time.monotonic()
    run_s = wall_seconds(minutes)
    try:
        if shared_engine.runs_here(model):  # one engine for every region, ready before the first tick
            with open(out / "llm-worker.log", "w", encoding="utf-8") as worker_log:
                workers = shared_engine.start_workers(1, nats.url, WORLD, model, stderr=worker_log)
        for i in range(regions):
            cmd = [sys.executable, "-m", "server.cli", "region", "--nats", nats.url, "--world", WORLD,
                   "--region", f"r{i}", "--regions", str(regions), "--db", str(out / f"r{i}.db"),
                   "--seed", str(seed), "--npcs", "--model", shared_engine.region_model(model, nats.url, WORLD),
                   "--http-port", "0", "--status-every", "1",
                   "--wait", "10"]
            procs.append(RegionProc(i, cmd, out / f"r{i}.log", env))
        _wait_started(procs)
        if progress:
            print(f"{regions} regions running ({', '.join(p.first['http'] for p in procs if p.first)}); "
                  f"{minutes:g} game minutes take {run_s:.0f} s (Ctrl-C stops early)", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            _run(procs, run_s, progress)
        except KeyboardInterrupt:
            stopped_early = True
        except ClusterSimError as exc:
            stopped_early, error = True, str(exc)
    finally:
        quiet = _ignore_sigint()  # a second Ctrl-C must not leave regions behind
        try:
            _stop_all(procs)
            shared_engine.stop_workers(workers)
            nats.stop()
        finally:
            if quiet is not None:
                signal.signal(signal.SIGINT, quiet)
    summary = summarise(procs, names, minutes, time.monotonic() - started, model, seed)
    summary.update(stopped_early=stopped_early, error=error)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _npc_names(personas: str | None) -> list[str]:
    from agents.personas import load_personas
    from server.world.village import village

    return sorted(p.name for p in load_personas(personas or None, known_places=set(village().places)))


def _wait_started(procs: list[RegionProc]) -> None:
    deadline = time.monotonic() + START_S
    for p in procs:
        if not p.started.wait(max(0.0, deadline - time.monotonic())) or p.first is None:
            why = f"exited with {p.proc.poll()}" if p.proc.poll() is not None else f"not up in {START_S:g} s"
            raise ClusterSimError(f"region {p.name} did not start ({why}; its log: {p.log}): {p.log_tail(2)}")


def _run(procs: list[RegionProc], run_s: float, progress: bool) -> None:
    end = time.monotonic() + run_s
    next_line = time.monotonic() + 5.0
    while time.monotonic() < end:
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        for p in procs:
            if p.proc.poll() is not None:
                raise ClusterSimError(f"region {p.name} exited with {p.proc.returncode} (its log: {p.log}): "
                                      f"{p.log_tail(2)}")
        if progress and time.monotonic() >= next_line:
            next_line += 5.0
            left = max(0.0, end - time.monotonic())
            parts = [f"{p.name}: {p.latest['npcs']} NPCs, tick p99 {p.latest['tick_p99_ms']} ms"
                     for p in procs if p.latest]
            print(f"  {left:4.0f} s left  " + "  ".join(parts), file=sys.stderr, flush=True)


def _ignore_sigint() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_all(procs: list[RegionProc]) -> None:
    for p in procs:
        p.stop()
    deadline = time.monotonic() + STOP_S
    for p in procs:
        try:
            p.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.stop(signal.SIGKILL)
            try:
                p.proc.wait(KILL_S)
            except subprocess.TimeoutExpired:
                pass  # unkillable (D state): nothing more a parent can do
        p.reader.join(KILL_S)


def summarise(procs: list[RegionProc], names: list[str], minutes: float, wall_s: float, model: str,
              seed: int) -> dict[str, Any]:
    """Each region's final figures and the cluster's totals, with the
    exactly-once check of every NPC."""
    regions: dict[str, Any] = {}
    problems: list[str] = []
    held: dict[str, list[str]] = {n: [] for n in names}
    arrivals = set()
    for p in procs:
        figures = (p.final or {}).get("figures")
        if figures is None:
            problems.append(f"region {p.name} gave no final figures (exit code {p.proc.returncode})")
            regions[p.name] = {"exit_code": p.proc.returncode}
            continue
        regions[p.name] = dict(figures, exit_code=p.proc.returncode, model=(p.first or {}).get("model"))
        arrivals.update(figures["npc_arrivals"])
        for name in figures["npcs"]:
            held.setdefault(name, []).append(p.name)
    for p in procs:
        for t in ((p.final or {}).get("figures") or {}).get("npcs_in_transit", ()):
            if t["handoff"] not in arrivals:  # on its way, not applied: it counts where it left
                held.setdefault(t["name"], []).append(f"{p.name}->{t['to']}")
    for name, where in sorted(held.items()):
        if len(where) != 1:
            problems.append(f"NPC {name} is in {len(where)} places: {where}" if where else f"NPC {name} is nowhere")
    figures = [r for r in regions.values() if "npcs" in r]

    def total(key: str) -> int | None:
        values = [r[key] for r in figures if r.get(key) is not None]
        return sum(values) if values else None

    return {
        "mode": "cluster", "regions_count": len(procs), "model": model, "seed": seed, "minutes": minutes,
        "wall_s": round(wall_s, 2), "game_clock_end": max((r["game_clock"] for r in figures), default=None),
        "regions": regions,
        "npcs": {name: where[0] if len(where) == 1 else where for name, where in sorted(held.items())},
        "npc_count": len(names), "exactly_once": not problems, "problems": problems,
        "npc_handoffs": total("npc_handoffs_out"), "npc_arrivals": total("npc_handoffs_in"),
        "conversations": total("conversations"), "lines": total("lines"), "tokens": total("tokens"),
    }
