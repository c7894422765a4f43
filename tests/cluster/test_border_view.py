"""What a client near a border sees through a gateway to two regions over a
real nats-server, checked against PROTOCOL.md by a strict mirror: the
entities across the border enter, move and leave its view like local
ones; one crossing the border moves on without leaving and entering
again, and one whose handoff is slow stays in view where it stepped; ghosts of a region gone quiet leave the view; and a player whose
avatar crosses the border with an offer open is told it was withdrawn."""
from __future__ import annotations

import asyncio

from client_demo.client import HamletClient
from server.cluster.region import RegionNode
from server.world.inputs import SetFlags
from server.world.world import FLAG_AWAY
from tests.cluster.helpers import REGIONS, StrictMirror, eventually, start_gateway, start_region, walkable_near_border

BORDER_X = 64  # r0 holds x < 64 (cells 0-3 of 16 tiles)
CELL = REGIONS.cell


class Watcher:
    """A client's messages so far, through a strict mirror, with every id
    it was told to forget."""

    def __init__(self, client: HamletClient) -> None:
        self.client = client
        self.mirror = StrictMirror()
        self.left: list[int] = []
        self.entered: list[int] = []

    def read(self) -> dict[int, tuple[int, int]]:
        messages = self.client.drain()
        for m in messages:
            if m.type == "state":
                self.left += m.data["leave"]
                self.entered += [row[0] for row in m.data["enter"]]
        self.mirror.feed(messages)
        assert self.mirror.errors == []
        return self.mirror.entities

    def sees(self, eid: int, at: tuple[int, int] | None) -> bool:
        """Whether the client has `eid` at `at` (None: not in its view)."""
        return self.read().get(eid) == at


def world_view(regions, x: int, y: int) -> dict[int, tuple[int, int]]:
    """What one process would show a client at (x, y): every entity of
    every region in the 3 x 3 cells around its cell."""
    cx, cy = x // CELL, y // CELL
    return {e.id: (e.x, e.y) for r in regions for e in r.game.world.entities.values()
            if abs(e.x // CELL - cx) <= 1 and abs(e.y // CELL - cy) <= 1}


async def joined(url: str, name: str) -> tuple[HamletClient, int]:
    client = await HamletClient.connect(url)
    return client, (await client.join(name))["id"]


async def test_offer_withdrawn_when_its_maker_crosses_the_border(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    gw = await start_gateway(nats_server.url)
    ann = bob = None
    try:
        y, xl, xr = walkable_near_border()[0]
        (ann, aid), (bob, bid) = await joined(gw.url, "ann"), await joined(gw.url, "bob")
        await ann.move((BORDER_X - 3, y))
        await bob.move((BORDER_X - 5, y))
        assert await eventually(lambda: ann.me is not None and (ann.me.x, ann.me.y) == (BORDER_X - 3, y)
                                and bob.me is not None and (bob.me.x, bob.me.y) == (BORDER_X - 5, y))
        assert aid in r0.entity_ids() and bid in r0.entity_ids()
        offer = await ann.offer(bid, coins=1)
        assert await eventually(lambda: offer in ann.offers and offer in bob.offers)
        ann.drain()
        await ann.move((xr, y))                                  # across the border, the offer still open
        assert await eventually(lambda: aid in r1.entity_ids())
        news = await ann.wait_for(lambda m: m.type == "offer" and m.data["id"] == offer)
        assert news.data["state"] == "withdrawn"
        assert news.data["from"] == aid and news.data["from_name"] == "ann" and news.data["to_name"] == "bob"
        assert offer not in ann.offers
        assert await eventually(lambda: offer not in bob.offers)  # and the other side, as before
    finally:
        for c in (ann, bob):
            if c is not None:
                await c.close()
        await gw.stop()
        await r0.stop()
        await r1.stop()


async def test_a_client_near_the_border_sees_across_it(nats_server, tmp_path):
    every_tick = dict(state_every_ticks=1, max_state_every_ticks=1)   # no tick's view goes unsent
    r0 = await start_region(nats_server.url, tmp_path, "r0", **every_tick)
    r1 = await start_region(nats_server.url, tmp_path, "r1", **every_tick)
    gw = await start_gateway(nats_server.url)
    ann = bob = None
    try:
        y, xl, xr = walkable_near_border()[0]
        bob, bid = await joined(gw.url, "bob")
        await bob.move((BORDER_X - 3, y))                       # bob waits in r0, 3 tiles from the border
        watch = Watcher(bob)
        assert await eventually(lambda: watch.sees(bid, (BORDER_X - 3, y)))
        cat, _ = await r1.join("cat", BORDER_X + 2, y)          # someone in r1, in bob's view
        assert await eventually(lambda: watch.sees(cat, (BORDER_X + 2, y)))
        assert await r1.move(cat, BORDER_X + 6, y) is None      # moves there
        assert await eventually(lambda: watch.sees(cat, (BORDER_X + 6, y)))
        assert await r1.submit(lambda world: SetFlags(cat, FLAG_AWAY)) is None   # and looks away
        assert await eventually(lambda: bob.entities[cat].flags == FLAG_AWAY and watch.read() is not None)
        assert await r1.move(cat, BORDER_X + 26, y) is None     # out of view (two cells away)
        assert await eventually(lambda: watch.sees(cat, None))
        assert watch.left.count(cat) == 1
        assert await r1.move(cat, BORDER_X + 4, y) is None      # and back
        assert await eventually(lambda: watch.sees(cat, (BORDER_X + 4, y)))
        assert watch.entered.count(cat) == 2
        # ann crosses the border under bob's eyes, both ways: he sees her walk
        # on, never leave and enter again; her own view runs on unbroken
        ann, aid = await joined(gw.url, "ann")
        ann_watch = Watcher(ann)
        await ann.move((xr, y))
        assert await eventually(lambda: watch.sees(aid, (xr, y)) and ann_watch.sees(aid, (xr, y)))
        assert await eventually(lambda: ann_watch.sees(bid, (BORDER_X - 3, y)))   # she sees bob across it
        seen_from = len(watch.left)
        for x in (xl, xr, xl):
            await ann.move((x, y))
            assert await eventually(lambda: watch.sees(aid, (x, y)) and ann_watch.sees(aid, (x, y)))
        assert aid not in watch.left[seen_from:]
        assert bid not in ann_watch.left and cat not in ann_watch.left
        assert len(r0.handoff_ms) + len(r1.handoff_ms) >= 3
        # and what each sees is what one process would show
        assert await eventually(lambda: watch.read() == world_view((r0, r1), BORDER_X - 3, y))
        assert await eventually(lambda: ann_watch.read() == world_view((r0, r1), xl, y))
    finally:
        for c in (ann, bob):
            if c is not None:
                await c.close()
        await gw.stop()
        await r0.stop()
        await r1.stop()


async def test_ghosts_of_a_quiet_region_leave_the_view(nats_server, tmp_path):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    gw = await start_gateway(nats_server.url)
    bob = None
    try:
        y, _, _ = walkable_near_border()[0]
        bob, bid = await joined(gw.url, "bob")
        await bob.move((BORDER_X - 3, y))
        watch = Watcher(bob)
        cat, _ = await r1.join("cat", BORDER_X + 2, y)
        assert await eventually(lambda: watch.sees(cat, (BORDER_X + 2, y)) and watch.sees(bid, (BORDER_X - 3, y)))
        await r1.crash()                                        # r1 goes quiet: its ghosts are forgotten
        assert await eventually(lambda: watch.sees(cat, None), timeout=8)
        assert watch.read() == {bid: (BORDER_X - 3, y)} and not bob.closed
        r1 = await start_region(nats_server.url, tmp_path, "r1")  # back, with cat: seen again
        assert await eventually(lambda: watch.sees(cat, (BORDER_X + 2, y)), timeout=10)
    finally:
        if bob is not None:
            await bob.close()
        await gw.stop()
        await r0.stop()
        await r1.stop()


async def test_an_entity_in_transit_stays_in_view_where_it_stepped(nats_server, tmp_path, monkeypatch):
    arrive = RegionNode._on_handoff

    async def slowly(self, msg):  # every handoff in transit for a while
        await asyncio.sleep(0.3)
        await arrive(self, msg)
    monkeypatch.setattr(RegionNode, "_on_handoff", slowly)
    every_tick = dict(state_every_ticks=1, max_state_every_ticks=1)
    r0 = await start_region(nats_server.url, tmp_path, "r0", **every_tick)
    r1 = await start_region(nats_server.url, tmp_path, "r1", **every_tick)
    gw = await start_gateway(nats_server.url)
    bob = None
    try:
        y, _, _ = walkable_near_border()[0]
        bob, bid = await joined(gw.url, "bob")
        await bob.move((BORDER_X - 3, y))
        watch = Watcher(bob)
        dan, _ = await r0.join("dan", BORDER_X - 2, y)
        assert await eventually(lambda: watch.sees(dan, (BORDER_X - 2, y)) and watch.sees(bid, (BORDER_X - 3, y)))
        for region, there, stepped, to in ((r0, r1, BORDER_X, BORDER_X + 2), (r1, r0, BORDER_X - 1, BORDER_X - 2)):
            assert await region.move(dan, to, y) is None
            # in transit, in neither world: bob sees dan where he stepped (told by
            # r0's own record going out, by r1's picture of the cell coming in)
            assert await eventually(lambda: dan in region.in_transit() and watch.sees(dan, (stepped, y)))
            assert dan not in r0.entity_ids() | r1.entity_ids()
            assert await eventually(lambda: dan in there.entity_ids() and watch.sees(dan, (to, y)))
        assert dan not in watch.left and watch.entered.count(dan) == 1
    finally:
        if bob is not None:
            await bob.close()
        await gw.stop()
        await r0.stop()
        await r1.stop()
