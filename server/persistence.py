"""SQLite persistence: the event log of applied inputs, snapshots, accounts
and the chat history, in one WAL-mode database.

One transaction per tick holds everything the tick changed (its inputs, its
chat lines, new or updated accounts, what the tick stores hold, such as NPC
memories, and the tick marker), so after a crash the database holds whole
ticks only. Nothing here knows about sockets.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from server.checkpointer import Checkpointer

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS events (
    tick INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (tick, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    tick INTEGER PRIMARY KEY, created REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chat (
    id INTEGER PRIMARY KEY, tick INTEGER NOT NULL, speaker INTEGER NOT NULL, name TEXT NOT NULL,
    text TEXT NOT NULL, to_id INTEGER, to_name TEXT, x INTEGER, y INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE, entity INTEGER NOT NULL UNIQUE,
    x INTEGER NOT NULL, y INTEGER NOT NULL, created REAL NOT NULL, last_seen REAL NOT NULL);
"""

# Snapshots older than the newest few are pruned; the event log is kept whole
# so that a run can be replayed from its start.
KEEP_SNAPSHOTS = 3


@dataclass(slots=True)
class Account:
    id: int
    name: str
    token_hash: str
    entity: int
    x: int
    y: int


class TickStore(Protocol):
    """More state the tick's transaction writes (NPC memories: see
    agents/memory_store.py), so it commits with the tick or not at all."""

    def has_changes(self) -> bool: ...

    def write(self, conn: sqlite3.Connection) -> int:
        """Write what changed, inside the caller's transaction; rows written."""
        ...


class Database:
    def __init__(self, path: str, synchronous: str = "NORMAL", replica: Any = None) -> None:
        """`replica`: records every write for a region's replicas (a
        server.cluster.db_replica.Recording: its connection class, attached
        before the schema is written); None, the default, records nothing."""
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per tick.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                    factory=replica.connection_class if replica is not None else sqlite3.Connection)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a crash of this process (kill -9);
        # FULL also survives power loss at the price of an fsync per tick.
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        # the log goes into the file off the tick's thread (checkpointer.py), not inside a tick's COMMIT
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self.checkpointer = Checkpointer(path, self.conn) if path != ":memory:" else None
        if replica is not None:
            replica.attach(self.conn)
        self.conn.executescript(SCHEMA)
        self.check_integrity()
        if self.get_meta("schema") is None:
            self.set_meta_now("schema", SCHEMA_VERSION)

    def check_integrity(self) -> None:
        row = self.conn.execute("PRAGMA quick_check").fetchone()
        if row[0] != "ok":
            raise RuntimeError(f"database {self.path} is damaged: {row[0]}")

    # -- meta ----------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else msgpack.unpackb(row[0], raw=False)

    def set_meta_now(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                          (key, msgpack.packb(value, use_bin_type=True)))

    # -- one tick's transaction ----------------------------------------------
    def commit_tick(self, tick: int, events: list[tuple[str, dict]], chats: list[dict],
                    accounts: list[Account], stores: Sequence[TickStore] = ()) -> None:
        """Write one tick atomically. Raises on I/O errors (the caller stops)."""
        c = self.conn
        now = time.time()
        c.execute("BEGIN")
        try:
            if events:
                c.executemany("INSERT INTO events VALUES (?, ?, ?, ?)",
                              [(tick, i, kind, msgpack.packb(data, use_bin_type=True))
                               for i, (kind, data) in enumerate(events)])
            if chats:
                c.executemany("INSERT INTO chat VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              [(ch["chat"], ch["tick"], ch["from"], ch["name"], ch["text"], ch.get("to"),
                                ch.get("to_name"), ch.get("x"), ch.get("y"), now) for ch in chats])
            for a in accounts:
                c.execute("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT(id) DO UPDATE SET x=excluded.x, y=excluded.y, "
                          "token_hash=excluded.token_hash, last_seen=excluded.last_seen",
                          (a.id, a.name, a.name.casefold(), a.token_hash, a.entity, a.x, a.y, now, now))
            for store in stores:
                store.write(c)
            c.execute("INSERT OR REPLACE INTO meta VALUES ('last_tick', ?)", (msgpack.packb(tick),))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def save_snapshot(self, tick: int, snap: dict[str, Any]) -> None:
        c = self.conn
        c.execute("BEGIN")
        c.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)",
                  (tick, time.time(), msgpack.packb(snap, use_bin_type=True)))
        c.execute("DELETE FROM snapshots WHERE tick NOT IN "
                  "(SELECT tick FROM snapshots ORDER BY tick DESC LIMIT ?)", (KEEP_SNAPSHOTS,))
        c.execute("COMMIT")

    # -- reading back --------------------------------------------------------
    def latest_snapshot(self) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT data FROM snapshots ORDER BY tick DESC LIMIT 1").fetchone()
        return None if row is None else msgpack.unpackb(row[0], raw=False, strict_map_key=False)

    def last_tick(self) -> int:
        value = self.get_meta("last_tick")
        return int(value) if value is not None else 0

    def events_after(self, tick: int) -> Iterator[tuple[int, str, dict]]:
        cur = self.conn.execute("SELECT tick, kind, data FROM events WHERE tick > ? ORDER BY tick, seq",
                                (tick,))
        for t, kind, data in cur:
            yield t, kind, msgpack.unpackb(data, raw=False)

    def chat_history(self, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        q = "SELECT id, tick, speaker, name, text, to_id, to_name, x, y FROM chat"
        args: tuple = ()
        if before_id is not None:
            q += " WHERE id < ?"
            args = (before_id,)
        rows = self.conn.execute(q + " ORDER BY id DESC LIMIT ?", args + (limit,)).fetchall()
        keys = ("chat", "tick", "from", "name", "text", "to", "to_name", "x", "y")
        return [dict(zip(keys, r)) for r in reversed(rows)]

    def account_by_token_hash(self, token_hash: str) -> Account | None:
        row = self.conn.execute("SELECT id, name, token_hash, entity, x, y FROM accounts WHERE token_hash=?",
                                (token_hash,)).fetchone()
        return Account(*row) if row else None

    def account_by_name(self, name: str) -> Account | None:
        row = self.conn.execute("SELECT id, name, token_hash, entity, x, y FROM accounts WHERE name_key=?",
                                (name.casefold(),)).fetchone()
        return Account(*row) if row else None

    def account_by_entity(self, entity: int) -> Account | None:
        row = self.conn.execute("SELECT id, name, token_hash, entity, x, y FROM accounts WHERE entity=?",
                                (entity,)).fetchone()
        return Account(*row) if row else None

    def next_account_id(self) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM accounts").fetchone()
        return int(row[0])

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()
