"""A real client (client_demo's HamletClient) through a gateway to two
regions over a real nats-server: it joins, walks back and forth across the
border while talking, and its acks and state deltas run on unbroken
(checked against PROTOCOL.md by a strict mirror); speech crosses the
border to another client; a region killed under a connected client closes
it with 1001 at most, and it resumes its avatar with its acked lines kept."""
from __future__ import annotations

import asyncio

from client_demo.client import HamletClient, ServerError
from tests.cluster.helpers import (StrictMirror, eventually, joined_beside_the_border, start_gateway, start_region,
                                   walkable_near_border)

BORDER_X = 64  # r0 holds x < 64 (cells 0-3 of 16 tiles)


def holder(regions, eid):
    live = [r for r in regions if r.running and eid in r.entity_ids()]
    assert len(live) <= 1, f"entity {eid} in {len(live)} regions"
    return live[0] if live else None


async def test_client_walks_across_the_border_and_talks(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    gw = await start_gateway(nats_server.url)
    ann = bob = None
    try:
        ann = await HamletClient.connect(gw.url)
        eid = (await ann.join("ann"))["id"]
        assert await eventually(lambda: holder((r0, r1), eid) is not None)
        bob = await HamletClient.connect(gw.url)
        await bob.join("bob")
        y, xl, xr = walkable_near_border()[0]
        await bob.move((xr - 2, y))                       # bob waits in r1, 3 tiles from the border
        requests = 0
        for i in range(3):                                # ann crosses back and forth, talking as she walks
            for x in (xl, xr):
                await ann.move((x, y))
                assert isinstance(await ann.say(f"walking {i} to {x}"), int)   # acked (stored) mid-walk
                requests += 2
                region = r0 if x < BORDER_X else r1
                assert await eventually(lambda: holder((r0, r1), eid) is region
                                        and region.game.world.entities[eid].x == x)
                assert await eventually(lambda: ann.me is not None and (ann.me.x, ann.me.y) == (x, y))
        assert len(r0.handoff_ms) + len(r1.handoff_ms) >= 6
        # lines said every few ms while she crosses: some reach the region she
        # just left and are sent on; each is acked once and stored once
        await ann.move((xl, y))
        burst = [f"burst {k}" for k in range(16)]

        async def say_later(k: int) -> int:
            await asyncio.sleep(0.008 * k)
            return await ann.say(burst[k])
        chats = await asyncio.gather(*(say_later(k) for k in range(16)))
        requests += 17
        assert len(set(chats)) == 16
        assert await eventually(lambda: holder((r0, r1), eid) is r0)
        stored = [c["text"] for r in (r0, r1) for c in r.db.chat_history(limit=1000) if c["text"].startswith("burst")]
        assert sorted(stored) == sorted(burst)
        await ann.move((BORDER_X - 4, y))                 # in r0, 5 tiles from bob in r1
        assert await eventually(lambda: eid in r0.entity_ids() and r0.game.world.entities[eid].x == BORDER_X - 4)
        chat = await ann.say("can you hear me over there?")
        requests += 2
        assert await eventually(lambda: any(m.type == "event" and m.data.get("chat") == chat
                                            for m in bob.peek()))
        assert any(c["chat"] == chat for c in r0.db.chat_history())
        mirror = StrictMirror()
        mirror.feed(ann.drain())
        assert mirror.errors == []
        assert len(mirror.acks) == requests               # every request acked once
        assert mirror.entities[eid] == (BORDER_X - 4, y)  # its view of itself is the world's
        rtt = await ann.ping()
        assert rtt < 5
    finally:
        for c in (ann, bob):
            if c is not None:
                await c.close()
        await gw.stop()
        await r0.stop()
        await r1.stop()


async def resume(client: HamletClient, url: str, tries: int = 40) -> tuple[HamletClient, dict]:
    """Resume with the token, as a client does after a 1001: the region may
    still be restarting (answered `overloaded`)."""
    for _ in range(tries):
        new = await HamletClient.connect(url)
        try:
            return new, await new.join(client.name or "x", token=client.token)
        except ServerError as exc:
            await new.close()
            if exc.code != "overloaded":
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("could not resume")


async def test_region_killed_under_a_connected_client(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    gw = await start_gateway(nats_server.url)
    ann = again = None
    try:
        ann, eid, (y, xl, xr) = await joined_beside_the_border(gw.url, r0)
        acked = [await ann.say(f"line {i}") for i in range(3)]
        await r0.crash()                                   # kill -9: no goodbye, the lease runs out
        assert await eventually(lambda: ann.closed, timeout=6)
        assert ann.close_code == 1001                      # documented: server going away, reconnect
        r0 = await start_region(nats_server.url, tmp_path, "r0")    # restarted from its database
        again, welcome = await resume(ann, gw.url)
        assert welcome["id"] == eid and welcome["resumed"] is True
        stored = {c["chat"] for c in r0.db.chat_history()}
        assert set(acked) <= stored                        # acked lines kept
        assert isinstance(await again.say("back again"), int)
        await again.move((xr, y))                          # and it still crosses the border
        assert await eventually(lambda: holder((r0, r1), eid) is r1 and r1.game.world.entities[eid].x == xr)
        assert await eventually(lambda: again.me is not None and again.me.x == xr)
    finally:
        for c in (ann, again):
            if c is not None:
                await c.close()
        await gw.stop()
        await r0.stop()
        await r1.stop()
