"""Moving a database's write-ahead log into its main file off the tick's
thread.

SQLite checkpoints by itself inside the COMMIT that takes its log past
1,000 pages (4 MB), on the committing thread: the tick. Measured on the
project's machine, 6,000 tick-sized commits (20 rows each): 26 took
20-32 ms with that automatic checkpoint (p99.9 27.7 ms), none over 2 ms
without it (p99.9 0.6 ms): a 20-30 ms tick every few seconds of a busy
world. So `Database` turns it off, and a `Checkpointer` thread checkpoints
every CHECKPOINT_EVERY_S on a connection of its own, PASSIVE (it copies
what no reader still needs and never waits for the writer; SQLite releases
the GIL while it works, so the tick runs on).

Owns: that thread, its connection, and stopping it (with the database's
close, or by itself once the database's connection is closed: a crash in
tests, `RegionNode.crash`).
"""
from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

# How often the log is copied into the database. A busy world writes well
# under 1 MB a second, so the log stays within a few MB between checkpoints
# (SQLite's own threshold is 4 MB), and an idle one costs a no-op a second.
CHECKPOINT_EVERY_S = 1.0


class Checkpointer:
    def __init__(self, path: str, main: sqlite3.Connection, every_s: float = CHECKPOINT_EVERY_S) -> None:
        self.path = path
        self.main = main
        self.every_s = every_s
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hamlet-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.warning("no checkpoints for %s: cannot open it", self.path, exc_info=True)
            return
        try:
            while not self._stop.wait(self.every_s):
                try:
                    self.main.total_changes  # raises once the database's own connection is closed
                except sqlite3.ProgrammingError:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.checkpoints += 1
                except sqlite3.Error:  # busy, or the file gone under a test: the next one, or the close, does it
                    log.debug("checkpoint of %s failed", self.path, exc_info=True)
        finally:
            conn.close()

    def stop(self, wait_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(wait_s)
