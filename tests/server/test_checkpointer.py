"""The database's write-ahead log is copied into its file by a thread of
its own (server/checkpointer.py), never inside a tick's COMMIT: commits
past SQLite's 4 MB threshold leave the log alone; the thread's checkpoint
takes it all in; closing the database, or a crash closing its connection,
stops the thread."""
from __future__ import annotations

import os
import sqlite3
import time

from server.checkpointer import Checkpointer
from server.persistence import Database


def eventually(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_commits_never_checkpoint_and_the_thread_takes_the_log_in(tmp_path):
    path = str(tmp_path / "w.db")
    db = Database(path)
    db.checkpointer.stop()                      # held still: only commits run
    blob = os.urandom(2000)
    for t in range(1, 3001):                    # ~6 MB of log: SQLite would have checkpointed at 4 MB
        db.commit_tick(t, [("say", {"b": blob})], [], [])
    wal = os.path.getsize(path + "-wal")
    assert wal > 5_000_000, wal                 # no commit copied the log into the file
    cp = Checkpointer(path, db.conn, every_s=0.05)
    try:
        assert eventually(lambda: cp.checkpoints > 0)
    finally:
        cp.stop()
    busy, frames, done = db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and frames == done > 0     # every frame of the log is in the file
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert ro.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3000
    ro.close()
    db.close()
    assert not cp._thread.is_alive()


def test_the_thread_stops_with_the_database_or_its_connection(tmp_path):
    db = Database(str(tmp_path / "a.db"))
    thread = db.checkpointer._thread
    assert thread.is_alive()
    db.close()
    assert not thread.is_alive()
    crashed = Database(str(tmp_path / "b.db"))
    crashed.conn.close()                       # as RegionNode.crash leaves it: only the connection closed
    assert eventually(lambda: not crashed.checkpointer._thread.is_alive(), timeout=3.0)   # at its next turn
