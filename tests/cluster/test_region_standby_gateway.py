"""A real client through a gateway to regions with `replicate=True`: its
region is killed under it and a standby with a database of its own (kept
from the region's JetStream stream) takes over; the client resumes its
avatar there with every line it had been acknowledged, talks and crosses
the border."""
from __future__ import annotations

import asyncio

from tests.cluster.helpers import eventually, joined_beside_the_border, start_gateway
from tests.cluster.test_gateway import holder, resume
from tests.cluster.test_region_standby import node, started


async def test_a_client_resumes_on_the_standby_with_its_acknowledged_lines(nats_server, tmp_path):
    url = nats_server.url
    r0 = await started(url, tmp_path, "r0", "a/r0.db")
    r1 = await started(url, tmp_path, "r1", "r1.db")
    standby = node(url, tmp_path, "r0", "b/r0.db")
    waiting = asyncio.get_running_loop().create_task(standby.start(wait_s=20.0))
    gw = await start_gateway(url)
    ann = again = None
    try:
        ann, eid, (y, xl, xr) = await joined_beside_the_border(gw.url, r0)
        acked = [await ann.say(f"line {i}") for i in range(5)]   # each acked after its record was
        await r0.crash()                                         # kill -9
        assert await eventually(lambda: ann.closed, timeout=6)
        assert ann.close_code == 1001
        await asyncio.wait_for(waiting, 15)                      # the standby owns r0 now
        again, welcome = await resume(ann, gw.url)
        assert welcome["id"] == eid and welcome["resumed"] is True
        assert set(acked) <= {c["chat"] for c in standby.db.chat_history()}
        assert isinstance(await again.say("back again"), int)
        await again.move((xr, y))                                # and it still crosses the border
        assert await eventually(lambda: holder((standby, r1), eid) is r1 and r1.game.world.entities[eid].x == xr)
        assert await eventually(lambda: again.me is not None and again.me.x == xr)
    finally:
        for c in (ann, again):
            if c is not None:
                await c.close()
        if not waiting.done():
            waiting.cancel()
        await gw.stop()
        for n in (r0, standby, r1):
            if n.running:
                await n.stop()
