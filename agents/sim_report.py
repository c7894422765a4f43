"""What a headless simulation is asked to do (`SimOptions`), what it
measured (`SimRecord`), and what it leaves in its output directory: a
readable transcript (transcript.md), the figures (summary.json) and plots
(PNG). The run itself is wired in server/sim.py."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.board_talk import board_summary
from agents.explain import because
from agents.minds import MindBudget
from agents.school import lessons_summary
from agents.sim_economy import EconomyRecord

if TYPE_CHECKING:
    from agents.minds import MindsSystem
    from server.world.world import World


@dataclass
class SimOptions:
    out: Path
    npcs: int = 8
    minutes: float = 30.0  # game minutes
    seed: int = 1
    model: str = "embedded"
    realtime: bool = False
    personas: str | None = None
    embeddings: bool = True
    progress: bool = True
    budget: MindBudget = field(default_factory=MindBudget)
    # The engine takes one step every N ticks (0: it finishes each tick's
    # work before the next, so the model costs no game time). One step a
    # tick is about two tokens a game second: people's pace of speech.
    ticks_per_step: int = 0
    scenario: Any = None  # agents.scenario.Scenario, for `--scenario`
    max_wall_s: float | None = None  # cut the run short after this much wall time (benches bound themselves)


@dataclass
class SimRecord:
    """What the sim measured, tick by tick and job by job."""
    tick_s: list[float] = field(default_factory=list)
    minute: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # tokens completed in each tick
    queue: list[int] = field(default_factory=list)  # jobs in flight after each tick
    wall_s: float = 0.0
    stopped: bool = False  # Ctrl-C: the run ended early and wrote what it had
    cut_short: bool = False  # max_wall_s reached: ended early, still measured and interviewed
    economy: EconomyRecord = field(default_factory=EconomyRecord)


PRIORITY_NAMES = {0: "human_reply", 1: "conversation", 2: "planning", 3: "reflection"}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    v = sorted(values)

    def q(p: float) -> float:
        return v[min(len(v) - 1, int(p * len(v)))]
    return {"count": len(v), "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": v[-1]}


def _clock(minute: float) -> str:
    m = int(minute)
    return f"day {m // 1440} {m // 60 % 24:02d}:{m % 60:02d}"


def write_transcript(path: Path, minds: MindsSystem, world: World) -> int:
    logs = [c for c in minds.transcripts if c.lines]
    out = [f"# Hamlet simulation transcript\n\nSeed {world.seed}; {len(logs)} conversations; "
           f"ended {_clock(world.game_minutes)}.\n"]
    whys = {(m.name, w.line): w for m in minds.minds.values() for w in (m.why_log or ()) if w.line}
    for c in logs:
        kind = "with a person" if c.with_player else "between NPCs"
        out.append(f"\n## {_clock(c.started)}: {' and '.join(c.participants)} ({kind})\n")
        for minute, who, text in c.lines:
            out.append(f"- **{who}** ({_clock(minute)[-5:]}): {text}")
            why = whys.get((who, text))
            reason = because(why) if why is not None else ""
            if reason:
                out.append(f"  - why: {reason}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return len(logs)


def write_outputs(opts: SimOptions, world: World, conn: sqlite3.Connection, minds: MindsSystem,
                  record: SimRecord, final_hash: str, llm_info: dict[str, Any]) -> dict[str, Any]:
    """Write transcript.md, summary.json and the plots; `conn` is the run's
    world database (its chat lines are counted). Returns the summary."""
    out = opts.out
    conversations = write_transcript(out / "transcript.md", minds, world)
    npc_ids = {m.entity for m in minds.minds.values()}
    lines = conn.execute("SELECT speaker, to_id FROM chat").fetchall()
    npc_lines = [(s, t) for s, t in lines if s in npc_ids]
    tally = minds.tally  # every job of the run, counted (agents/job_tally.py)
    latency: dict[str, list[float]] = {}
    for priority, ms in tally.latency_ms.items():
        latency.setdefault(PRIORITY_NAMES.get(priority, str(priority)), []).extend(ms)
    summary = {
        "seed": opts.seed, "npcs": opts.npcs, "minutes": opts.minutes, "mode": "realtime" if opts.realtime else "fast",
        "model": llm_info, "ticks": world.tick, "stopped_early": record.stopped, "cut_short": record.cut_short,
        "ticks_per_step": opts.ticks_per_step, "game_clock_end": world.clock(), "wall_s": round(record.wall_s, 2),
        "conversations": conversations,
        "npc_conversations": sum(1 for c in minds.transcripts if c.lines and not c.with_player and len(c.lines) >= 2),
        "lines_spoken": len(npc_lines), "tokens": sum(record.tokens),
        "jobs": dict(tally.by_status),
        "latency_ms_by_priority": {k: {q: round(x, 1) for q, x in percentiles(v).items()} for k, v in latency.items()},
        "tick_ms": {q: round(x * 1000 if q != "count" else x, 3) for q, x in percentiles(record.tick_s).items()},
        # the reply gate's verdicts and what became of each person's turn (agents/replies.py)
        **minds.stats(),
        # quests posted and answered, notices pinned and withheld (agents/board_talk.py); the school's answers
        "board": board_summary(world, minds.desk.notices.log),
        "lessons": lessons_summary(world.progress),
        # trades, coins that changed hands, production, prices (agents/sim_economy.py)
        "economy": record.economy.summary(world, dict(conn.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind"))),
        "final_state_hash": final_hash,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    summary["plots"] = write_plots(out, record, minds, world)
    economy_plot = record.economy.plot(out)
    if economy_plot is not None:
        summary["plots"].append(economy_plot)
    return summary


def write_plots(out: Path, record: SimRecord, minds: MindsSystem, world: World) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    minutes = record.minute
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(minutes, [t * 1000 for t in record.tick_s], lw=0.6)
    axes[0].set_ylabel("tick time (ms)")
    per_minute: dict[int, int] = {}
    for m, n in zip(minutes, record.tokens):
        per_minute[int(m)] = per_minute.get(int(m), 0) + n
    xs = sorted(per_minute)
    axes[1].bar(xs, [per_minute[x] for x in xs], width=0.9)
    axes[1].set_ylabel("tokens per game minute")
    axes[2].plot(minutes, record.queue, lw=0.8, drawstyle="steps-post")
    axes[2].set_ylabel("jobs in flight")
    axes[2].set_xlabel("game time (minutes since midnight)")
    fig.suptitle("Hamlet simulation: tick time, tokens and queue depth over game time")
    fig.tight_layout()
    fig.savefig(out / "timeline.png", dpi=90)
    plt.close(fig)
    written.append("timeline.png")

    pairs: Counter[tuple[str, str]] = Counter()
    for c in minds.transcripts:
        if len(c.participants) == 2 and c.lines:
            pairs[tuple(sorted(c.participants))] += len(c.lines)
    names = sorted({m.name for m in minds.minds.values()} | {n for p in pairs for n in p})
    fig, ax = plt.subplots(figsize=(7, 6))
    grid = [[pairs.get(tuple(sorted((a, b))), 0) if a != b else 0 for b in names] for a in names]
    im = ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="lines exchanged")
    ax.set_title("Who talked to whom")
    fig.tight_layout()
    fig.savefig(out / "conversations.png", dpi=90)
    plt.close(fig)
    written.append("conversations.png")
    return written
