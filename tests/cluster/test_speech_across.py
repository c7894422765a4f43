"""Speech across a region border reaches NPC minds, and NPCs answer across
it (#14), with the FAKE model's minds of tests/agents (agent logic, nothing
about the model) over a real nats-server: a player in one region, standing
near the border, addresses Mira (the guide, at the square, which lies on
the border) in the other region; Mira's mind hears it and answers, addressed
to the player; the answer reaches the player's region and the player among
its hearers; their talk goes on while the player stays within earshot and
ends when the player walks off. Each line is in the chat table of the region where it was said,
and both regions' logs replay (without neighbours) to the state they held.
"""
from __future__ import annotations

import asyncio
import math

from server.cluster.handoffs import HandoffLog
from server.cluster.region import RegionNode
from server.cluster.region_world import open_region_world
from server.persistence import Database
from server.world.catalog import load_goods
from server.world.inputs import Say
from server.world.world import Rejection, WorldRules
from tests.agents.fake_llm import FakeLLM
from tests.cluster.helpers import MAP, REGIONS, eventually, region_config

# NPC-initiated talk needs 64 tokens in the bucket: with 40 a minute the NPCs
# keep to their routines and only answer people.
NPC = dict(npcs=True, embeddings=False, npc_tokens_per_minute=40.0, ticks_per_tile=2)
ANSWER = "The well is by the pond, south of the market."
QUESTION = "Mira, where is the well?"


async def start(url: str, tmp_path, name: str, llm) -> RegionNode:
    node = RegionNode("w", name, REGIONS, url, region_config(tmp_path, name, **NPC), lease_ttl_s=1.0, llm=llm)
    await node.start(wait_s=10.0)
    return node


def settled_at_square(nodes, name: str):
    """(the region holding the NPC, its entity) once it stands still at the square."""
    for node in nodes:
        eid = node.game.world.by_name.get(name.casefold())
        e = node.game.world.entities.get(eid) if eid is not None else None
        if e is not None and not e.path and MAP.places["square"].contains(e.x, e.y) \
                and node.npcs.minds.by_entity.get(eid) is not None:
            return node, e
    return None


def spot_across(node, e) -> tuple[int, int]:
    """A walkable tile in the other region within a few tiles of `e`."""
    tiles = [(x, y) for y in range(e.y - 4, e.y + 5) for x in range(e.x - 8, e.x + 9)
             if MAP.walkable(x, y) and REGIONS.owner_of(x, y) not in (None, node.region.name)
             and 2 <= math.dist((x, y), (e.x, e.y)) <= 6]
    assert tiles, f"no tile across the border near {e.name} at ({e.x}, {e.y})"
    return min(tiles, key=lambda t: (math.dist(t, (e.x, e.y)), t))


def chats(node) -> list[tuple]:
    return [(c["from"], c["text"], c["to"], c["to_name"]) for c in node.db.chat_history()]


async def test_an_npc_hears_and_answers_a_person_across_the_border(nats_server, tmp_path):
    r0 = await start(nats_server.url, tmp_path, "r0", FakeLLM(replies=[ANSWER] * 4, prefer="keep"))
    r1 = await start(nats_server.url, tmp_path, "r1", FakeLLM(replies=[ANSWER] * 4, prefer="keep"))
    nodes = [r0, r1]
    crashed = False
    try:
        assert await eventually(lambda: settled_at_square(nodes, "Mira") is not None, timeout=15)
        there, mira = settled_at_square(nodes, "Mira")
        here = r0 if there is r1 else r1
        x, y = spot_across(there, mira)
        me, _ = await here.join("Ann", x, y)
        # each region sees the other one across the border (ghosts)
        assert await eventually(lambda: mira.id in here.ghosts.ids() and me in there.ghosts.ids())
        assert mira.id not in here.game.world.entities
        chat = await here.submit(lambda world: Say(me, QUESTION, to=mira.id))
        assert isinstance(chat, int), chat                      # accepted, not no_such_entity
        mind = there.npcs.minds.minds["mira"]

        def answered():
            return [ev for ev, hearers in here.heard
                    if ev["from"] == mira.id and ev["to"] == me and me in hearers]
        assert await eventually(lambda: answered(), timeout=10)
        ev = answered()[0]
        assert ev["to_name"] == "Ann" and ev["text"]
        assert any(f"Ann said \"{QUESTION}\" to me." in m.text or QUESTION in m.text
                   for m in mind.memory.memories)                     # her mind heard it
        assert mira.id in there.game.world.entities                     # still across the border
        conv = mind.conversation                                        # a talk with a person in earshot
        assert conv is not None and conv.with_player and conv.partner == me
        assert (conv.log.lines[0][1:]) == ("Ann", QUESTION)
        for _ in range(5):                                              # it goes on while Ann stays near
            await asyncio.sleep(0.05)
            assert mind.conversation is conv
        # each line in the chat table of the region where it was said
        assert await eventually(lambda: (me, QUESTION, mira.id, "Mira") in chats(here))
        assert await eventually(lambda: (mira.id, ev["text"], me, "Ann") in chats(there))
        assert not any(c[0] == mira.id for c in chats(here)) and not any(c[0] == me for c in chats(there))
        # Ann walks off, out of earshot (still across the border): the talk is over
        away = next((ax, y) for ax in (sorted(range(MAP.width), key=lambda ax: -abs(ax - mira.x)))
                    if MAP.walkable(ax, y) and REGIONS.owner_of(ax, y) == here.region.name
                    and 14 <= abs(ax - mira.x) <= 24)
        assert (await here.move(me, *away)) is None
        assert await eventually(lambda: mind.conversation is None, timeout=5)
        # the logged say carries whom it reached; both logs replay without neighbours
        said = [d for _, kind, d in here.db.events_after(-1) if kind == "say" and d["entity"] == me]
        assert [(d["to"], d["to_name"]) for d in said] == [(mira.id, "Mira")]
        for node in nodes:
            await node.crash()
        crashed = True
        for node in nodes:
            db = Database(node.config.db)
            world = open_region_world(db, HandoffLog(db.conn), MAP, node.config.seed, node.region.index,
                                      WorldRules(ticks_per_tile=node.config.ticks_per_tile), load_goods(None))
            assert world.tick == node.game.world.tick and world.state_hash() == node.game.world.state_hash()
            db.close()
    finally:
        if not crashed:
            for node in nodes:
                await node.stop()


async def test_an_npc_across_the_border_out_of_hearing_is_refused(nats_server, tmp_path):
    r0 = await start(nats_server.url, tmp_path, "r0", FakeLLM(prefer="keep"))
    r1 = await start(nats_server.url, tmp_path, "r1", FakeLLM(prefer="keep"))
    try:
        assert await eventually(lambda: settled_at_square([r0, r1], "Mira") is not None, timeout=15)
        there, mira = settled_at_square([r0, r1], "Mira")
        here = r0 if there is r1 else r1
        assert await eventually(lambda: mira.id in here.ghosts.ids())
        far = next((x, mira.y + dy) for dy in range(-3, 4) for x in range(0, MAP.width)
                   if MAP.walkable(x, mira.y + dy) and REGIONS.owner_of(x, mira.y + dy) == here.region.name
                   and 11 <= abs(x - mira.x) <= 15)
        me, _ = await here.join("Bo", *far)
        refused = await here.submit(lambda world: Say(me, "Mira!", to=mira.id))
        assert isinstance(refused, Rejection) and refused.code == "bad_value", refused
    finally:
        await r0.stop()
        await r1.stop()
