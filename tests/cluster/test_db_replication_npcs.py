"""Two regions with NPCs (`--npcs`, routines, no model) and `replicate=True`
over a real nats-server: an NPC walks across the border with its mind (its
memory rows deleted in one region's tick and written in the other's); a
copy of each region's database built from the stream alone equals the
region's own, table for table."""
from __future__ import annotations

from server.cluster.db_follow import Follower
from server.cluster.db_publish import part_size
from server.cluster.region import RegionNode
from tests.cluster.helpers import REGIONS, eventually, region_config
from tests.cluster.test_db_replication import dump

NPC = dict(npcs=True, model="none", ticks_per_tile=3)


async def test_npc_regions_replicate_table_for_table(nats_server, tmp_path):
    nodes = {}
    for r in ("r0", "r1"):
        nodes[r] = RegionNode("w", r, REGIONS, nats_server.url, region_config(tmp_path, r, **NPC), lease_ttl_s=1.0,
                              replicate=True)
        await nodes[r].start(wait_s=10.0)
    try:
        r0, r1 = nodes["r0"], nodes["r1"]
        assert await eventually(lambda: "oda" in r0.npcs.minds.minds, timeout=5, step=0.005)
        eid = r0.npcs.minds.minds["oda"].entity
        r0.npcs.minds.minds["oda"].memory.add(r0.game.world.game_minutes, "observation", "A key under the bridge.", 9)
        # at 08:00 Oda leaves house 5 (r0) for the fields (r1): handed off with its memories
        assert await eventually(lambda: eid in r1.entity_ids() and not r0.in_transit(), timeout=15)
        assert r1.db.conn.execute("SELECT COUNT(*) FROM memories WHERE npc='Oda'").fetchone()[0] > 0
    finally:
        for n in nodes.values():
            await n.stop()                                       # its final snapshot acknowledged
    import nats
    nc = await nats.connect(nats_server.url)
    try:
        for r in nodes:
            copy = str(tmp_path / f"copy-{r}.db")
            f = await Follower(nc.jetstream(), "w", r, copy, part_size(nc, None)).open()
            await f.follow()
            f.close()
            mine = dump(str(tmp_path / f"{r}.db"))
            assert dump(copy) == mine
            assert any(row[0] == "Oda" for row in mine["memories"]) == (r == "r1")
    finally:
        await nc.close()
