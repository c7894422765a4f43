"""A cluster whose NPCs think with the REAL embedded model (#14): two
regions (`--npcs --model embedded`, in this process, sharing one engine
over the session's loaded model, as regions share an `llm-serve`) over a
real nats-server, a gateway, and a player who walks up to Mira (the guide,
born in r1) and greets her, then asks her something.

As the player sees it: each line gets an answer from Mira addressed to
them. Underneath, each answer came through r1's engine: the greeting's is
the line the real model's scores put first among the candidates it scored
(recorded with their scores), the question's a generation (tokens counted
in r1's figures); the inputs that said them carry their inference job ids
in r1's event log, and those jobs' results (kept by `Recorded`, which only
watches the real engine) are the scores and the text said. Every
acknowledged line, the player's and Mira's, is in r1's chat table. Then the
player walks off (out of earshot the talk is over) and Mira goes to
lunch at the tavern, in r0: she is
handed off with her model mind, and r0's mind of her (and r0's database)
holds the conversation, r1's database no longer does.

The world's clock is started at 11:57 (its epoch set in the lease bucket
as if the world had been running for ~10 minutes), so noon, when Mira's
routine takes her to the tavern, comes a few seconds in. Bounded: NPCs'
own talk is held off by a small token budget (replies to people are never
refused), memory relevance is lexical (no embedding worker per region).
"""
from __future__ import annotations

import asyncio
import math
import time

import pytest

from agents.dialogue import clean_line
from agents.explain import scored
from agents.minds import MindsSystem
from agents.prompts import quote
from client_demo.client import HamletClient
from server.cluster.clock import world_epoch
from server.cluster.lease import lease_bucket
from server.cluster.region import RegionNode
from server.cluster.region_figures import region_figures
from server.world.world import WorldRules
from tests.cluster.helpers import REGIONS, eventually, region_config, start_gateway

pytestmark = pytest.mark.model

TICK_RATE = 50.0
START_MINUTE = 11 * 60 + 57   # Mira welcomes visitors at the square (r1) until 12:00, then lunch at the tavern (r0)
# NPC-initiated talk needs 64 tokens (a chat) or 48 (a reflection) in the bucket: with 40 a minute
# the NPCs keep to their routines and the engine serves the player.
NPC = dict(npcs=True, model="embedded", embeddings=False, npc_tokens_per_minute=40.0, tick_rate=TICK_RATE,
           ticks_per_tile=6)
SCHOOL = (75, 24)              # in r1, ~24 tiles from the square
GREETING = "Hello Mira!"
QUESTION = "Mira, what do you like best about your work?"


@pytest.fixture(scope="module")
def llm(embedded_model):
    """One engine over the real embedded model, in a thread of this process."""
    from agents.inference import client_for
    model = client_for(embedded_model, runner="thread")
    yield model
    model.close()


async def start_clock_at(nats_connect, minute: int) -> None:
    """Set the world's epoch so that a region starting now starts its new world at `minute` of day 0."""
    rules = WorldRules()
    ticks = (minute - rules.start_minute) * 60 / rules.game_seconds_per_tick
    kv = await lease_bucket((await nats_connect()).jetstream(), "w")
    await world_epoch(kv, now=time.time() - ticks / TICK_RATE)


async def start_region(url: str, tmp_path, name: str, llm) -> RegionNode:
    node = RegionNode("w", name, REGIONS, url, region_config(tmp_path, name, **NPC), lease_ttl_s=1.0, llm=llm)
    await node.start(wait_s=10.0)
    return node


def mind_of(node, name: str):
    mind = node.npcs.minds.minds.get(name.casefold())
    return mind if mind is not None and mind.entity is not None else None


def said_to(npc: int, me: int):
    return lambda m: (m.type == "event" and m.data["kind"] == "say" and m.data["from"] == npc
                      and m.data["to"] == me)


def why_of(mind, heard: str):
    whys = [w for w in mind.why if w.kind == "reply" and w.heard == heard]
    assert len(whys) == 1, [w for w in mind.why]
    return whys[0]


def memory_rows(node, name: str) -> list[str]:
    return [t for (t,) in node.db.conn.execute("SELECT text FROM memories WHERE npc=? ORDER BY id", (name,))]


def logged_says(node, eid: int) -> list[dict]:
    return [data for _, kind, data in node.db.events_after(-1) if kind == "say" and data["entity"] == eid]


def holding(nodes, eid: int):
    """(the region holding the entity, the entity), or (None, None) while it is in transit."""
    for node in nodes:
        e = node.game.world.entities.get(eid)
        if e is not None:
            return node, e
    return None, None


async def walk_up_to(client: HamletClient, nodes, me: int, npc: int, reach: int = 5, timeout: float = 15.0):
    """Walk toward the NPC (walking too) until both stand in one region within `reach` tiles; that region."""
    deadline = time.monotonic() + timeout
    target = None
    while time.monotonic() < deadline:
        (here, a), (there, b) = holding(nodes, me), holding(nodes, npc)
        if a is not None and b is not None:
            if here is there and math.dist((a.x, a.y), (b.x, b.y)) <= reach:
                return here
            if target is None or math.dist(target, (b.x, b.y)) > 2:
                target = (b.x, b.y)
                await client.move(target)
        await asyncio.sleep(0.02)
    raise AssertionError("never came within reach of the NPC")


class Recorded:
    """The real engine, unchanged, with each job's handle kept by its id, so
    a line's job id in a region's event log leads to the result it came from."""

    def __init__(self, llm) -> None:
        self.llm = llm
        self.handles: dict[int, tuple[str, object]] = {}

    def generate(self, *args, **kwargs):
        handle = self.llm.generate(*args, **kwargs)
        self.handles[handle.job_id] = ("generate", handle)
        return handle

    def score(self, *args, **kwargs):
        handle = self.llm.score(*args, **kwargs)
        self.handles[handle.job_id] = ("score", handle)
        return handle

    def __getattr__(self, name: str):
        return getattr(self.llm, name)


async def test_a_player_talks_with_an_npc_of_a_region_running_the_real_model(nats_server, nats_connect,
                                                                           tmp_path, llm):
    engine = Recorded(llm)
    await start_clock_at(nats_connect, START_MINUTE)
    r0 = await start_region(nats_server.url, tmp_path, "r0", engine)
    r1 = await start_region(nats_server.url, tmp_path, "r1", engine)
    gw = ann = None
    try:
        assert isinstance(r1.npcs.minds, MindsSystem) and isinstance(r0.npcs.minds, MindsSystem)
        assert START_MINUTE <= r1.game.world.game_minutes < START_MINUTE + 1
        # Mira is born at her door (house 3, in r1) and walks to the square
        assert await eventually(lambda: mind_of(r1, "Mira") is not None, timeout=5)
        mira = mind_of(r1, "Mira")
        mid = mira.entity
        gw = await start_gateway(nats_server.url)
        ann = await HamletClient.connect(gw.url)
        me = (await ann.join("Ann"))["id"]                    # at the square, in r1
        met = await walk_up_to(ann, (r0, r1), me, mid)
        assert met is r1 and r1.game.world.game_minutes < 12 * 60, \
            f"met Mira in {met.region.name} at {met.game.world.clock()}: she had crossed, or it was past noon"

        # a greeting: answered with the line the real model's scores put first
        greeting_chat = await ann.say(GREETING, to=mid)
        reply = await ann.wait_for(said_to(mid, me), timeout=60)
        line = reply.data["text"]
        why = why_of(mira, GREETING)
        assert why.to == "Ann" and why.outcome == "chosen" and why.line == line == why.chosen
        assert len(why.candidates) >= 2 and all(math.isfinite(s) and s < 0 for _, s in why.candidates)
        assert line == max(why.candidates, key=lambda c: c[1])[0]
        # the input that said it is in r1's event log with its job: r1's engine scored those very numbers
        says = {(s["text"], s["to"]): s["job"] for s in logged_says(r1, mid)}
        kind, handle = engine.handles[says[(line, me)]]
        assert kind == "score" and scored([label for label, _ in why.candidates], handle.result()) == why.candidates

        # a question: answered with a generation
        question_chat = await ann.say(QUESTION, to=mid)
        answer = await ann.wait_for(said_to(mid, me), timeout=60)
        answer_line = answer.data["text"]
        why2 = why_of(mira, QUESTION)
        assert why2.to == "Ann" and why2.line == answer_line and why2.outcome in ("model", "fallback")
        says = {(s["text"], s["to"]): s["job"] for s in logged_says(r1, mid)}
        kind, handle = engine.handles[says[(answer_line, me)]]
        generated = handle.result()
        assert kind == "generate" and generated.ok and generated.tokens > 0
        if why2.outcome == "model":   # the model's own line, passed by the gate
            assert why2.verdict == "ok" and clean_line(generated.text, "Mira", ("Ann",)) == answer_line
        else:                         # the model's line was refused: an in-character line from the facts instead
            assert why2.verdict not in ("", "ok")
        # counted in r1's figures (GET /figures)
        tally = r1.npcs.minds.tally
        assert tally.by_status["small_talk:ok"] >= 1 and tally.by_status["reply:ok"] >= 1
        figures = region_figures(r1)
        assert figures["tokens"] == tally.tokens >= generated.tokens and figures["conversations"] >= 1

        # stored in r1's database, acknowledged lines and answers alike
        chats = {c["chat"]: c for c in r1.db.chat_history(limit=1000)}
        for chat, speaker, to, text in [(greeting_chat, me, mid, GREETING), (reply.data["chat"], mid, me, line),
                                        (question_chat, me, mid, QUESTION),
                                        (answer.data["chat"], mid, me, answer_line)]:
            assert chat in chats, f"line {text!r} not in r1's chat table"
            assert (chats[chat]["from"], chats[chat]["to"], chats[chat]["text"]) == (speaker, to, text)

        # Ann walks off to the school (r1, out of earshot): the talk is over, and at noon Mira leaves for
        # the tavern (r0), her model mind with her
        await ann.move(to=SCHOOL)
        assert await eventually(lambda: mid in r0.entity_ids() and not r1.in_transit(), timeout=40), \
            f"Mira did not reach r0 (game time {r1.game.world.clock()})"
        assert mid not in r1.entity_ids() and "mira" not in r1.npcs.minds.minds
        there = mind_of(r0, "Mira")
        assert there is not None and there.entity == mid and r0.npcs.minds.by_entity[mid] is there
        remembered = [f"Ann said {quote(GREETING)} to me.", f"I said {quote(line)} to Ann.",
                      f"Ann said {quote(QUESTION)} to me.", f"I said {quote(answer_line)} to Ann.",
                      "I talked with Ann."]
        texts = [m.text for m in there.memory.memories]
        assert all(t in texts for t in remembered), texts
        assert line in there.recent_lines and answer_line in there.recent_lines
        assert r0.hlog.hops[mid] == r1.hlog.hops[mid] == 1
        assert await eventually(lambda: all(t in memory_rows(r0, "Mira") for t in remembered))
        assert memory_rows(r1, "Mira") == []
    finally:
        if ann is not None:
            await ann.close()
        if gw is not None:
            await gw.stop()
        await r0.stop()
        await r1.stop()
