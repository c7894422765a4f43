"""What a client near a border sees through a gateway to two regions over a
real nats-server, checked against PROTOCOL.md by a strict mirror: the
entities across the border enter, move and leave its view like local
ones; one crossing the border moves on without leaving and entering
again; ghosts of a region gone quiet leave the view; and a player whose
avatar crosses the border with an offer open is told it was withdrawn."""
from __future__ import annotations

from client_demo.client import HamletClient
from tests.cluster.helpers import eventually, start_gateway, start_region, walkable_near_border

BORDER_X = 64  # r0 holds x < 64 (cells 0-3 of 16 tiles)


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
