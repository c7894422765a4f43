"""Property test: random walks across the border of two regions, speech,
and a region killed and restarted at a random moment (handoffs in flight
race the crash). Whatever the order: no entity is ever live in two regions,
none is lost (live somewhere or in its source's transit log, and once all
settles, live in exactly one), and every acknowledged chat line is in the
database of the region that acknowledged it.

Bounded: a handful of examples of at most 12 steps, one nats-server for all.
"""
from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings, strategies as st

from server.cluster import wire
from tests.cluster.helpers import eventually, start_region, walkable_near_border

ROWS = walkable_near_border()[:6]
_worlds = itertools.count()

step = st.one_of(
    st.tuples(st.just("walk"), st.integers(0, 3), st.booleans(), st.integers(0, len(ROWS) - 1)),
    st.tuples(st.just("say"), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.integers(1, 6)),
    st.tuples(st.just("crash"), st.sampled_from(["r0", "r1"])),
    st.tuples(st.just("redeliver"), st.integers(0, 20)),
)


async def redeliver(nodes, k: int) -> None:
    """Send an old handoff again, as a lost reply makes its source do."""
    outs = [(r, row) for r, n in sorted(nodes.items()) if n.running
            for row in n.hlog.rows_after(-1) if row[1] == "out"]
    if not outs:
        return
    r, (_, _, hid, _, peer, _, state) = outs[k % len(outs)]
    if nodes[peer].running:
        reply = await nodes[r].nc.request(wire.handoff_subject(nodes[r].world_name, peer),
                                          wire.pack({"t": "handoff", "id": hid, "from": r, "state": state}), timeout=5)
        assert wire.unpack(reply.data, ("ok", "refused", "busy"))["t"] == "ok"


async def scenario(url: str, tmp, steps: list[tuple]) -> None:
    world = f"p{next(_worlds)}"
    nodes = {r: await start_region(url, tmp, r, world=world) for r in ("r0", "r1")}
    crashed = False
    try:
        ids = []
        for i in range(4):
            y, xl, xr = ROWS[i]
            eid, _ = await nodes["r0" if i % 2 else "r1"].join(f"e{i}", xl if i % 2 else xr, y)
            ids.append(eid)
        acked: list[tuple[str, int, str]] = []  # (region that acked, chat id, text)

        def owner(eid: int) -> str | None:
            live = [r for r, n in nodes.items() if n.running and eid in n.entity_ids()]
            assert len(live) <= 1, f"entity {eid} live in {live}"
            return live[0] if live else None

        def check_none_lost() -> None:
            for eid in ids:
                if owner(eid) is None:
                    assert any(eid in n.in_transit() for n in nodes.values() if n.running) or \
                        any(not n.running for n in nodes.values()), f"entity {eid} is nowhere"

        for n, s in enumerate(steps):
            if s[0] == "walk":
                eid = ids[s[1]]
                y, xl, xr = ROWS[s[3]]
                r = owner(eid)
                if r is not None:
                    await nodes[r].move(eid, xr if s[2] else xl, y)
            elif s[0] == "say":
                eid = ids[s[1]]
                r = owner(eid)
                if r is not None:
                    text = f"line {n} of {eid}"
                    chat = await nodes[r].say(eid, text)
                    if isinstance(chat, int):
                        acked.append((r, chat, text))
            elif s[0] == "wait":
                await asyncio.sleep(s[1] * 0.02)
            elif s[0] == "redeliver":
                await redeliver(nodes, s[1])
            elif s[0] == "crash" and not crashed:
                crashed = True
                await nodes[s[1]].crash()
                await asyncio.sleep(0.05)                     # the other keeps running meanwhile
                check_none_lost()
                nodes[s[1]] = await start_region(url, tmp, s[1], world=world)
            check_none_lost()
        # everything settles: no transit left, each entity live exactly once
        assert await eventually(lambda: not any(n.in_transit() for n in nodes.values()), timeout=10)
        for eid in ids:
            assert owner(eid) is not None, f"entity {eid} lost"
        for r, chat, text in acked:
            assert any(c["chat"] == chat and c["text"] == text for c in nodes[r].db.chat_history(limit=1000))
    finally:
        for node in nodes.values():
            if node.running:
                await node.stop()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=3, max_size=12))
def test_every_entity_exactly_once_and_acked_lines_kept(nats_server, tmp_path_factory, steps):
    tmp = tmp_path_factory.mktemp("regions")
    asyncio.run(asyncio.wait_for(scenario(nats_server.url, tmp, steps), 30))
