"""A region's handoff log: every entity that left (`out`), arrived (`in`),
was confirmed by its new owner (`done`) or came back refused (`back`), in a
table of the region's database, written in the tick's transaction (it is a
`TickStore`). So after `kill -9` the region knows which entities are still
in transit (an `out` without its `done` or `back`: it sends them again,
and the receiver applies each hop once) and the highest hop it saw of each
entity, and its replay repeats the handoffs at the ticks they happened.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import msgpack

SCHEMA = """
CREATE TABLE IF NOT EXISTS handoffs (
    tick INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, handoff TEXT NOT NULL,
    entity INTEGER NOT NULL, peer TEXT NOT NULL, hop INTEGER NOT NULL, state BLOB NOT NULL,
    PRIMARY KEY (tick, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS handoffs_by_id ON handoffs (handoff);
"""

KINDS = ("out", "in", "done", "back")


class HandoffLog:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)
        self.tick = 0
        self._rows: list[tuple] = []  # this tick's, for the transaction
        self._seq = 0
        # handoff id -> (destination, state): left here, not yet confirmed
        self.outgoing: dict[str, tuple[str, dict[str, Any]]] = {}
        # entity -> highest hop applied here (one int per entity ever seen,
        # like the purses: stale deliveries of old hops are recognised)
        self.hops: dict[int, int] = {}
        self._load()

    def _load(self) -> None:
        settled: set[str] = set()
        outs: dict[str, tuple[str, dict[str, Any]]] = {}
        for tick, kind, hid, eid, peer, hop, state in self.rows_after(-1):
            self.hops[eid] = max(self.hops.get(eid, 0), hop)
            self.tick = max(self.tick, tick)
            if kind == "out":
                outs[hid] = (peer, state)
            elif kind in ("done", "back"):
                settled.add(hid)
        self.outgoing = {hid: v for hid, v in outs.items() if hid not in settled}
        # rows go on after the last one written (arrivals may be written
        # ahead of their tick, region_bus.py): its (tick, seq) stays free
        row = self.conn.execute("SELECT MAX(seq) FROM handoffs WHERE tick = ?", (self.tick,)).fetchone()
        self._seq = 0 if row[0] is None else row[0] + 1

    def begin_tick(self, tick: int) -> None:
        if self.tick != tick:
            self.tick, self._seq = tick, 0

    def record(self, kind: str, hid: str, eid: int, peer: str, hop: int, state: dict[str, Any]) -> None:
        assert kind in KINDS
        self._rows.append((self.tick, self._seq, kind, hid, eid, peer, hop,
                           msgpack.packb(state, use_bin_type=True)))
        self._seq += 1
        self.hops[eid] = max(self.hops.get(eid, 0), hop)
        if kind == "out":
            self.outgoing[hid] = (peer, state)
        elif kind in ("done", "back"):
            self.outgoing.pop(hid, None)

    def settle_now(self, hid: str, eid: int, peer: str, hop: int) -> None:
        """Record a confirmation (`done`) between ticks, in a transaction of
        its own: settled as soon as the destination answers, not a tick later."""
        pending = bool(self._rows)
        self.record("done", hid, eid, peer, hop, {})
        if pending:  # inside a tick after all: its transaction takes it
            return
        self.conn.execute("BEGIN")
        try:
            self.write(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    # -- TickStore -------------------------------------------------------------
    def has_changes(self) -> bool:
        return bool(self._rows)

    def write(self, conn: sqlite3.Connection) -> int:
        rows, self._rows = self._rows, []
        conn.executemany("INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    # -- reading back ------------------------------------------------------------
    def rows_after(self, tick: int) -> Iterator[tuple[int, str, str, int, str, int, dict[str, Any]]]:
        cur = self.conn.execute("SELECT tick, kind, handoff, entity, peer, hop, state FROM handoffs "
                                "WHERE tick > ? ORDER BY tick, seq", (tick,))
        for t, kind, hid, eid, peer, hop, state in cur:
            yield t, kind, hid, eid, peer, hop, msgpack.unpackb(state, raw=False)
