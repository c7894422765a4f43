"""A copy of a region's database kept from the region's JetStream subject
(`hamlet region --replicate`), and taking the region over from it.

Owns `Follower`: a standby's (or a restarting owner's) own database file,
read forward from where it stands (the local meta row `repl_seq`): parts
assembled into records, each complete record applied in one transaction
(its statements and the new `repl_seq`); records it holds skipped (its own
unacknowledged ones, in its outbox, compared byte for byte); a gap or a
malformed message refused with a clear error, nothing changed. A copy
whose outbox disagrees with the stream (it committed records no one
acknowledged, and a new owner wrote others with those numbers) has
diverged: its file is moved aside (`<db>.diverged-<unix time>`) and it is
rebuilt from the stream.

`take_over` (the lease is ours): catch up to the subject's last message,
write a fence there (every later publish of the old owner is refused: it
expects the sequence before the fence), publish what the outbox holds that
the stream lacks, and hand the subject's last sequence to the `Publisher`.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable

import msgpack

from server.cluster.db_publish import (DEFAULT_STREAM_MAX_BYTES, H_FENCE, H_N, H_OWNER, H_PART, MAX_UNACKED_BYTES,
                                       Fenced, Publisher, db_stream, db_subject, publish_fenced, publish_record)
from server.cluster.db_replica import (LOCAL_SCHEMA, SET_AT, Diverged, ReplicaError, apply_record, decode_record,
                                       holds_unreplicated, local_state)

log = logging.getLogger("hamlet.region")

# A record being assembled from its parts: a snapshot of a big world is a
# few MB; the bounds keep a corrupt header from making a standby hold
# memory without end. No owner publishes a bigger record (its queue's bound).
MAX_RECORD_BYTES = MAX_UNACKED_BYTES
MAX_PARTS = 4096


class Follower:
    def __init__(self, js, world: str, region: str, path: str, part_bytes: int) -> None:
        self.js = js
        self.world = world
        self.region = region
        self.path = path
        self.part_bytes = part_bytes
        self.stream = ""
        self.subject = db_subject(world, region)
        self.conn: sqlite3.Connection | None = None

    async def open(self, max_bytes: int = DEFAULT_STREAM_MAX_BYTES) -> Follower:
        self.stream = await db_stream(self.js, self.world, max_bytes)
        self._connect()
        return self

    def _connect(self) -> None:
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(LOCAL_SCHEMA)
        self.conn = conn
        self.n, (self.pos, self.stream_n), self.outbox = local_state(conn)
        self.unreplicated = holds_unreplicated(conn)
        self.partial: tuple[int, int, list[bytes]] | None = None  # (n, parts, the parts so far)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- following -------------------------------------------------------------------
    async def follow(self) -> int:
        """Apply every record on the subject past our position; how many."""
        applied = 0
        while (msg := await self._next()) is not None:
            try:
                applied += self._consume(msg)
            except Diverged as exc:
                self._rebuild(exc)
        return applied

    async def _next(self):
        from nats.js.errors import NotFoundError

        try:
            # from the stream's leader (not a direct get, which any replica may answer, behind it)
            return await self.js.get_msg(self.stream, seq=self.pos + 1, subject=self.subject, next=True)
        except NotFoundError:
            return None

    async def _last_seq(self) -> int:
        from nats.js.errors import NotFoundError

        try:
            return (await self.js.get_last_msg(self.stream, self.subject)).seq
        except NotFoundError:
            return 0

    def _consume(self, msg) -> int:
        """One message: 1 if it completed a record that was applied. A
        malformed one raises ReplicaError with nothing changed."""
        h = msg.headers or {}
        seq = msg.seq
        where = f"{self.subject} sequence {seq}"
        if not isinstance(seq, int) or seq <= self.pos:
            raise ReplicaError(f"{where}: out of order (after {self.pos})")
        if H_FENCE in h:  # a new owner from here on
            if self.partial is not None:
                log.warning("%s: record %d left unfinished by an owner that lost the region", where, self.partial[0])
            self.partial = None
            self.pos = seq
            return 0
        try:
            n = int(h[H_N])
            i, k = (int(x) for x in h[H_PART].split("/"))
        except (KeyError, ValueError):
            raise ReplicaError(f"{where}: not a database record (headers {H_N} and {H_PART} missing or bad)") from None
        if not (n >= 1 and 1 <= i <= k <= MAX_PARTS):
            raise ReplicaError(f"{where}: record {n} part {i}/{k} is out of bounds")
        data = msg.data or b""
        if i == 1:
            if self.partial is not None:
                raise ReplicaError(f"{where}: record {n} begins before record {self.partial[0]} ended")
            parts = [data]
        else:
            p = self.partial
            if p is None or p[0] != n or p[1] != k or len(p[2]) + 1 != i:
                raise ReplicaError(f"{where}: part {i}/{k} of record {n} out of order")
            parts = p[2] + [data]
        if sum(map(len, parts)) > MAX_RECORD_BYTES:
            raise ReplicaError(f"{where}: record {n} is over {MAX_RECORD_BYTES} bytes")
        if len(parts) < k:
            self.partial = (n, k, parts)
            self.pos = seq
            return 0
        whole = b"".join(parts)
        applied = self._take(decode_record(whole, n), whole, seq)
        self.partial = None
        self.pos = seq
        return applied

    def _take(self, record: dict, data: bytes, seq: int) -> int:
        n = record["n"]
        if self.unreplicated:
            raise Diverged("it holds a world written without --replicate, and the stream holds records")
        if n in self.outbox:  # ours, committed before a crash: acknowledged after all, or not ours
            if self.outbox[n] != data:
                raise Diverged(f"record {n} on the stream is not the one it committed (another owner wrote it)")
            with self.conn:  # the context manager commits (isolation_level None: explicit BEGIN)
                self.conn.execute("BEGIN")
                self.conn.execute("DELETE FROM repl_outbox WHERE n <= ?", (n,))
                self.conn.execute(SET_AT, (msgpack.packb([seq, n]),))
            self.outbox = {k: v for k, v in self.outbox.items() if k > n}
            self.stream_n = n
            return 0
        if n <= self.n:
            self.stream_n = max(self.stream_n, n)
            return 0  # held already
        if self.outbox:  # records of ours the stream never had, and it goes on without them
            raise Diverged(f"record {n} follows record {n - 1} on the stream, which lacks ours from "
                           f"{min(self.outbox)} on")
        if n != self.n + 1:
            raise ReplicaError(f"{self.subject} sequence {seq}: record {n} after record {self.n}: records "
                               f"{self.n + 1}..{n - 1} are missing (was the stream purged?)")
        apply_record(self.conn, record, (seq, n))
        self.n = self.stream_n = n
        return 1

    def _rebuild(self, why: Exception) -> None:
        self.close()
        aside = f"{self.path}.diverged-{int(time.time())}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)
        log.warning("region %s: database %s diverged from the stream (%s); moved to %s, rebuilding it from the "
                    "stream", self.region, self.path, why, aside)
        self._connect()

    # -- taking over -------------------------------------------------------------------
    async def take_over(self, owner: str, on_fail: Callable[[str], None]) -> Publisher:
        """The lease is ours: everything on the subject applied, a fence
        after it, our outbox's records the stream lacks published; the copy
        closed (the region opens it as a `Database`). Its publisher."""
        while True:
            await self.follow()
            last = await self._last_seq()
            if last > self.pos:  # more came meanwhile (an old owner still writing)
                continue
            if last < self.pos:
                raise ReplicaError(f"the stream {self.stream} ends at {last} on {self.subject}, before our copy "
                                   f"({self.pos}): it lost history (deleted, or purged)")
            if self.unreplicated:
                raise ReplicaError(f"database {self.path} holds a world written without --replicate; a region "
                                   f"with --replicate starts from a new database (move this one aside)")
            try:
                self.pos = await publish_fenced(self.js, self.stream, self.subject, b"",
                                                {H_FENCE: owner, H_OWNER: owner}, last)
                break
            except Fenced:
                continue
        if self.partial is not None:
            log.warning("%s: record %d left unfinished by the last owner", self.subject, self.partial[0])
            self.partial = None
        pending = sorted(self.outbox)
        if pending != list(range(self.stream_n + 1, self.n + 1)):
            raise ReplicaError(f"database {self.path} holds records up to {self.n}, the stream up to "
                               f"{self.stream_n}, but its outbox holds {pending[:5]}...: it cannot be told apart")
        for n in pending:  # committed, never acknowledged: the stream gets them now, before anything new
            self.pos = await publish_record(self.js, self.stream, self.subject, owner, n, self.outbox[n],
                                            self.part_bytes, self.pos)
        if pending:
            log.info("region %s: published %d records committed before a crash", self.region, len(pending))
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.execute("DELETE FROM repl_outbox")
                self.conn.execute(SET_AT, (msgpack.packb([self.pos, self.n]),))
        self.close()
        return Publisher(self.js, self.world, self.region, owner, self.pos, self.n, self.part_bytes, on_fail)
