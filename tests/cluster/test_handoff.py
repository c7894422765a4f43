"""Two regions over a real nats-server: an entity walks across the border
and is handed off with its purse; neighbours see it as a ghost and hear
speech across the border; a region killed mid-run comes back with what it
committed, and handoffs in flight complete."""
from __future__ import annotations

from tests.cluster.helpers import eventually, start_region, walkable_near_border


async def test_walk_across_border_hands_off_with_purse_and_ghosts(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    try:
        y, xl, xr = walkable_near_border()[0]
        eid, token = await r0.join("ann", xl + 4, y)        # 2 tiles from the border, in r0
        assert eid in r0.entity_ids()
        assert await eventually(lambda: eid in r1.ghosts.ids())   # r1 sees ann across the border
        coins = r0.game.world.economy.purses[eid].coins
        assert coins > 0
        assert (await r0.move(eid, xr, y)) is None
        assert await eventually(lambda: eid in r1.entity_ids())
        assert await eventually(lambda: not r0.in_transit())
        assert eid not in r0.entity_ids()
        assert r1.game.world.economy.purses[eid].coins == coins
        e = r1.game.world.entities[eid]
        assert await eventually(lambda: r1.game.world.entities[eid].x == xr)   # kept walking its path
        assert r1.db.account_by_entity(eid) is not None               # the session's account came along
        assert len(r0.handoff_ms) == 1
        # speech across the border: bob in r0 at the border, ann in r1 hears him
        bob, _ = await r0.join("bob", 63, y)
        chat = await r0.say(bob, "hello over there")
        assert isinstance(chat, int)
        assert await eventually(lambda: any(ev["text"] == "hello over there" and eid in hearers
                                            for ev, hearers in r1.heard))
        assert e.name == "ann"
    finally:
        await r0.stop()
        await r1.stop()


async def test_region_crash_restores_committed_state_and_finishes_handoffs(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    rows = walkable_near_border()
    try:
        ids = []
        for i, (y, xl, xr) in enumerate(rows[:4]):
            eid, _ = await r0.join(f"p{i}", xl, y)
            ids.append(eid)
        chat = await r0.say(ids[0], "remember me")
        await r1.crash()                                  # r1 dies; r0 keeps running
        for eid, (y, xl, xr) in zip(ids, rows):
            assert (await r0.move(eid, xr, y)) is None    # they walk into the dead region
        assert await eventually(lambda: r0.in_transit() == set(ids), timeout=5)
        assert not set(ids) & r0.entity_ids()             # in transit: in neither world
        r1 = await start_region(nats_server.url, tmp_path, "r1")   # restarted (after its lease ran out)
        assert await eventually(lambda: set(ids) <= r1.entity_ids(), timeout=10)
        assert await eventually(lambda: not r0.in_transit())
        assert not set(ids) & r0.entity_ids()
        assert any(c["chat"] == chat for c in r0.db.chat_history())
        await r0.crash()
        r0 = await start_region(nats_server.url, tmp_path, "r0")   # its log says they left
        assert not set(ids) & r0.entity_ids() and not r0.in_transit()
        assert any(c["chat"] == chat and c["text"] == "remember me" for c in r0.db.chat_history())
    finally:
        await r0.stop()
        await r1.stop()
