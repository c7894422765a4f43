"""What a region's database writes, recorded for its replicas (`hamlet
region --replicate`), and applying such a record to a replica.

Owns: `RecordingConnection`, the sqlite3 connection `Database` uses with
replication on (`Recording` hands it over). It records every write
statement it executes with its parameters (`execute`; `executemany` with
its rows made a list first; `executescript`, one statement at a time);
SELECT, PRAGMA and EXPLAIN are not recorded. BEGIN..COMMIT makes one
record of the statements between; ROLLBACK drops them; a write outside a
transaction is a record of its own. Records are numbered n = 1, 2, 3...
with no gap: inside the record's own transaction the connection writes the
recorded meta row `repl_n` (so replicas carry it) and, unrecorded, the
record's bytes into the local table `repl_outbox`, kept until JetStream
acknowledged it (its row is deleted in a later transaction, with the local
meta row `repl_seq` = [stream sequence, n] of the last acknowledged record).

Also owns the record's format (msgpack `{"n": n, "s": [[sql, args, many]...]}`),
its checks, and `apply_record`, a replica's side.

Replayed statements must give the same rows on every copy, so nothing in
them may differ between two runs: every such value in Hamlet's writers
(time.time(), a token's hash, msgpack of a snapshot) is a bound parameter
computed once, by the owner, and recorded with the statement.
"""
from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

import msgpack

_base = sqlite3.Connection

# Local to each copy, never recorded: the outbox, and `meta` itself so that
# `repl_seq` has a table before the first record (the owner's schema, which
# creates the same table with IF NOT EXISTS, is recorded as usual).
LOCAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS repl_outbox (n INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""
N_KEY = "repl_n"  # recorded: the number of the last record a copy holds
AT_KEY = "repl_seq"  # local: [stream sequence, n] of the last record known to be on the stream
SET_N = "INSERT OR REPLACE INTO meta VALUES ('repl_n', ?)"
SET_AT = "INSERT OR REPLACE INTO meta VALUES ('repl_seq', ?)"
LOCAL_TABLES = ("repl_outbox",)
LOCAL_META_KEYS = (AT_KEY,)


class ReplicaError(RuntimeError):
    """A record or a stream that a copy cannot take: a gap, a malformed
    message, a stream that lost history. Nothing was changed."""


class Diverged(ReplicaError):
    """The stream holds a record with a number this copy holds too, but
    different: another owner wrote it since (this copy's is not acknowledged)."""


# Hamlet's writers run a few dozen distinct SQL texts, each many times a
# second: their kinds are remembered (bounded, should a caller build texts).
@functools.lru_cache(maxsize=1024)
def statement_kind(sql: str) -> str:
    """read | begin | commit | rollback | write (anything else changes the database)."""
    words = sql.split(None, 1)
    word = words[0].rstrip(";").upper() if words else ""
    if word in ("SELECT", "PRAGMA", "EXPLAIN", ""):
        return "read"
    if word == "BEGIN":
        return "begin"
    if word in ("COMMIT", "END"):
        return "commit"
    if word == "ROLLBACK" and "TO" not in sql.upper().split():
        return "rollback"
    if word in ("ROLLBACK", "SAVEPOINT", "RELEASE"):  # ROLLBACK TO a savepoint
        raise sqlite3.NotSupportedError(f"{word} is not recorded for replicas: use BEGIN..COMMIT")
    return "write"


def split_script(script: str) -> list[str]:
    """An executescript() script as its statements."""
    out: list[str] = []
    start = 0
    for i, ch in enumerate(script):
        if ch == ";" and sqlite3.complete_statement(script[start:i + 1]):
            stmt = script[start:i + 1].strip()
            if stmt.strip("; \t\r\n"):
                out.append(stmt)
            start = i + 1
    if script[start:].strip("; \t\r\n"):
        out.append(script[start:].strip())
    return out


def _args(parameters: Any) -> Any:
    return dict(parameters) if isinstance(parameters, dict) else list(parameters)


def read_meta(conn: sqlite3.Connection, key: str) -> Any:
    row = _base.execute(conn, "SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else msgpack.unpackb(row[0], raw=False)


class RecordingConnection(sqlite3.Connection):
    """sqlite3's connection; records its writes once `start_recording` ran."""

    _sink: Callable[[int, bytes], None] | None = None

    def start_recording(self, sink: Callable[[int, bytes], None]) -> None:
        """Record from now on; `sink(n, data)` gets each record once committed."""
        _base.executescript(self, LOCAL_SCHEMA)
        self.n = int(read_meta(self, N_KEY) or 0)
        at = read_meta(self, AT_KEY)
        self._noted = int(at[1]) if at else 0  # outbox rows up to this n are deleted
        self._acked: tuple[int, int] = (self._noted, int(at[0]) if at else 0)  # (n, stream sequence)
        self._statements: list[list[Any]] | None = None  # inside BEGIN..COMMIT
        self._sink = sink

    def acked(self, n: int, seq: int) -> None:
        """JetStream acknowledged records up to n (the last at `seq`): their
        outbox rows go with the next record's transaction."""
        self._acked = (n, seq)

    # -- sqlite3.Connection -------------------------------------------------------
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self._sink is None:
            return _base.execute(self, sql, parameters)
        kind = statement_kind(sql)
        if kind == "read":
            return _base.execute(self, sql, parameters)
        if kind == "begin":
            cur = _base.execute(self, sql, parameters)
            self._statements = []
            return cur
        if kind == "commit":
            return self._commit(sql)
        if kind == "rollback":
            self._statements = None
            return _base.execute(self, sql, parameters)
        if self._statements is None:
            return self._alone(lambda: _base.execute(self, sql, parameters), [[sql, _args(parameters), 0]])
        cur = _base.execute(self, sql, parameters)
        self._statements.append([sql, _args(parameters), 0])
        return cur

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        if self._sink is None:
            return _base.executemany(self, sql, seq_of_parameters)
        if statement_kind(sql) != "write":
            raise sqlite3.NotSupportedError(f"executemany of {sql.split(None, 1)[0]} is not recorded")
        rows = [_args(p) for p in seq_of_parameters]  # an iterator is read once: kept for the record
        if self._statements is None:
            return self._alone(lambda: _base.executemany(self, sql, rows), [[sql, rows, 1]])
        cur = _base.executemany(self, sql, rows)
        self._statements.append([sql, rows, 1])
        return cur

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        """One record of the script's writes, if it changed anything (a
        schema's CREATE ... IF NOT EXISTS run again records nothing)."""
        if self._sink is None:
            return _base.executescript(self, sql_script)
        if self._statements is not None or self.in_transaction:
            raise sqlite3.NotSupportedError("executescript inside a transaction (it would commit it)")
        _base.execute(self, "BEGIN")
        self._statements = []
        try:
            before = (_base.execute(self, "PRAGMA schema_version").fetchone()[0], self.total_changes)
            for stmt in split_script(sql_script):
                kind = statement_kind(stmt)
                if kind != "read" and kind != "write":
                    raise sqlite3.NotSupportedError(f"{stmt.split()[0]} in a recorded script")
                _base.execute(self, stmt)
                if kind == "write":
                    self._statements.append([stmt, [], 0])
            if (_base.execute(self, "PRAGMA schema_version").fetchone()[0], self.total_changes) == before:
                self._statements = []  # nothing changed: no record
            self._commit("COMMIT")
        except BaseException:
            self._statements = None
            if self.in_transaction:
                _base.execute(self, "ROLLBACK")
            raise
        return self.cursor()

    # -- records ---------------------------------------------------------------------
    def _alone(self, run: Callable[[], sqlite3.Cursor], statements: list[list[Any]]) -> sqlite3.Cursor:
        """A write outside a transaction: in one of its own, a record of its own."""
        _base.execute(self, "BEGIN")
        self._statements = []
        try:
            cur = run()
            self._statements = statements
            self._commit("COMMIT")
            return cur
        except BaseException:
            self._statements = None
            if self.in_transaction:
                _base.execute(self, "ROLLBACK")
            raise

    def _commit(self, sql: str) -> sqlite3.Cursor:
        statements, self._statements = self._statements, None
        if not statements:
            return _base.execute(self, sql)
        n = self.n + 1
        packed_n = msgpack.packb(n)
        _base.execute(self, SET_N, (packed_n,))
        statements.append([SET_N, [packed_n], 0])
        data = msgpack.packb({"n": n, "s": statements}, use_bin_type=True)
        _base.execute(self, "INSERT INTO repl_outbox VALUES (?, ?)", (n, data))
        acked_n, acked_seq = self._acked
        if acked_n > self._noted:  # acknowledged since the last record: not needed any more
            _base.execute(self, "DELETE FROM repl_outbox WHERE n <= ?", (acked_n,))
            _base.execute(self, SET_AT, (msgpack.packb([acked_seq, acked_n]),))
        cur = _base.execute(self, sql)  # raises: nothing was committed, the caller rolls back
        self.n = n
        self._noted = max(self._noted, acked_n)
        self._sink(n, data)
        return cur


class Recording:
    """What `Database(replica=...)` takes: the connection class, and
    `attach`, run before the database's schema (which is recorded too)."""

    connection_class = RecordingConnection

    def __init__(self, sink: Callable[[int, bytes], None]) -> None:
        self.sink = sink
        self.conn: RecordingConnection | None = None

    def attach(self, conn: sqlite3.Connection) -> None:
        assert isinstance(conn, RecordingConnection)
        conn.start_recording(self.sink)
        self.conn = conn


# -- a replica's side -------------------------------------------------------------------
def decode_record(data: bytes, n: int) -> dict[str, Any]:
    """A record's bytes, checked: numbered `n` (as its message said), its
    statements writes (no transaction control) with list or dict arguments."""
    try:
        record = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several kinds on garbage
        raise ReplicaError(f"record {n} is not msgpack: {type(exc).__name__}: {exc}") from None
    if not isinstance(record, dict) or record.get("n") != n or not isinstance(record.get("s"), list):
        raise ReplicaError(f"record {n} is malformed: not a record numbered {n}")
    for i, st in enumerate(record["s"]):
        ok = isinstance(st, list) and len(st) == 3 and isinstance(st[0], str) and st[2] in (0, 1)
        if ok and st[2]:
            ok = isinstance(st[1], list) and all(isinstance(a, (list, dict)) for a in st[1])
        elif ok:
            ok = isinstance(st[1], (list, dict))
        try:
            ok = ok and statement_kind(st[0]) == "write"
        except sqlite3.NotSupportedError:
            ok = False
        if not ok:
            raise ReplicaError(f"record {n} is malformed: statement {i} is not a write with its arguments")
    return record


def apply_record(conn: sqlite3.Connection, record: dict[str, Any], at: tuple[int, int],
                 drop_outbox: int | None = None) -> None:
    """A checked record's statements in one transaction, with the local
    `repl_seq` = at ([stream sequence, n]); all or nothing."""
    n = record["n"]
    conn.execute("BEGIN")
    try:
        for sql, args, many in record["s"]:
            (conn.executemany if many else conn.execute)(sql, args)
        if drop_outbox is not None:
            conn.execute("DELETE FROM repl_outbox WHERE n <= ?", (drop_outbox,))
        conn.execute(SET_AT, (msgpack.packb(list(at)),))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise ReplicaError(f"record {n} does not apply: {type(exc).__name__}: {exc}") from None


def local_state(conn: sqlite3.Connection) -> tuple[int, tuple[int, int], dict[int, bytes]]:
    """(repl_n, (stream sequence, n) of the last record known on the
    stream, the outbox: n -> bytes) of a copy."""
    n = int(read_meta(conn, N_KEY) or 0)
    at = read_meta(conn, AT_KEY)
    outbox = dict(_base.execute(conn, "SELECT n, data FROM repl_outbox ORDER BY n").fetchall())
    return n, ((int(at[0]), int(at[1])) if at else (0, 0)), outbox


def holds_unreplicated(conn: sqlite3.Connection) -> bool:
    """A database written without replication: tables of its own, no `repl_n`."""
    tables = {r[0] for r in _base.execute(conn, "SELECT name FROM sqlite_master WHERE type='table'")}
    return read_meta(conn, N_KEY) is None and bool(tables - {"meta", *LOCAL_TABLES})
