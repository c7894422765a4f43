"""Believability: does an NPC answer questions about the world with the
world's facts, remember what a person told it, and not repeat itself?
Against a live server (real sockets) with the embedded model and the
village's NPCs, one person talks to Mira at the square:

1. World questions generated from the world's data: where each place is,
   where some villagers are now, when places open, what goods cost and who
   sells them. An answer is grounded when it holds the fact: a compass word
   the map allows for the place (from Mira or from the square; "here" when
   close), the place where the villager is now, an hour the keeper's
   routine starts there, the seller's name or a price a shop asks or pays
   now.
2. Recall: the person tells Mira three things about themself, asks the
   world questions, then asks for each of the three; recalled when the
   answer holds it.
3. Repeats: over a six-turn talk, answers said word for word twice.
4. The school: the person walks to Elena, asks to be quizzed and answers
   alternately right (the lesson's answer) and wrong ("the pond"); judged
   correctly when she says "That's right" to the right ones and "Not
   quite" to the wrong ones (right answers are known by their words; a
   wrong one, holding none of them, goes to the model's `score`).

Last line, JSON: {"grounded_answer_accuracy", "by_kind", "recall_rate",
"repeat_rate", "quiz_judged_correctly", "questions", "reply_p50_ms",
"reply_p95_ms", "unanswered", "examples"}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.dialogue import is_holding_line  # noqa: E402
from agents.facts import PLACE_ALIASES, allowed_directions, shop_prices, whereabouts  # noqa: E402
from agents.personas import load_personas  # noqa: E402
from agents.school import load_lessons  # noqa: E402
from client_demo.client import HamletClient  # noqa: E402
from server.app import HamletServer  # noqa: E402
from server.config import ServerConfig  # noqa: E402

TOLD = [("My favourite colour is green.", "What is my favourite colour?", "green"),
        ("I have a dog called Rex.", "What is my dog called?", "rex"),
        ("I come from Riverdale.", "Where do I come from?", "riverdale")]
TALK = ["Hello Mira!", "How is the village today?", "Is it busy at the market?", "What do you like about your work?",
        "Any news from the tavern?", "Thank you, goodbye!"]
PEOPLE = ["Bram", "Sanne", "Tomas", "Elena"]
GOODS = ["bread", "nails", "eggs", "books"]
HOURS = [("bakery", "Sanne"), ("market", "Pell"), ("smithy", "Bram")]


def persona(name: str):
    return next(p for p in load_personas() if p.name == name)


async def ask(c: HamletClient, npc: int, text: str, timeout: float) -> tuple[str | None, float]:
    """Say `text` to the NPC; its first real answer to us, and the wait."""
    sent = time.perf_counter()

    def answer(m) -> bool:
        return (m.type == "event" and m.data.get("kind") == "say" and m.data.get("from") == npc
                and m.data.get("to") == c.entity and not is_holding_line(m.data["text"]))
    waiter = asyncio.ensure_future(c.wait_for(answer, timeout))
    await c.say(text, to=npc)
    try:
        msg = await waiter
    except (asyncio.TimeoutError, ConnectionError):
        return None, time.perf_counter() - sent
    return msg.data["text"], time.perf_counter() - sent


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()))


def place_grounded(world, mira, place: str, answer: str) -> bool:
    allowed = allowed_directions(world, mira.x, mira.y).get(place)
    low = answer.lower()
    if allowed is None:  # close by: "here"
        return "here" in low
    return any(re.search(rf"\b{re.escape(d)}\b", low) for d in allowed)


def price_grounded(world, item: str, answer: str) -> bool:
    eco = world.economy
    sellers = [s.keeper.lower() for s in eco.catalog.shops.values() if item in s.sells]
    prices = shop_prices(world).get(item, frozenset())
    said = {int(n) for n in re.findall(r"\b(\d{1,4})\b", answer)}
    return bool(words(answer) & set(sellers)) or bool(said & prices)


async def measure(server: HamletServer, args) -> dict:
    world = server.game.world
    c = await HamletClient.connect(f"ws://127.0.0.1:{server.port}")
    await c.join("Ann")
    end = time.monotonic() + 120
    while world.find_by_name("Mira") is None and time.monotonic() < end:
        await asyncio.sleep(0.1)
    mira = world.find_by_name("Mira")
    # stand next to her
    spot = next((mira.x + dx, mira.y + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1))
                if world.map.walkable(mira.x + dx, mira.y + dy))
    await c.move(to=spot)
    while world.entities[c.entity].path:
        await asyncio.sleep(0.05)
    waits, unanswered, results, examples = [], 0, {"place": [], "person": [], "price": []}, []

    async def q(text: str) -> str | None:
        nonlocal unanswered
        answer, wait = await ask(c, mira.id, text, args.timeout)
        if answer is None:
            unanswered += 1
        else:
            waits.append(wait)
        return answer

    for text, _, _ in TOLD:
        await q(text)
    places = [p for p in PLACE_ALIASES if p in world.map.places and p != "square"][:args.places]
    for place in places:
        a = await q(f"Where is the {place}?")
        ok = a is not None and place_grounded(world, mira, place, a)
        results["place"].append(ok)
        examples.append({"q": f"Where is the {place}?", "a": a, "grounded": ok})
    for name in PEOPLE:
        a = await q(f"Where is {name} now?")
        where = whereabouts(world, name) or ""
        key = where.replace("at the ", "").replace("at ", "")
        ok = a is not None and bool(key) and key.split()[-1] in a.lower()
        results["person"].append(ok)
        examples.append({"q": f"Where is {name} now?", "a": a, "truth": where, "grounded": ok})
    for place, keeper in HOURS:
        a = await q(f"When does the {place} open?")
        hours = [f"{r.hour:02d}:00" for r in persona(keeper).routine if r.place == place]
        ok = a is not None and any(h in a for h in hours)
        results["hours"] = results.get("hours", []) + [ok]
        examples.append({"q": f"When does the {place} open?", "a": a, "grounded": ok})
    for item in GOODS:
        a = await q(f"What does {item} cost, and who sells it?")
        ok = a is not None and price_grounded(world, item, a)
        results["price"].append(ok)
        examples.append({"q": f"What does {item} cost?", "a": a, "grounded": ok})
    recalled = []
    for _, question, key in TOLD:
        a = await q(question)
        recalled.append(a is not None and key in a.lower())
        examples.append({"q": question, "a": a, "recalled": recalled[-1]})
    talk = [await q(line) for line in TALK]
    said = [a for a in talk if a]
    repeats = len(said) - len(set(said))
    judged = await quiz(c, world, args, examples)
    await c.close()
    graded = [ok for v in results.values() for ok in v]
    waits.sort()

    def pct(p: float) -> float | None:
        return round(waits[min(len(waits) - 1, int(p * len(waits)))] * 1000, 1) if waits else None
    return {
        "grounded_answer_accuracy": round(sum(graded) / len(graded), 3) if graded else None,
        "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in results.items()},
        "recall_rate": round(sum(recalled) / len(recalled), 3),
        "repeat_rate": round(repeats / max(1, len(said)), 3),
        "quiz_judged_correctly": round(sum(judged) / len(judged), 3) if judged else None,
        "questions": len(graded) + len(TOLD) * 2 + len(TALK), "unanswered": unanswered,
        "reply_p50_ms": pct(0.5), "reply_p95_ms": pct(0.95),
        "examples": examples if args.examples else None,
    }


async def stand_by(c: HamletClient, world, npc) -> None:
    spot = next((npc.x + dx, npc.y + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1))
                if world.map.walkable(npc.x + dx, npc.y + dy))
    await c.move(to=spot)
    while world.entities[c.entity].path:
        await asyncio.sleep(0.05)


async def quiz(c: HamletClient, world, args, examples: list) -> list[bool]:
    """Right and wrong answers to Elena's questions: was each judged as it should be?"""
    answers = {q.q: q.a for lesson in load_lessons() for q in lesson.questions}
    elena = world.find_by_name("Elena")
    if elena is None or args.quiz <= 0:
        return []
    await stand_by(c, world, elena)
    out = []
    for k in range(args.quiz):
        asked, _ = await ask(c, elena.id, "Quiz me, please.", args.timeout)
        question = (asked or "").split("Here's a question, Ann: ")[-1]
        if question not in answers:
            continue
        right = k % 2 == 0
        verdict, _ = await ask(c, elena.id, answers[question] if right else "the pond", args.timeout)
        ok = verdict is not None and verdict.startswith("That's right" if right else "Not quite")
        out.append(ok)
        examples.append({"q": question, "answered": answers[question] if right else "the pond", "verdict": verdict,
                         "judged_correctly": ok})
    return out


async def run(args) -> dict:
    with tempfile.TemporaryDirectory() as d:
        cfg = ServerConfig(port=0, db=str(Path(d) / "believe.db"), model=args.model, llm_runner=args.runner)
        server = HamletServer(cfg)
        await server.start()
        try:
            if server.minds is not None:
                end = time.monotonic() + 300
                while not server.minds.warm and time.monotonic() < end:
                    await asyncio.sleep(0.2)
            return await measure(server, args)
        finally:
            await server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded", help='"embedded" (default), a model folder or an http(s):// URL')
    ap.add_argument("--runner", default="process", choices=["process", "thread"])
    ap.add_argument("--places", type=int, default=10, help="places asked about")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each answer")
    ap.add_argument("--quiz", type=int, default=6, help="quiz questions answered at the school")
    ap.add_argument("--examples", action="store_true", help="include every question and answer in the JSON")
    args = ap.parse_args()
    out = asyncio.run(run(args))
    if out.get("examples"):
        for e in out["examples"]:
            print(json.dumps(e), flush=True)
    out.pop("examples", None)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
