"""A player's (or walker's) arrival is taken in between the destination's
ticks, committed in a transaction of its own and confirmed at once, not at
the destination's next tick; a crash or a clean stop right after it keeps
the entity exactly once. The destination's ticks are held still here, so
nothing but the between-ticks path can take the arrival in."""
from __future__ import annotations

import asyncio

from client_demo.client import HamletClient
from tests.cluster.helpers import eventually, start_gateway, start_region, walkable_near_border


def hold_ticks(node) -> None:
    node._tick_task.cancel()  # the region still answers NATS; its world's clock stands


def resume_ticks(node) -> None:
    node._tick_task = asyncio.get_running_loop().create_task(node._tick_loop())


async def test_arrival_is_confirmed_between_ticks(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    try:
        y, xl, xr = walkable_near_border()[0]
        eid, _ = await r0.join("ann", xl + 3, y)
        coins = r0.game.world.economy.purses[eid].coins
        await asyncio.sleep(0.05)
        hold_ticks(r1)
        tick = r1.game.world.tick
        assert (await r0.move(eid, xr, y)) is None
        assert await eventually(lambda: eid in r1.entity_ids())
        assert await eventually(lambda: not r0.in_transit())          # confirmed: the arrival is committed
        assert r1.game.world.tick == tick                              # and no tick of r1 ran meanwhile
        assert r1.game.world.economy.purses[eid].coins == coins
        assert r1.db.account_by_entity(eid) is not None                # its account row came in the same commit
        rows = [(t, kind) for t, kind, _, e, *_ in r1.hlog.rows_after(-1) if e == eid]
        assert rows == [(tick + 1, "in")]                              # logged at the next tick's boundary
        resume_ticks(r1)
        assert await eventually(lambda: r1.game.world.entities[eid].x == xr)   # and walks on in r1's ticks
    finally:
        await r0.stop()
        await r1.stop()


async def test_crash_right_after_an_arrival_between_ticks_keeps_it_once(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    try:
        rows = walkable_near_border()
        ids = []
        for i, (y, xl, xr) in enumerate(rows[:4]):
            eid, _ = await r0.join(f"p{i}", xl + 2, y)
            ids.append(eid)
        late, ids = ids[-1], ids[:-1]
        await asyncio.sleep(0.05)
        hold_ticks(r1)
        for eid, (y, xl, xr) in zip(ids, rows):
            assert (await r0.move(eid, xr, y)) is None
        assert await eventually(lambda: set(ids) <= r1.entity_ids() and not r0.in_transit())
        at = {eid: (r1.game.world.entities[eid].x, r1.game.world.entities[eid].y) for eid in ids}
        await r1.crash()                      # before r1's next tick: only the arrivals' own commit holds them
        r1 = await start_region(nats_server.url, tmp_path, "r1")
        hold_ticks(r1)                        # still at the tick it died in, the arrivals' rows ahead of it
        assert set(ids) <= r1.entity_ids()
        y, xl, xr = rows[3]                   # another arrival at that same boundary: its rows go on after theirs
        assert (await r0.move(late, xr, y)) is None
        assert await eventually(lambda: late in r1.entity_ids() and not r0.in_transit())
        assert not r1.failed
        resume_ticks(r1)
        assert not set(ids) & r0.entity_ids() and not r0.in_transit()
        for eid in ids:                       # every one where its handoff put it, or walking on from there
            e = r1.game.world.entities[eid]
            assert abs(e.x - at[eid][0]) + abs(e.y - at[eid][1]) <= r1.game.world.tick
        assert await eventually(lambda: all(r1.game.world.entities[eid].x == xr for eid, (y, xl, xr)
                                            in zip(ids, rows)))
    finally:
        await r0.stop()
        await r1.stop()


async def test_clean_stop_after_an_arrival_between_ticks_then_restarts_keep_it_once(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    try:
        y, xl, xr = walkable_near_border()[0]
        eid, _ = await r0.join("ann", xl + 2, y)
        await asyncio.sleep(0.05)
        hold_ticks(r1)
        assert (await r0.move(eid, xr, y)) is None
        assert await eventually(lambda: eid in r1.entity_ids() and not r0.in_transit())
        await r1.stop()                       # its snapshot, between ticks, holds ann already
        r1 = await start_region(nats_server.url, tmp_path, "r1")
        assert eid in r1.entity_ids()
        assert await eventually(lambda: r1.game.world.entities[eid].x == xr)
        await asyncio.sleep(0.1)              # r1's own ticks commit after the snapshot
        await r1.crash()                      # replayed from that snapshot, through the arrival's tick
        r1 = await start_region(nats_server.url, tmp_path, "r1")
        assert await eventually(lambda: r1.game.world.entities[eid].x == xr)
        assert list(r1.game.world.grid.cells[r1.game.world.grid.where[eid]]).count(eid) == 1
        assert sum(1 for e in r1.game.world.entities.values() if e.name == "ann") == 1
    finally:
        await r0.stop()
        await r1.stop()


async def test_a_failing_commit_stops_the_region_and_a_standby_takes_over(nats_server, tmp_path):
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    standby = None
    try:
        eid, _ = await r1.join("ann", 70, walkable_near_border()[0][0])

        def disk_full(*args, **kwargs):
            raise OSError("disk full")

        r1.db.commit_tick = disk_full
        said = r1.say(eid, "this line is never acknowledged")
        try:
            await asyncio.wait_for(said, 2)
            raise AssertionError("a line was acknowledged without its commit")
        except ConnectionError:
            pass                                                       # told, not left waiting
        assert r1.failed and not r1.running                            # no zombie that renews its lease
        standby = await start_region(nats_server.url, tmp_path, "r1")    # takes the lease as it runs out
        assert eid in standby.entity_ids()
        assert not any(c["text"] == "this line is never acknowledged" for c in standby.db.chat_history())
    finally:
        await r1.crash()
        if standby is not None:
            await standby.stop()


async def test_the_gateway_hears_of_the_arrival_between_ticks_too(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    gw = await start_gateway(nats_server.url)
    ann = None
    try:
        ann = await HamletClient.connect(gw.url)
        eid = (await ann.join("ann"))["id"]
        y, xl, xr = walkable_near_border()[0]
        home = r0 if eid in r0.entity_ids() else r1
        if home is r1:                                     # start from r0's side
            await ann.move((xl, y))
            assert await eventually(lambda: eid in r0.entity_ids() and r0.game.world.entities[eid].x == xl,
                                    timeout=10)
        route = next(iter(gw._by_client.values()))
        assert await eventually(lambda: route.region == "r0")
        hold_ticks(r1)
        tick = r1.game.world.tick
        await ann.move((xr, y))
        assert await eventually(lambda: eid in r1.entity_ids())
        # the session is attached and the gateway routes to r1 before r1 ticks again
        assert await eventually(lambda: route.region == "r1" and route.moving_to is None)
        assert r1.game.world.tick == tick
        resume_ticks(r1)
        assert isinstance(await ann.say("made it across"), int)          # acked by r1, stored there
        assert any(c["text"] == "made it across" for c in r1.db.chat_history())
    finally:
        if ann is not None:
            await ann.close()
        await gw.stop()
        await r0.stop()
        await r1.stop()
