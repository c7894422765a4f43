"""NPC responsiveness under load: how long a person waits for an NPC's reply
(send to reply on screen) while 25 NPCs live around the square and the
engine is kept busy with NPC talk, as a village at dinner time would, with
the embedded model on the CPU runner, once with the engine's priorities and
once with FIFO scheduling, in the same run. The person alternates a
greeting ("Hello Bo, how are you today?": small talk, answered with the
line the model's score prefers among the NPC's in-character lines) and an
open question (the NPC's line generated, through the gate); each kind has
its own percentiles, and `outcomes` counts how the answers were made.

The dinner-time talk (`--background N`, default 40): N lines of NPC small
talk always in flight, submitted to the server's own engine at
CONVERSATION priority with the prompts the minds use (a persona's system
prompt, the talk so far, "what do you say?"), each replaced by another when
it ends. 40 is more than the engine's batch (32 rows on the CPU), so lines
queue, as when NPC talk outpaces the engine. The minds themselves hold
back their own small talk while a person waits (agents/mind_decide.py) and
cancel it when a reply starts; these lines stand for what they do not hold
back (conversations of other NPCs already under way, their reflections)
and are not cancelled, so the engine's scheduling alone decides who waits.
`--background 0` measures the village alone.

Last line: {"human_reply_p95_ms": ... (greetings), "human_reply_p95_ms_no_priority": ...,
"question_reply_p95_ms": ... (questions), ...,
engine-side figures of the replies (`reply_engine_*`: submit to first token
and to the end, in the engine; `reply_engine_score_*`: submit to the scored
choice of a greeting's line), the background's tokens/s, ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents import prompts  # noqa: E402
from agents.inference.api import Priority  # noqa: E402
from agents.personas import Persona, RoutineEntry  # noqa: E402
from bench.villagers import write_villagers  # noqa: E402
from client_demo.client import HamletClient  # noqa: E402
from server.app import HamletServer  # noqa: E402
from server.config import ServerConfig  # noqa: E402

NAMES = ["Ada", "Bo", "Cai", "Dov", "Eda", "Fen", "Gus", "Hal", "Ivo", "Jun", "Kit", "Lev", "Mo", "Nia", "Oli",
         "Pia", "Quin", "Ros", "Sol", "Tam", "Uma", "Vik", "Wen", "Xan", "Yul"]


def personas_file(path: Path, n: int) -> Path:
    """n villagers who spend the day around the square and the market."""
    return write_villagers(path, NAMES[:n], ["market", "square", "square"])


# Every other line the person asks one of these instead of greeting: open
# questions, with no fact of the world to quote, so the NPC's own line is
# generated (a greeting is small talk, answered by a scored choice:
# agents/small_talk.py).
QUESTIONS = ["{name}, what do you think of the weather today?", "{name}, what is the best thing about this village?",
             "{name}, what did you do yesterday?", "{name}, what makes you happy?"]

TOPICS = ["the harvest", "the new well", "the price of bread", "the weather", "the fair", "the mill",
          "a lost goat", "the tavern's stew"]


def dinner_prompt(llm, rng: random.Random) -> str:
    """An NPC line as the minds ask for one (agents/prompts.py: reply_turns)."""
    a, b = rng.sample(NAMES, 2)
    me = Persona(name=a, age=30, occupation="villager", role="villager", traits=("chatty",), home="house 1",
                 workplace="square", summary=f"{a} likes to chat with neighbours at the square.",
                 routine=(RoutineEntry(0, "square", "chatting with neighbours"),))
    topic = rng.choice(TOPICS)
    turns = prompts.reply_turns(me, f"18:{rng.randrange(60):02d}", "having dinner at the tavern", [],
                                [(b, f"Have you heard about {topic}?")], b, f"What do you think of {topic}?")
    return llm.chat_prompt(prompts.system_prompt(me), turns)


async def dinner_talk(llm, n: int, stop: asyncio.Event, counts: dict) -> None:
    """Keep n NPC lines in flight until `stop`."""
    rng, live = random.Random(7), []
    while not stop.is_set():
        live = [h for h in live if not h.done() or counts.__setitem__(
            "tokens", counts["tokens"] + (len(h.result().token_ids) if h.result().ok else 0))]
        while len(live) < n:
            live.append(llm.generate(dinner_prompt(llm, rng), max_new_tokens=32, temperature=0.7, top_p=0.9,
                                     seed=rng.randrange(2**31), stop=("\n", "<|im_end|>"),
                                     priority=Priority.CONVERSATION, sentences=2))
        await asyncio.sleep(0.05)
    for h in live:
        h.cancel()


async def measure(policy: str, npcs: int, seconds: float, tmp: Path, background: int = 0,
                  runner: str = "process") -> dict:
    cfg = ServerConfig(port=0, db=str(tmp / f"{policy}.db"), personas=str(personas_file(tmp / "p.toml", npcs)),
                       llm_runner=runner, llm_policy=policy, npc_tokens_per_minute=60_000.0,
                       max_clients_per_ip=1000)
    server = HamletServer(cfg)
    await server.start()
    waits: list[float] = []                # greetings: small talk, answered by a scored choice
    asks: list[float] = []                 # questions: generated (the model's line, through the gate)
    timeouts = 0
    replies: list = []                     # the engine's handles of replies to people
    scores: list = []                      # ... and of their scored choices (greetings)
    generate, score = server.llm.generate, server.llm.score

    def recording(prompt, *a, **k):
        h = generate(prompt, *a, **k)
        if k.get("priority") == Priority.HUMAN_REPLY:
            replies.append(h)
        return h

    def recording_score(prompt, *a, **k):
        h = score(prompt, *a, **k)
        if k.get("priority") == Priority.HUMAN_REPLY:
            scores.append(h)
        return h
    server.llm.generate, server.llm.score = recording, recording_score
    stop, counts = asyncio.Event(), {"tokens": 0}
    talk = asyncio.create_task(dinner_talk(server.llm, background, stop, counts)) if background else None
    try:
        c = await HamletClient.connect(server.url)
        await c.join("Visitor")
        await asyncio.sleep(15)  # NPCs arrive and start talking among themselves
        # and the engine has cached every NPC's system prompt (minds.warm_prefixes,
        # done once at a server's start): a village in its steady state
        for _ in range(240):
            if server.minds is None or server.minds.warm:
                break
            await asyncio.sleep(0.5)
        counts["tokens"], talk_start = 0, time.monotonic()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            me = c.me
            npcs_near = [e for e in c.entities.values() if e.kind == "npc"]
            if me is None or not npcs_near:
                await asyncio.sleep(0.5)
                continue
            target = min(npcs_near, key=lambda e: (e.x - me.x) ** 2 + (e.y - me.y) ** 2)
            if (target.x - me.x) ** 2 + (target.y - me.y) ** 2 > 64:
                await c.move((target.x, target.y + 1), wait=False)
                await asyncio.sleep(1.0)
                continue
            c.drain()
            t0 = time.perf_counter()
            greeting = (len(waits) + len(asks) + timeouts) % 2 == 0
            line = (f"Hello {target.name}, how are you today?" if greeting
                    else QUESTIONS[len(asks) % len(QUESTIONS)].format(name=target.name))
            try:
                await c.say(line, to=target.id)
                await c.wait_for(lambda m: m.type == "event" and m.data["kind"] == "say"
                                 and m.data["from"] == target.id and m.data.get("to") == c.entity, timeout=45)
                (waits if greeting else asks).append(time.perf_counter() - t0)
            except (asyncio.TimeoutError, Exception):
                timeouts += 1
            await asyncio.sleep(1.0)
        engine = server.llm.info() if server.llm else {}
        outcomes = dict(server.minds.stats()["replies"]) if server.minds else {}
        talk_tps = counts["tokens"] / (time.monotonic() - talk_start)
        await c.close()
    finally:
        stop.set()
        if talk is not None:
            await talk
        await server.stop()
    done = [h.result() for h in replies if h.done() and h.result().ok]
    ttft = [r.ttft_s * 1000 for r in done if r.ttft_s is not None]
    latency = [r.latency_s * 1000 for r in done if r.latency_s is not None]
    scored = [h.result().latency_s * 1000 for h in scores if h.done() and h.result().ok]
    return {"p95_ms": pct(waits, 95, 1000), "p50_ms": pct(waits, 50, 1000), "replies": len(waits),
            "ask_p95_ms": pct(asks, 95, 1000), "ask_p50_ms": pct(asks, 50, 1000), "asks": len(asks),
            "outcomes": {k: v for k, v in outcomes.items() if v},
            "timeouts": timeouts, "engine": engine.get("runner"),
            "engine_ttft_p50_ms": pct(ttft, 50), "engine_latency_p50_ms": pct(latency, 50),
            "engine_latency_p95_ms": pct(latency, 95), "background_tok_s": round(talk_tps, 1),
            "engine_score_p50_ms": pct(scored, 50), "engine_score_p95_ms": pct(scored, 95)}


def pct(values: list[float], q: int, scale: float = 1.0) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q / 100 * len(values)))] * scale, 1)


async def main_async(args) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        runner = "cuda" if args.device == "cuda" else "process"
        prio = await measure("priority", args.npcs, args.seconds, tmp, args.background, runner)
        print(f"priority: {prio}", flush=True)
        fifo = await measure("fifo", args.npcs, args.seconds, tmp, args.background, runner)
        print(f"fifo:     {fifo}", flush=True)
    ratio = (fifo["p95_ms"] / prio["p95_ms"]) if prio["p95_ms"] and fifo["p95_ms"] else None
    return {"human_reply_p95_ms": prio["p95_ms"], "human_reply_p95_ms_no_priority": fifo["p95_ms"],
            "p95_no_priority_over_priority": round(ratio, 2) if ratio else None,
            "human_reply_p50_ms": prio["p50_ms"], "human_reply_p50_ms_no_priority": fifo["p50_ms"],
            "replies": prio["replies"], "replies_no_priority": fifo["replies"],
            "question_reply_p95_ms": prio["ask_p95_ms"], "question_reply_p95_ms_no_priority": fifo["ask_p95_ms"],
            "question_reply_p50_ms": prio["ask_p50_ms"], "questions": prio["asks"],
            "questions_no_priority": fifo["asks"], "outcomes": prio["outcomes"],
            "outcomes_no_priority": fifo["outcomes"],
            "timeouts": prio["timeouts"], "timeouts_no_priority": fifo["timeouts"],
            "reply_engine_ttft_p50_ms": prio["engine_ttft_p50_ms"],
            "reply_engine_latency_p50_ms": prio["engine_latency_p50_ms"],
            "reply_engine_latency_p95_ms": prio["engine_latency_p95_ms"],
            "reply_engine_latency_p95_ms_no_priority": fifo["engine_latency_p95_ms"],
            "reply_engine_score_p50_ms": prio["engine_score_p50_ms"],
            "reply_engine_score_p95_ms": prio["engine_score_p95_ms"],
            "background_tok_s": prio["background_tok_s"], "background_tok_s_no_priority": fifo["background_tok_s"],
            "background": args.background, "npcs": args.npcs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npcs", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of greetings per mode")
    ap.add_argument("--background", type=int, default=40, help="NPC lines kept in flight (0: none)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: the CUDA runner")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
