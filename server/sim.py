"""Headless simulation, composed here: the same world, game and minds as
the server (`install_minds`), with no network. In the default (fast) mode
the engine runs inline and the sim drains it after every tick, so the world
advances as fast as the engine allows and a model's latency costs one tick
of game time; an engine that runs on its own (one or several `http://`
URLs) is waited for instead (server/sim_lockstep.py). `realtime` runs
ticks at the configured rate with the engine in a worker, like the server.
Everything random is seeded; the event log in DIR/world.db replays the run
without the model (`replay`). What the run
writes (transcript, summary, plots) is agents/sim_report.py."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.minds import MindsSystem
from agents.personas import load_personas
from agents.sim_report import SimOptions, SimRecord, write_outputs
from server.config import ServerConfig
from server.game import Game
from server.metrics import ServerMetrics
from server.npcs import install_minds
from server.persistence import Database
from server.experiment import Experiment, save_inputs, write_population
from server.restore import open_world, replay_into, world_catalog
from server.sim_lockstep import EngineFailed, Lockstep, is_remote_model, needs_lockstep, paced_refusal
from server.world.catalog import load_goods
from server.world.village import village
from server.world.world import World

__all__ = ["SimOptions", "SimRecord", "replay", "run_sim"]


def run_sim(opts: SimOptions, llm: Any = None) -> dict:
    """Run a simulation into `opts.out`; returns the summary (also written
    to summary.json). ValueError for a paced run on a remote engine;
    an engine failure mid-run ends it early with `engine_error` in the
    summary."""
    remote = is_remote_model(opts.model) if llm is None else needs_lockstep(llm)
    refusal = paced_refusal(remote, opts.model if llm is None else type(llm).__name__, opts.ticks_per_step,
                            opts.realtime)
    if refusal is not None:
        raise ValueError(refusal)
    opts.out.mkdir(parents=True, exist_ok=True)
    db_path = opts.out / "world.db"
    if db_path.exists():
        raise FileExistsError(f"{db_path} exists: choose an empty --out directory")
    config = ServerConfig(db=str(db_path), seed=opts.seed, npcs=True)
    db = Database(config.db)
    tilemap = village()
    world = open_world(db, tilemap, opts.seed, catalog=load_goods(config.goods or None))
    game = Game(config, world, db, ServerMetrics())
    if opts.scenario is not None:  # its population and its length
        personas = list(opts.scenario.personas)
        opts = replace(opts, npcs=len(personas), minutes=opts.scenario.days * 1440)
        save_inputs(opts.out, opts.scenario)
    else:
        personas = load_personas(opts.personas, known_places=set(tilemap.places))
        if opts.npcs > len(personas):
            raise ValueError(f"the persona file has {len(personas)} NPCs; --npcs {opts.npcs} asks for more")
        personas = personas[: opts.npcs]
        write_population(opts.out, personas)
    own_llm = llm is None
    if own_llm:
        from agents.inference import load_llm
        llm = load_llm(None if opts.model == "embedded" else opts.model,
                       runner="process" if opts.realtime else "inline")
    engine: Any = llm
    if needs_lockstep(llm):  # fast: the sim waits for each tick's jobs instead of stepping the engine
        llm = Lockstep(llm)
    tick_rate = config.tick_rate
    clock = time.monotonic if opts.realtime else (lambda: world.tick / tick_rate)
    budget = opts.budget if opts.realtime else replace(opts.budget, reply_deadline_s=None, line_deadline_s=None,
                                                             reply_retry_within_s=None)
    from agents.embeddings import load_embedder
    minds = install_minds(game, personas, llm, budget, clock=clock,
                          embedder=load_embedder() if opts.embeddings else None)
    minds.transcripts = []  # every conversation, for the report (the run's length bounds them)
    for mind in minds.minds.values():
        mind.why_log = []  # the transcript says why each line was said
    experiment = Experiment(opts.scenario, game, minds) if opts.scenario is not None else None
    if experiment is not None:
        game.on_tick.append(experiment.tick)
    record = SimRecord()
    engine_error = None
    ticks = int(opts.minutes * 60 / world.rules.game_seconds_per_tick)
    started = time.monotonic()
    try:
        try:
            if opts.realtime:
                asyncio.run(_realtime(game, minds, record, ticks, tick_rate, opts.progress))
            else:
                _fast(game, minds, llm, record, ticks, opts.progress, opts.ticks_per_step, opts.max_wall_s)
        except KeyboardInterrupt:  # Ctrl-C: stop here and write what the run has
            record.stopped = True
        except EngineFailed as exc:  # the same, and the summary says why
            record.stopped, engine_error = True, str(exc)
        record.wall_s = time.monotonic() - started
        game.snapshot()
        final_hash = world.state_hash()
        db.set_meta_now("final_hash", final_hash)
        db.set_meta_now("final_tick", world.tick)
        summary = write_outputs(opts, world, db.conn, minds, record, final_hash, llm_info=_info(engine))
        if engine_error is not None:
            summary["engine_error"] = engine_error
            _rewrite_summary(opts.out, summary)
        if experiment is not None:
            summary["experiment"] = experiment.finish(opts.out, llm, world, minds, record.stopped,
                                                      inline=not opts.realtime and not needs_lockstep(llm),
                                                      wall_s=record.wall_s)
            summary["plots"].append(summary["experiment"].pop("plot"))
    finally:
        minds.close()
        if own_llm:
            engine.close()
        db.close()
    return summary


def _rewrite_summary(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "plots"}, indent=2) + "\n",
                                      encoding="utf-8")


def _info(llm: Any) -> dict:
    try:
        return {k: v for k, v in llm.info().items() if isinstance(v, (str, int, float, bool))}
    except Exception:
        return {}


def _tokens_done(minds: MindsSystem, seen: int) -> tuple[int, int]:
    """(token ids of the jobs finished since the total was `seen`, the total now)."""
    total = minds.tally.token_ids
    return total - seen, total


def _streamed(minds: MindsSystem) -> int:
    """Tokens of a remote engine's generations, which carry no token ids."""
    return minds.llm.take_streamed_tokens() if isinstance(minds.llm, Lockstep) else 0


def _in_flight(minds: MindsSystem) -> int:
    return sum(1 for m in minds.minds.values() if m.job is not None)


def _fast(game: Game, minds: MindsSystem, llm: Any, record: SimRecord, ticks: int, progress: bool,
          ticks_per_step: int = 0, max_wall_s: float | None = None) -> None:
    seen = 0
    bar = _Progress(ticks) if progress else None
    world = game.world
    until = time.monotonic() + max_wall_s if max_wall_s else None
    for _ in range(ticks):
        if until is not None and world.tick % 200 == 0 and time.monotonic() > until:
            record.cut_short = True
            break
        t0 = time.perf_counter()
        game.run_tick()
        took = time.perf_counter() - t0
        if isinstance(llm, Lockstep):
            llm.wait()  # lockstep with an engine on its own threads (paced runs were refused)
        elif ticks_per_step == 0:
            while llm.step():  # lockstep: the engine finishes what the tick started
                pass
        elif world.tick % ticks_per_step == 0:
            llm.step()  # paced: the model's work takes game time, the world does not wait for it
        record.tick_s.append(took)  # after the engine: a Ctrl-C in its step leaves the series aligned
        tokens, seen = _tokens_done(minds, seen)
        _record(game, minds, record, tokens + _streamed(minds), bar)


async def _realtime(game: Game, minds: MindsSystem, record: SimRecord, ticks: int, rate: float,
                    progress: bool) -> None:
    seen = 0
    bar = _Progress(ticks) if progress else None
    start = time.monotonic()
    for k in range(1, ticks + 1):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.perf_counter()
        game.run_tick()
        record.tick_s.append(time.perf_counter() - t0)
        tokens, seen = _tokens_done(minds, seen)
        _record(game, minds, record, tokens + _streamed(minds), bar)


def _record(game: Game, minds: MindsSystem, record: SimRecord, tokens: int, bar: _Progress | None) -> None:
    world = game.world
    record.minute.append(world.game_minutes)
    record.tokens.append(tokens)
    record.queue.append(_in_flight(minds))
    record.economy.observe(world)
    if bar is not None and (world.tick % 20 == 0 or world.tick == bar.ticks):
        bar.show(world, record)


class _Progress:
    """The progress line on stderr: ticks and tokens per second since the last update."""

    def __init__(self, ticks: int) -> None:
        self.ticks = ticks
        self.last: tuple[float, int, int] | None = None  # (wall time, ticks, tokens) at the last update

    def show(self, world: World, record: SimRecord) -> None:
        n = len(record.tick_s)
        wall, tokens = time.monotonic(), sum(record.tokens)
        if self.last:
            dt = max(1e-9, wall - self.last[0])
            tps, tok_s = (n - self.last[1]) / dt, (tokens - self.last[2]) / dt
        else:
            tps, tok_s = len(record.tick_s[-200:]) / max(1e-9, sum(record.tick_s[-200:])), 0.0
        self.last = (wall, n, tokens)
        width = 30
        done = int(width * n / max(1, self.ticks))
        sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {world.clock()}  tick {n}/{self.ticks}  "
                         f"{tps:7.1f} ticks/s  {tok_s:6.1f} tok/s  in flight {record.queue[-1]}")
        if n == self.ticks:
            sys.stderr.write("\n")
        sys.stderr.flush()


def replay(out: Path) -> tuple[bool, str, str]:
    """Re-run the world from the event log, from tick 0, without a model.
    Returns (ok, recorded hash, replayed hash)."""
    db_path = out / "world.db"
    if not db_path.exists():
        raise FileNotFoundError(f"no world database in {out}")
    db = Database(str(db_path))
    try:
        recorded = db.get_meta("final_hash")
        final_tick = db.get_meta("final_tick")
        if recorded is None or final_tick is None:
            raise ValueError(f"{db_path} has no recorded final state (did the run finish?)")
        world = World(village(), db.get_meta("seed"), catalog=world_catalog(db))
        replay_into(world, db, int(final_tick), from_tick=0)
        got = world.state_hash()
        return got == recorded, recorded, got
    finally:
        db.close()
