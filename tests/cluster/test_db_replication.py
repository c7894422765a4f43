"""A region's database replicated through a real JetStream stream
(server/cluster/db_replica.py, db_publish.py, db_follow.py), without a
region: what `Database` writes (commit_tick with its stores, save_snapshot,
set_meta_now, schemas) reaches a follower's own database, table for table;
a rolled-back transaction leaves nothing; a record over the payload limit
goes in parts and comes back whole; a malformed message or a gap is
refused with a clear error and changes nothing; a full stream refuses the
next record loudly and drops nothing; a database written without
replication is refused; JetStream unavailable a moment is waited out."""
from __future__ import annotations

import asyncio
import os
import sqlite3

import msgpack
import pytest

from server.cluster.db_follow import Follower
from server.cluster.db_publish import H_N, H_PART, Publisher, db_stream, db_subject, part_size, stream_name
from server.cluster.db_replica import LOCAL_META_KEYS, LOCAL_TABLES, Recording, ReplicaError
from server.cluster.handoffs import HandoffLog
from server.persistence import Account, Database


def dump(path: str) -> dict[str, list]:
    """Every table's rows and the schema, less what is local to a copy."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, list] = {"schema": sorted(r for r in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT IN (?)", LOCAL_TABLES))}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            if table in LOCAL_TABLES:
                continue
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            if table == "meta":
                rows = [r for r in rows if r[0] not in LOCAL_META_KEYS]
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        conn.close()


async def recorded_db(js, nc, path: str, part_bytes: int | None = None, region: str = "r0"):
    """A Database recording its writes for a publisher on the world `w`."""
    await db_stream(js, "w")
    failures: list[str] = []
    pub = Publisher(js, "w", region, "owner-a", 0, 0, part_size(nc, part_bytes), failures.append)
    db = Database(path, replica=Recording(pub.add))
    pub.on_acked = db.conn.acked
    task = asyncio.get_running_loop().create_task(pub.run())
    return db, pub, task, failures


async def follower(js, nc, path: str, region: str = "r0") -> Follower:
    return await Follower(js, "w", region, path, part_size(nc, None)).open()


class FailingStore:
    def has_changes(self) -> bool:
        return True

    def write(self, conn) -> int:
        conn.execute("INSERT INTO chat VALUES (99, 1, 1, 'x', 'never', NULL, NULL, 0, 0, 0)")
        raise OSError("disk full")


async def test_every_write_reaches_the_follower_and_a_rollback_nothing(nats_connect, tmp_path):
    nc = await nats_connect()
    js = nc.jetstream()
    a = str(tmp_path / "a" / "r0.db")
    db, pub, task, failures = await recorded_db(js, nc, a)
    hlog = HandoffLog(db.conn)  # its schema: a script, recorded
    db.set_meta_now("seed", 7)
    db.save_snapshot(0, {"map": "village", "tick": 0, "blob": os.urandom(2000)})
    hlog.begin_tick(1)
    hlog.record("out", "r0:5:1", 5, "r1", 1, {"id": 5, "x": 3})
    db.commit_tick(1, [("join", {"id": 5, "name": "ann"}), ("say", {"id": 5, "text": "hi"})],
                   [{"chat": 1, "tick": 1, "from": 5, "name": "ann", "text": "hi", "x": 3, "y": 4}],
                   [Account(1, "Ann", "hash", 5, 3, 4)], [hlog])
    hlog.settle_now("r0:5:1", 5, "r1", 1)  # between ticks: a transaction of its own
    for tick in range(2, 6):
        db.save_snapshot(tick, {"map": "village", "tick": tick})  # prunes the old ones (a DELETE)
    n = db.conn.n
    db.conn.execute("BEGIN")
    db.conn.execute("INSERT INTO chat VALUES (50, 1, 1, 'x', 'rolled back', NULL, NULL, 0, 0, 0)")
    db.conn.execute("ROLLBACK")
    with pytest.raises(OSError):
        db.commit_tick(6, [], [], [], [FailingStore()])
    assert db.conn.n == n                                  # neither made a record
    assert await pub.synced(n, 5) and not failures
    assert db.conn.execute("SELECT COUNT(*) FROM repl_outbox").fetchone()[0] >= 1   # acked, dropped later
    db.set_meta_now("later", 1)                            # the next record takes the acked ones out
    assert await pub.synced(db.conn.n, 5)
    assert db.conn.execute("SELECT n FROM repl_outbox").fetchall() == [(db.conn.n,)]

    f = await follower(js, nc, str(tmp_path / "b" / "r0.db"))
    assert await f.follow() == db.conn.n
    f.close()
    task.cancel()
    db.close()
    copy = dump(str(tmp_path / "b" / "r0.db"))
    assert copy == dump(a)
    assert not any("rolled back" in repr(r) or "never" in repr(r) for r in copy["chat"])
    assert [r[0] for r in copy["snapshots"]] == [3, 4, 5]
    assert len(copy["handoffs"]) == 2 and copy["accounts"][0][1] == "Ann"


@pytest.mark.parametrize("part_bytes, size", [(512, 20_000), (None, 1_500_000)])
async def test_a_record_over_the_payload_limit_goes_in_parts(nats_connect, tmp_path, part_bytes, size):
    nc = await nats_connect()
    js = nc.jetstream()
    a = str(tmp_path / "a.db")
    db, pub, task, failures = await recorded_db(js, nc, a, part_bytes)
    db.save_snapshot(1, {"map": "village", "blob": os.urandom(size)})  # over 1 MB: NATS's max_payload
    db.set_meta_now("after", 1)
    assert await pub.synced(db.conn.n, 10), failures
    expected_parts = -(-size // part_size(nc, part_bytes))
    info = await js.stream_info(stream_name("w"))
    assert info.state.messages >= db.conn.n - 1 + expected_parts  # the snapshot's record in parts
    f = await follower(js, nc, str(tmp_path / "b.db"))
    await f.follow()
    f.close()
    task.cancel()
    db.close()
    assert dump(str(tmp_path / "b.db")) == dump(a)


async def test_a_malformed_message_or_a_gap_is_refused_and_changes_nothing(nats_connect, tmp_path):
    nc = await nats_connect()
    js = nc.jetstream()
    db, pub, task, _ = await recorded_db(js, nc, str(tmp_path / "a.db"))
    db.set_meta_now("seed", 1)
    assert await pub.synced(db.conn.n, 5)
    task.cancel()
    b = str(tmp_path / "b.db")
    f = await follower(js, nc, b)
    await f.follow()
    before, pos = dump(b), f.pos
    subject = db_subject("w", "r0")
    bad = [
        (b"junk", None, "not a database record"),
        (b"\xc1junk", {H_N: str(db.conn.n + 1), H_PART: "1/1"}, "not msgpack"),
        (msgpack.packb({"n": db.conn.n + 1, "s": [["COMMIT", [], 0]]}), {H_N: str(db.conn.n + 1), H_PART: "1/1"},
         "malformed"),
        (msgpack.packb({"n": db.conn.n + 5, "s": []}), {H_N: str(db.conn.n + 5), H_PART: "1/1"}, "are missing"),
        (b"x", {H_N: str(db.conn.n + 1), H_PART: "2/3"}, "out of order"),
    ]
    for data, headers, why in bad:
        await js.purge_stream(stream_name("w"), subject=subject)  # the next message is the bad one alone
        await js.publish(subject, data, headers=headers)
        with pytest.raises(ReplicaError, match=why):
            await f.follow()
        assert f.pos == pos and dump(b) == before
    f.close()
    db.close()


async def test_a_second_region_has_a_subject_of_its_own(nats_connect, tmp_path):
    nc = await nats_connect()
    js = nc.jetstream()
    d0, p0, t0, _ = await recorded_db(js, nc, str(tmp_path / "r0.db"), region="r0")
    d1, p1, t1, _ = await recorded_db(js, nc, str(tmp_path / "r1.db"), region="r1")
    d0.set_meta_now("who", "r0")
    d1.set_meta_now("who", "r1")
    assert await p0.synced(d0.conn.n, 5) and await p1.synced(d1.conn.n, 5)
    f = await follower(js, nc, str(tmp_path / "copy1.db"), region="r1")
    await f.follow()
    f.close()
    assert msgpack.unpackb(dict(dump(str(tmp_path / "copy1.db"))["meta"])["who"]) == "r1"
    for t in (t0, t1):
        t.cancel()
    d0.close()
    d1.close()


async def test_a_full_stream_refuses_the_next_record_loudly(nats_connect, tmp_path):
    nc = await nats_connect()
    js = nc.jetstream()
    await db_stream(js, "w", max_bytes=64 * 1024)           # discard=new: never drops what it holds
    db, pub, task, failures = await recorded_db(js, nc, str(tmp_path / "a.db"))
    db.set_meta_now("small", 1)
    assert await pub.synced(db.conn.n, 5)
    first = (await js.stream_info(stream_name("w"))).state.first_seq
    db.save_snapshot(1, {"blob": os.urandom(100_000)})      # past the stream's bound
    assert not await pub.synced(db.conn.n, 5)
    await asyncio.sleep(0)                                  # the failure is reported on the loop
    assert failures and "maximum bytes" in failures[0]
    assert (await js.stream_info(stream_name("w"))).state.first_seq == first   # nothing dropped
    task.cancel()
    db.close()


async def test_a_database_written_without_replication_is_refused_with_a_clear_error(nats_connect, tmp_path):
    nc = await nats_connect()
    js = nc.jetstream()
    old = str(tmp_path / "old.db")
    db = Database(old)                                      # as `hamlet region` without --replicate
    db.set_meta_now("seed", 1)
    db.close()
    before = dump(old)
    f = await follower(js, nc, old)
    with pytest.raises(ReplicaError, match="written without --replicate"):
        await f.take_over("owner-b", lambda why: None)
    f.close()
    assert dump(old) == before


class Unavailable:
    """JetStream refusing the first publishes (no stream leader for a
    moment), then taking them."""

    def __init__(self, js, refusals: int) -> None:
        self.js = js
        self.refusals = refusals

    def __getattr__(self, name):
        return getattr(self.js, name)

    async def publish(self, *args, **kwargs):
        from nats.js.errors import NoStreamResponseError

        if self.refusals > 0:
            self.refusals -= 1
            raise NoStreamResponseError
        return await self.js.publish(*args, **kwargs)


async def test_jetstream_unavailable_a_moment_is_waited_out(nats_connect, tmp_path):
    nc = await nats_connect()
    js = nc.jetstream()
    db, pub, task, failures = await recorded_db(js, nc, str(tmp_path / "a.db"))
    assert await pub.synced(db.conn.n, 5)
    pub.js = flaky = Unavailable(js, 3)
    db.set_meta_now("seed", 1)
    assert await pub.synced(db.conn.n, 5) and not failures
    assert flaky.refusals == 0
    task.cancel()
    db.close()
