"""NPC memories in the world database, so they survive a restart.

`MemoryStore` is one of the game's tick stores: the memories the minds made
since the last commit are written inside the tick's one transaction
(`Database.commit_tick`), so they are kept with the tick or lost with it.
It takes a plain sqlite3 connection and knows nothing of the server.
"""
from __future__ import annotations

import sqlite3

from agents.memory import Memory
from agents.minds import MindsSystem

SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    npc TEXT NOT NULL, id INTEGER NOT NULL, minute REAL NOT NULL, kind TEXT NOT NULL,
    text TEXT NOT NULL, importance REAL NOT NULL, last_access REAL NOT NULL,
    PRIMARY KEY (npc, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memory_state (npc TEXT PRIMARY KEY, since_reflection REAL NOT NULL);
"""


def load_memories(conn: sqlite3.Connection, minds: MindsSystem) -> int:
    """Give each mind its stored memories; returns how many were loaded."""
    conn.executescript(SCHEMA)
    n = 0
    for mind in minds.minds.values():
        rows = conn.execute("SELECT id, minute, kind, text, importance, last_access FROM memories "
                            "WHERE npc=? ORDER BY id", (mind.name,)).fetchall()
        for row in rows:
            mind.memory.load(Memory(*row))
            n += 1
        state = conn.execute("SELECT since_reflection FROM memory_state WHERE npc=?", (mind.name,)).fetchone()
        if state:
            mind.memory.importance_since_reflection = state[0]
    return n


class MemoryStore:
    """The minds' new memories, written in the tick's transaction."""

    def __init__(self, minds: MindsSystem) -> None:
        self.minds = minds

    def load(self, conn: sqlite3.Connection) -> int:
        return load_memories(conn, self.minds)

    def has_changes(self) -> bool:
        return any(mind.memory.unsaved for mind in self.minds.minds.values())

    def write(self, conn: sqlite3.Connection) -> int:
        """Inside the caller's transaction (no BEGIN or COMMIT here)."""
        rows = self.minds.unsaved_memories()
        if not rows:
            return 0
        conn.executemany("INSERT OR REPLACE INTO memories VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(npc, m.id, m.minute, m.kind, m.text, m.importance, m.last_access) for npc, m in rows])
        conn.executemany("INSERT OR REPLACE INTO memory_state VALUES (?, ?)",
                         [(mind.name, mind.memory.importance_since_reflection)
                          for mind in self.minds.minds.values()])
        return len(rows)
