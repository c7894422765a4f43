"""`hamlet interview RUN NAME "question"`: ask an NPC of a finished run a
question, answered from the memories the run stored (the paper's
interviews), as at the end of a scenario's run: the model's score chooses
among answers made from its memories related to the question. The run's
database is opened read-only, so the run is not changed; the NPC is rebuilt
from the run's population.json (the village's personas for runs from
before it was written)."""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

import msgpack

from agents.memory import Memory, MemoryStream
from agents.personas import Persona, RoutineEntry, load_personas
from agents.scenario import START_MINUTE


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("interview", help="ask an NPC of a finished run a question from its memories",
                              description="Answer from the NPC's stored memories (the model scores answers "
                                          "made from them); the run is opened read-only.")
    p.add_argument("run", metavar="RUN", help="a run's folder (hamlet sim --out)")
    p.add_argument("name", metavar="NAME", help="the NPC to ask")
    p.add_argument("question")
    p.add_argument("--model", default="embedded", help="embedded, a local model folder, or an http(s):// URL")
    p.add_argument("--json", action="store_true", help="print the answer and the memories it recalled as JSON")
    p.set_defaults(func=run_interview_cmd)


def open_run(run: Path) -> sqlite3.Connection:
    db = run / "world.db"
    if not db.exists():
        raise FileNotFoundError(f"no world database in {run}")
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def load_npc(run: Path, name: str) -> tuple[Persona, MemoryStream, float]:
    """The persona, its stored memories and the run's last game minute."""
    people = _population(run)
    persona = people.get(name.casefold())
    if persona is None:
        raise ValueError(f"no NPC named {name!r} in {run} (there are: {', '.join(p.name for p in people.values())})")
    conn = open_run(run)
    try:
        rows = conn.execute("SELECT id, minute, kind, text, importance, last_access FROM memories WHERE npc=? "
                            "ORDER BY id", (persona.name,)).fetchall()
        tick = conn.execute("SELECT value FROM meta WHERE key='final_tick'").fetchone()
    except sqlite3.OperationalError as exc:
        raise ValueError(f"{run}/world.db holds no NPC memories ({exc})") from None
    finally:
        conn.close()
    stream = MemoryStream(persona.name)
    for row in rows:
        stream.load(Memory(*row))
    final_tick = msgpack.unpackb(tick[0]) if tick else 0
    return persona, stream, START_MINUTE + final_tick * 0.5 / 60.0   # 0.5 game s a tick (WorldRules)


def _population(run: Path) -> dict[str, Persona]:
    path = run / "population.json"
    if not path.exists():
        return {p.name.casefold(): p for p in load_personas()}
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for r in rows:
        r["routine"] = tuple(RoutineEntry(*e.values()) if isinstance(e, dict) else RoutineEntry(*e)
                             for e in r["routine"])
        r["traits"], r["memories"] = tuple(r["traits"]), tuple(r["memories"])
        out[r["name"].casefold()] = Persona(**r)
    return out


def interview(run: Path, name: str, question: str, llm) -> dict:
    """The same path as a scenario's end-of-run interviews (agents/interview.py):
    an answer chosen by the model's score among the NPC's related memories."""
    from agents.interview import ask
    persona, stream, now = load_npc(run, name)
    m = int(now)
    asked = ask(llm, persona, stream, question, now, f"day {m // 1440} {m // 60 % 24:02d}:{m % 60:02d}")
    while not asked.done():
        llm.step()
    answer, source = asked.answer()
    status = asked.handle.result().status if asked.handle is not None else "ok"
    return {"npc": persona.name, "question": question, "answer": answer, "source": source.text if source else None,
            "status": status, "recalled": [r.text for r in asked.recalled], "memories": len(stream.memories)}


def run_interview_cmd(args: argparse.Namespace) -> int:
    if not args.question.strip() or len(args.question) > 280:  # a line, like anyone's in the world
        print("hamlet interview: the question must be 1 to 280 characters", file=sys.stderr)
        return 2
    try:
        load_npc(Path(args.run), args.name)  # a wrong folder or name is told before the model loads
        from agents.inference import load_llm
        llm = load_llm(None if args.model == "embedded" else args.model, runner="inline")
        try:
            got = interview(Path(args.run), args.name, args.question, llm)
        finally:
            llm.close()
    except (FileNotFoundError, ValueError) as exc:
        print(f"hamlet interview: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(got))
    else:
        print(f"{got['npc']}: {got['answer'] or '(no answer: ' + got['status'] + ')'}")
        print("(from: " + (got["source"] or "no memory") + ")")
        print("(recalled: " + (" | ".join(got["recalled"]) or "nothing related") + ")")
    return 0
