"""A crowd addresses the NPCs: does everyone get an answer, addressed to
them, and is every line clean? Against a live server (real sockets) with
the embedded model on the CPU worker process:

1. 30 people join near the square, where 6 villagers stand, and each greets
   the nearest NPC at once.
2. Then, three rounds: 2 people address the same NPC in the same tick.

A person is answered when a line from the NPC they addressed arrives
addressed to them that is not a holding line ("One at a time, please...").
Every answer goes through the same gate the minds use
(agents/reply_gate.py), against the line it answers. Last line:

    {"greetings", "unanswered", "misaddressed", "reply_p50_ms", "reply_p95_ms",
     "echoed", "persona_leaks", "held", "turned_away", "pairs_answered", ...}
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

from agents.dialogue import is_holding_line  # noqa: E402
from agents.personas import load_personas  # noqa: E402
from agents.prompts import system_prompt  # noqa: E402
from agents.reply_gate import LineContext, check  # noqa: E402
from bench.villagers import write_villagers  # noqa: E402
from client_demo.client import HamletClient  # noqa: E402
from server.app import HamletServer  # noqa: E402
from server.config import ServerConfig  # noqa: E402

HEARING = 9  # tiles: inside the server's hearing range (10), with a tile to spare
VILLAGERS = ["Ada", "Bo", "Cai", "Dov", "Eda", "Fen", "Gus", "Hal"]
GREETINGS = ["Hello {npc}! Good morning.", "Hi {npc}, how are you today?", "Good day, {npc}. Where is the bakery?",
             "{npc}, where does the blacksmith work?", "Hello there {npc}, any news today?",
             "Hey {npc}! Is the tavern open?"]


def personas_file(path: Path, n: int) -> Path:
    return write_villagers(path, VILLAGERS[:n], ["square"], first_age=25)


class Person:
    def __init__(self, client: HamletClient, name: str) -> None:
        self.c, self.name = client, name
        self.asked: list[tuple[int, str, float]] = []  # (npc id, text, sent at)
        self.heard: list[tuple[int, str, float]] = []  # lines addressed to me: (from, text, at)
        self.task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        async for m in self.c.messages():
            if m.type == "event" and m.data.get("kind") == "say" and m.data.get("to") == self.c.entity:
                self.heard.append((m.data["from"], m.data["text"], time.perf_counter()))

    async def ask(self, npc_id: int, text: str) -> None:
        self.asked.append((npc_id, text, time.perf_counter()))
        await self.c.say(text, to=npc_id)

    def answer_to(self, i: int) -> tuple[str, float] | None:
        """The first real answer to my i-th question, and its wait in seconds."""
        npc, _, sent = self.asked[i]
        for frm, text, at in self.heard:
            if frm == npc and at >= sent and not is_holding_line(text):
                later = [a for a in self.asked[i + 1:] if a[0] == npc]
                if later and at >= later[0][2]:
                    return None
                return text, at - sent
        return None


async def wait_answers(people: list[tuple[Person, int]], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(p.answer_to(i) is None for p, i in people):
        await asyncio.sleep(0.1)


async def run(args) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cfg = ServerConfig(port=0, db=str(tmp / "crowd.db"), personas=str(personas_file(tmp / "p.toml", args.npcs)),
                           llm_runner=args.runner, llm_nice=args.llm_nice, llm_threads=args.llm_threads, max_clients_per_ip=1000)
        server = HamletServer(cfg)
        await server.start()
        personas = {p.name: p for p in load_personas(cfg.personas)}
        try:
            return await _measure(server, personas, args)
        finally:
            await server.stop()


async def _measure(server: HamletServer, personas: dict, args) -> dict:
    people = []
    for i in range(args.people):
        c = await HamletClient.connect(server.url)
        await c.join(f"Visitor{i + 1}")
        people.append(Person(c, f"Visitor{i + 1}"))
    t0 = time.monotonic()
    while server.minds is not None and not server.minds.warm and time.monotonic() - t0 < 120:
        await asyncio.sleep(0.5)  # the NPCs' prompts are cached: a server that has been up a few seconds
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:  # the villagers walk to the square
        npcs = [e for e in people[0].c.entities.values() if e.kind == "npc"]
        if len(npcs) >= args.npcs and all(abs(e.x - 64) <= 8 and abs(e.y - 48) <= 7 for e in npcs):
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)
    names = {e.id: e.name for e in people[0].c.entities.values() if e.kind == "npc"}
    # 1. everyone greets an NPC within hearing at once, the crowd spread over them
    asks, load = [], {i: 0 for i in names}
    for k, p in enumerate(people):
        me = p.c.me
        near = [e for e in p.c.entities.values()
                if e.kind == "npc" and (e.x - me.x) ** 2 + (e.y - me.y) ** 2 <= HEARING ** 2]
        npc = min(near, key=lambda e: (load.get(e.id, 0), (e.x - me.x) ** 2 + (e.y - me.y) ** 2))
        load[npc.id] = load.get(npc.id, 0) + 1
        asks.append(p.ask(npc.id, GREETINGS[k % len(GREETINGS)].format(npc=npc.name)))
    await asyncio.gather(*asks)
    await wait_answers([(p, 0) for p in people], args.timeout)
    # 2. two people address one NPC in the same tick, three rounds
    target = next(iter(names))
    pairs = []
    for r in range(3):
        a, b = people[2 * r], people[2 * r + 1]
        await asyncio.gather(a.ask(target, f"{names[target]}, what do you do all day?"),
                             b.ask(target, f"{names[target]}, who is your best friend?"))
        pairs += [(a, len(a.asked) - 1), (b, len(b.asked) - 1)]
        await wait_answers(pairs[-2:], args.timeout)
    await asyncio.sleep(1)
    return _report(people, pairs, names, personas, server)


def _report(people: list[Person], pairs, names: dict[int, str], personas: dict, server: HamletServer) -> dict:
    waits, unanswered, echoed, leaks, verdicts = [], 0, 0, 0, {}
    for p in people:
        for i, (npc, text, _) in enumerate(p.asked):
            got = p.answer_to(i)
            if got is None:
                unanswered += 1
                continue
            line, wait = got
            waits.append(wait)
            persona = personas.get(names.get(npc, ""))
            ctx = LineContext(names.get(npc, "?"), heard=text, names=(p.name,),
                              prompt_texts=(system_prompt(persona),) if persona else ())
            v = check(line, ctx)
            verdicts[v] = verdicts.get(v, 0) + 1
            echoed += v == "echo"
            leaks += v == "persona"
    # a line from an NPC addressed to someone who never spoke to it
    misaddressed = sum(1 for p in people for frm, _, _ in p.heard if frm not in {a[0] for a in p.asked})
    held = sum(1 for p in people for _, t, _ in p.heard if is_holding_line(t) and "too many" not in t.lower())
    turned = sum(1 for p in people for _, t, _ in p.heard if is_holding_line(t) and "too many" in t.lower())
    waits.sort()

    def pct(q: float) -> float | None:
        return round(waits[min(len(waits) - 1, int(q * len(waits)))] * 1000, 1) if waits else None
    minds = server.minds.stats() if server.minds is not None else {}
    return {"greetings": len(people), "questions": sum(len(p.asked) for p in people), "unanswered": unanswered,
            "misaddressed": misaddressed, "reply_p50_ms": pct(0.5), "reply_p95_ms": pct(0.95),
            "reply_max_ms": pct(1.0), "echoed": echoed, "persona_leaks": leaks, "held": held,
            "turned_away": turned, "pairs_answered": sum(1 for p, i in pairs if p.answer_to(i) is not None),
            "pairs": len(pairs), "answer_verdicts": verdicts, "server_gate": minds.get("gate"),
            "server_replies": minds.get("replies")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=30)
    ap.add_argument("--npcs", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a round's answers")
    ap.add_argument("--llm-nice", type=int, default=15, help="the model worker's nice value (the server's default 15)")
    ap.add_argument("--llm-threads", type=int, default=0, help="the model worker's threads (0: one per core)")
    ap.add_argument("--runner", default="process", choices=["process", "thread"],
                    help="where the engine steps (thread: in the server's process, for tracing it)")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
