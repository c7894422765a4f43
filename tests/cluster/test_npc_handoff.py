"""NPCs in a cluster (`--npcs`, no model: they follow their routines) over a
real nats-server: each is born once, in the region holding its home; one
whose routine takes it across the border arrives in the other region with
its mind (memories, events, a meeting), exists exactly once, and its old
region keeps neither its mind nor its memories; restarts restore NPCs from
each region's database and spawn nobody twice; a bad mind is refused and
changes nothing."""
from __future__ import annotations

import asyncio

import pytest

from server.cluster import wire
from tests.cluster.helpers import MAP, eventually, start_region

# At 08:00 on day 0 (a new world) Oda leaves house 5 (region r0) for the
# fields (r1) and Pell for the smithy (r1); Tomas stays home (r0) and Mira
# goes to the square (r1).
NPC = dict(npcs=True, model="none", ticks_per_tile=3)


def where(node, name: str) -> int | None:
    return node.game.world.by_name.get(name.casefold())


def mind_of(node, name: str):
    mind = node.npcs.minds.minds.get(name.casefold())
    return mind if mind is not None and mind.entity is not None else None


def rows(node, name: str) -> list[str]:
    return [t for (t,) in node.db.conn.execute("SELECT text FROM memories WHERE npc=? ORDER BY id", (name,))]


def count(nodes, name: str) -> int:
    return sum(where(n, name) is not None for n in nodes) + sum(
        state["name"] == name for n in nodes for _, state in n.hlog.outgoing.values())


async def test_an_npc_walks_across_with_its_mind_and_restarts_restore_npcs(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0", **NPC)
    r1 = await start_region(nats_server.url, tmp_path, "r1", **NPC)
    try:
        assert await eventually(lambda: mind_of(r0, "Oda") is not None, timeout=5, step=0.005)
        oda = mind_of(r0, "Oda")
        eid = oda.entity
        assert r0.regions.owner_of(*MAP.places["house 5"].entry) == "r0"
        oda.memory.add(r0.game.world.game_minutes, "observation", "I hid a silver key under the pond bridge.", 9)
        oda.meeting = ("Ann", "market", 15)
        assert oda.events.heard("Tomas holds a harvest feast at the tavern at 18:00 today.",
                                r0.game.world.game_minutes, set(MAP.places)) is not None
        assert "fields" in [oda.persona.activity_at(8.5).place] and eid not in r1.entity_ids()
        # its routine takes it to the fields, across the border: handed off with its mind
        assert await eventually(lambda: eid in r1.entity_ids() and not r0.in_transit(), timeout=15)
        assert eid not in r0.entity_ids() and where(r0, "Oda") is None
        assert "oda" not in r0.npcs.minds.minds and eid not in r0.npcs.minds.by_entity   # the old region let it go
        there = mind_of(r1, "Oda")
        assert there is not None and there.entity == eid and r1.npcs.minds.by_entity[eid] is there
        texts = [m.text for m in there.memory.memories]
        assert "I hid a silver key under the pond bridge." in texts
        assert all(t in texts for t in there.persona.memories)                # its seeded memories came too
        assert [m.id for m in there.memory.memories] == sorted(m.id for m in there.memory.memories)
        assert there.meeting == ("Ann", "market", 15) and [e.place for e in there.events.events.values()] == ["tavern"]
        # written in r1's database with the arrival, gone from r0's
        assert await eventually(lambda: "I hid a silver key under the pond bridge." in rows(r1, "Oda"))
        assert rows(r0, "Oda") == []
        names = ("Oda", "Pell", "Tomas", "Mira")
        assert await eventually(lambda: where(r1, "Pell") is not None and not r0.in_transit(), timeout=15)
        assert all(count([r0, r1], n) == 1 for n in names)
        assert where(r0, "Tomas") and where(r1, "Mira")                       # born where their homes are
        assert r0.game.sessions.name_is_held("oda") and r1.game.sessions.name_is_held("TOMAS")   # theirs everywhere
        assert not r1.game.sessions.name_is_held("ann")
        assert r0.hlog.hops[eid] == r1.hlog.hops[eid] == 1
        # r1 killed: it comes back with Oda and her memories from its database
        await r1.crash()
        r1 = await start_region(nats_server.url, tmp_path, "r1", **NPC)
        assert where(r1, "Oda") == eid
        assert await eventually(lambda: mind_of(r1, "Oda") is not None)
        assert "I hid a silver key under the pond bridge." in [m.text for m in mind_of(r1, "Oda").memory.memories]
        # r0 killed: its log says Oda and Pell left; nobody is born twice
        await r0.crash()
        r0 = await start_region(nats_server.url, tmp_path, "r0", **NPC)
        await asyncio.sleep(0.5)   # some 25 ticks: a spawn would show
        assert where(r0, "Oda") is None and where(r0, "Pell") is None and "oda" not in r0.npcs.minds.minds
        assert mind_of(r0, "Tomas") is not None and rows(r0, "Tomas")         # restored with its memories
        assert all(count([r0, r1], n) == 1 for n in names)
        assert sorted(e.name for n in (r0, r1) for e in n.game.world.entities.values() if e.kind == "npc") == \
            sorted(p.name for p in r0.npcs.personas.values())
    finally:
        await r0.stop()
        await r1.stop()


def npc_state(node, name: str, mind) -> dict:
    x, y = MAP.places["market"].entry   # in r1
    return {"id": 5, "kind": "npc", "name": name, "x": x, "y": y, "flags": 0, "path": [], "cooldown": 0,
            "coins": 3, "goods": [], "progress": [], "plan": [], "hop": 1, **({"mind": mind} if mind else {})}


async def test_a_bad_mind_is_refused_and_changes_nothing(nats_server, nats_connect, tmp_path):
    from agents.memory import MemoryStream
    from agents.mind import Mind
    from agents.mind_state import mind_to_dict

    r1 = await start_region(nats_server.url, tmp_path, "r1", **NPC)
    plain = await start_region(nats_server.url, tmp_path, "r0", npcs=False)
    nc = await nats_connect()
    try:
        assert await eventually(lambda: mind_of(r1, "Mira") is not None)
        persona = r1.npcs.personas["tomas"]
        good = mind_to_dict(Mind(persona, MemoryStream("Tomas")), 0.0, 0)

        async def send(region, state, hid="r0:5:1"):
            reply = await nc.request(wire.handoff_subject("w", region), wire.pack(
                {"t": "handoff", "id": hid, "from": "r0", "state": state}), timeout=5)
            return wire.unpack(reply.data, ("ok", "refused", "busy"))

        before = (r1.entity_ids(), dict(r1.npcs.minds.minds), dict(r1.hlog.hops))
        for state, why in [(npc_state(r1, "Tomas", dict(good, memories="lots")), "the mind of Tomas: memories"),
                           (npc_state(r1, "Tomas", dict(good, name="Mira")), "Mira"),
                           (npc_state(r1, "Tomas", None), "carries no mind"),
                           (npc_state(r1, "Nobody", good), "no NPC named Nobody")]:
            answer = await send("r1", state)
            assert answer["t"] == "refused" and why in answer["why"], answer
        assert (r1.entity_ids(), dict(r1.npcs.minds.minds), dict(r1.hlog.hops)) == before
        assert where(r1, "Tomas") is None and "tomas" not in r1.npcs.minds.minds
        x, y = plain.game.world.map.places["tavern"].entry   # in r0, which runs no NPCs
        answer = await send("r0", dict(npc_state(plain, "Tomas", good), x=x, y=y))
        assert answer["t"] == "refused" and "runs no NPCs" in answer["why"] and where(plain, "Tomas") is None
        # the good one goes in, its mind bound at a tick boundary
        answer = await send("r1", npc_state(r1, "Tomas", good))
        assert answer["t"] == "ok"
        assert where(r1, "Tomas") == 5 and mind_of(r1, "Tomas").entity == 5
    finally:
        await r1.stop()
        await plain.stop()


@pytest.mark.parametrize("flag", [["--npcs"], []])
def test_region_and_cluster_take_the_npc_flags(flag):
    import argparse

    from server.cluster.commands import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for cmd in (["region", "--nats", "nats://x", "--region", "r0"], ["cluster"]):
        args = parser.parse_args(cmd + flag + ["--llm", "http://127.0.0.1:9/v1"])
        assert args.npcs == bool(flag) and args.model == "http://127.0.0.1:9/v1"
        assert parser.parse_args(cmd).model == "none" and parser.parse_args(cmd).npcs is False
