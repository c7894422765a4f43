"""A standby region on its own database, kept from the region's JetStream
stream (`RegionNode(replicate=True)`), over a real nats-server: it takes
over from a primary killed mid-run with every acknowledged chat line and
every entity once, and handoffs go on; nothing is told before JetStream
acknowledged it (an arrival between ticks is confirmed to its source once
its record is); an owner that lost its lease cannot write after the new
one did; a node that committed and crashed before the acknowledgement
publishes its record on restart; one whose database diverged moves it
aside and rebuilds it from the stream."""
from __future__ import annotations

import asyncio
import glob
import sqlite3

import pytest

from server.cluster.db_follow import Follower
from server.cluster.db_publish import H_FENCE, H_OWNER, db_subject, part_size, stream_name
from server.cluster.region import RegionNode
from tests.cluster.helpers import REGIONS, eventually, region_config, walkable_near_border


def node(url: str, tmp_path, region: str, db: str) -> RegionNode:
    config = region_config(tmp_path, region, db=str(tmp_path / db))
    return RegionNode("w", region, REGIONS, url, config, lease_ttl_s=1.0, replicate=True)


async def started(url: str, tmp_path, region: str, db: str) -> RegionNode:
    n = node(url, tmp_path, region, db)
    await n.start(wait_s=15.0)
    return n


def chats_in(path: str) -> dict[int, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT id, text FROM chat"))
    except sqlite3.OperationalError:  # no table yet
        return {}
    finally:
        conn.close()


class Gate:
    """A JetStream context whose publishes wait at a gate: JetStream not
    answering, as seen by the publisher."""

    def __init__(self, js) -> None:
        self.js = js
        self.open = asyncio.Event()

    def __getattr__(self, name):
        return getattr(self.js, name)

    async def publish(self, *args, **kwargs):
        await self.open.wait()
        return await self.js.publish(*args, **kwargs)


async def test_a_standby_on_its_own_database_takes_over_with_every_acknowledged_line(nats_server, tmp_path):
    url = nats_server.url
    primary = await started(url, tmp_path, "r0", "a/r0.db")
    standby = node(url, tmp_path, "r0", "b/r0.db")
    waiting = asyncio.get_running_loop().create_task(standby.start(wait_s=20.0))
    r1 = await started(url, tmp_path, "r1", "r1.db")
    try:
        rows = walkable_near_border()
        ids = [(await primary.join(f"p{i}", xl, y))[0] for i, (y, xl, xr) in enumerate(rows[:3])]
        lines = {}
        for k in range(12):
            lines[await primary.say(ids[k % 3], f"line {k}")] = f"line {k}"
        # the standby keeps its own copy while it waits
        assert await eventually(lambda: chats_in(str(tmp_path / "b/r0.db")) == lines, timeout=5)
        assert not waiting.done()
        await primary.crash()                                      # kill -9
        await asyncio.wait_for(waiting, 15)
        history = {c["chat"]: c["text"] for c in standby.db.chat_history(limit=1000)}
        assert history == lines                                    # every acknowledged line
        assert standby.game.world.next_chat_id > max(lines)       # its world goes on after them
        assert set(ids) <= standby.entity_ids() and not set(ids) & r1.entity_ids()
        assert sorted(e.name for e in standby.game.world.entities.values()
                      if e.id in ids) == ["p0", "p1", "p2"]        # each once
        y, xl, xr = rows[0]
        assert (await standby.move(ids[0], xr, y)) is None         # a handoff across the border still works
        assert await eventually(lambda: ids[0] in r1.entity_ids())
        assert await eventually(lambda: not standby.in_transit())
        assert ids[0] not in standby.entity_ids()
        later = await standby.say(ids[1], "after the takeover")
        copy = await Follower(standby.nc.jetstream(), "w", "r0", str(tmp_path / "c.db"),
                              part_size(standby.nc, None)).open()
        await copy.follow()                                        # the stream goes on from the new owner
        copy.close()
        assert chats_in(str(tmp_path / "c.db")) == {**lines, later: "after the takeover"}
    finally:
        if not waiting.done():
            waiting.cancel()
        if primary.running:
            await primary.crash()
        for n in (standby, r1):
            if n.running:
                await n.stop()


async def test_nothing_is_told_before_jetstream_acknowledged_it(nats_server, tmp_path):
    a = await started(nats_server.url, tmp_path, "r0", "a.db")
    try:
        eid, _ = await a.join("ann", *walkable_near_border()[0][1::-1])
        assert await eventually(lambda: a.publisher.pending() == 0)
        gate = Gate(a.publisher.js)                                # from the next tick on, with the say
        a.publisher.js = gate
        said = a.say(eid, "wait for it")
        await asyncio.sleep(0.3)                                   # 15 ticks of 20 ms
        assert not said.done()                                     # committed, not yet acknowledged
        from server.cluster.region_http import cluster_metrics     # and /metrics says what waits
        waiting = int(cluster_metrics(a).split('hamlet_region_replica_unacked_records{region="r0"} ')[1].split()[0])
        assert waiting >= 1 and a.publisher.acked_n >= 1
        gate.open.set()
        assert isinstance(await asyncio.wait_for(said, 2), int)
        a.publisher.js = gate = Gate(gate.js)                      # JetStream silent past the lease
        said = a.say(eid, "never acknowledged")
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(said, 5)
        assert a.failed and not a.running
    finally:
        await a.crash()


async def test_an_arrival_between_ticks_is_confirmed_once_its_record_is_acknowledged(nats_server, tmp_path):
    r0 = await started(nats_server.url, tmp_path, "r0", "r0.db")
    r1 = await started(nats_server.url, tmp_path, "r1", "r1.db")
    try:
        y, xl, xr = walkable_near_border()[0]
        eid, _ = await r0.join("ann", xl + 3, y)
        assert await eventually(lambda: r1.publisher.pending() == 0)
        gate = Gate(r1.publisher.js)
        r1.publisher.js = gate                                     # r1's JetStream is slow to answer
        assert (await r0.move(eid, xr, y)) is None
        assert await eventually(lambda: eid in r1.entity_ids())   # taken in and committed by r1...
        await asyncio.sleep(0.3)
        assert r0.in_transit() == {eid}                            # ...not confirmed: not yet kept
        gate.open.set()
        assert await eventually(lambda: not r0.in_transit())
        assert eid in r1.entity_ids() and eid not in r0.entity_ids()
    finally:
        await r0.stop()
        await r1.stop()


async def test_an_owner_that_lost_its_lease_cannot_write_after_the_new_one(nats_server, tmp_path):
    url = nats_server.url
    a = await started(url, tmp_path, "r0", "a.db")
    b = None
    try:
        eid, _ = await a.join("ann", *walkable_near_border()[0][1::-1])
        a._renew_task.cancel()                                     # a stalls: its lease runs out unnoticed
        b = await started(url, tmp_path, "r0", "b.db")             # and a standby takes the region over
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(a.say(eid, "from the old owner"), 5)
        assert a.failed and not a.running                          # its publish was refused: it stopped
        assert "from the old owner" not in chats_in(str(tmp_path / "b.db")).values()
        js = b.nc.jetstream()
        owners, fenced, seq = [], False, 0
        while True:
            try:
                msg = await js.get_msg(stream_name("w"), seq=seq + 1, subject=db_subject("w", "r0"), next=True)
            except Exception:
                break
            seq = msg.seq
            fenced = fenced or msg.headers.get(H_FENCE) == b.owner
            if fenced:
                owners.append(msg.headers[H_OWNER])
        assert fenced and set(owners) == {b.owner}                 # after b's fence, b's records only
        assert isinstance(await b.say(eid, "from the new owner"), int)
    finally:
        await a.crash()
        if b is not None:
            await b.stop()


async def test_a_record_committed_before_a_crash_is_published_on_restart(nats_server, tmp_path):
    url = nats_server.url
    a = await started(url, tmp_path, "r0", "a.db")
    eid, _ = await a.join("ann", *walkable_near_border()[0][1::-1])
    assert await eventually(lambda: a.publisher.pending() == 0)
    a.publisher.js = Gate(a.publisher.js)                          # JetStream does not answer...
    said = a.say(eid, "committed, not acknowledged")
    assert await eventually(lambda: "committed, not acknowledged" in chats_in(str(tmp_path / "a.db")).values())
    assert not said.done()
    await a.crash()                                                # ...and the region dies
    a = await started(url, tmp_path, "r0", "a.db")                 # restarted on its own database
    try:
        assert a.db.conn.execute("SELECT COUNT(*) FROM repl_outbox").fetchone()[0] <= 1
        copy = await Follower(a.nc.jetstream(), "w", "r0", str(tmp_path / "c.db"), part_size(a.nc, None)).open()
        await copy.follow()
        copy.close()
        assert "committed, not acknowledged" in chats_in(str(tmp_path / "c.db")).values()
    finally:
        await a.stop()


async def test_a_diverged_database_is_moved_aside_and_rebuilt(nats_server, tmp_path, caplog):
    url = nats_server.url
    a = await started(url, tmp_path, "r0", "a.db")
    eid, _ = await a.join("ann", *walkable_near_border()[0][1::-1])
    assert await eventually(lambda: a.publisher.pending() == 0)
    a.publisher.js = Gate(a.publisher.js)
    a.say(eid, "lost with a")
    assert await eventually(lambda: "lost with a" in chats_in(str(tmp_path / "a.db")).values())
    await a.crash()                                                # its record never reached the stream
    b = await started(url, tmp_path, "r0", "b.db")                 # a standby takes over from the stream
    kept = await b.say(eid, "said in b")                           # its record has a's number
    await b.stop()
    a = await started(url, tmp_path, "r0", "a.db")                 # a comes back on its old database
    try:
        aside = glob.glob(str(tmp_path / "a.db.diverged-*"))
        assert len(aside) == 1 and "lost with a" in chats_in(aside[0]).values()
        assert any("diverged" in r.getMessage() and aside[0] in r.getMessage() for r in caplog.records)
        history = {c["chat"]: c["text"] for c in a.db.chat_history()}
        assert history.get(kept) == "said in b" and "lost with a" not in history.values()
        assert eid in a.entity_ids()
    finally:
        await a.stop()


async def test_a_replicating_region_stops_quickly_when_nats_is_gone(nats_server, tmp_path):
    from server.cluster.region import NATS_GOODBYE_S
    a = node(nats_server.url, tmp_path, "r0", "a.db")
    a.lease_ttl_s = 5.0                                         # no wait for acknowledgements that cannot come
    await a.start(wait_s=5.0)
    nats_server.stop()
    t0 = asyncio.get_running_loop().time()
    await a.stop()                                              # its final snapshot stays in its outbox
    assert asyncio.get_running_loop().time() - t0 < 3 * NATS_GOODBYE_S


async def test_the_lease_is_kept_while_a_standby_catches_up(nats_server, tmp_path, monkeypatch):
    url = nats_server.url
    a = await started(url, tmp_path, "r0", "a.db")
    await a.join("ann", *walkable_near_border()[0][1::-1])
    await a.crash()
    take_over = Follower.take_over

    async def slowly(self, *args):                              # a long catch-up: twice the lease
        await asyncio.sleep(2.0)
        return await take_over(self, *args)
    monkeypatch.setattr(Follower, "take_over", slowly)
    b, c = node(url, tmp_path, "r0", "b.db"), node(url, tmp_path, "r0", "c.db")
    taking = asyncio.get_running_loop().create_task(b.start(wait_s=10.0))
    await asyncio.sleep(1.5)                                    # b holds the lease, catching up
    try:
        with pytest.raises(TimeoutError):
            await c.start(wait_s=2.5)                           # c never gets it meanwhile
        await taking
        assert b.running and not b.lost_lease
    finally:
        if not taking.done():
            taking.cancel()
        if b.running:
            await b.stop()
