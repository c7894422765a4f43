"""NPC memories persist with the world, in the tick's one transaction, and
survive a restart (FAKE model: the model plays no part in what is stored)."""
from __future__ import annotations

import pytest

from agents.memory_store import MemoryStore
from agents.minds import MindsSystem
from agents.personas import load_personas
from server.persistence import Database
from tests.agents.fake_llm import FakeLLM


def test_memories_commit_with_the_tick_and_survive_a_restart(tmp_path):
    personas = load_personas()[:2]
    db = Database(str(tmp_path / "w.db"))
    minds = MindsSystem(personas, FakeLLM())
    store = MemoryStore(minds)
    store.load(db.conn)
    assert not store.has_changes()
    mira = minds.minds["mira"].memory
    mira.add(600, "observation", "Ann asked about the market.", 6)
    mira.add(610, "reflection", "Newcomers often look for the market.", 8)
    minds.minds["tomas"].memory.add(620, "observation", "Pell told a joke.", 3)
    assert store.has_changes()
    db.commit_tick(1, [], [], [], [store])
    assert not store.has_changes()  # nothing new
    assert db.conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 3
    db.close()

    db2 = Database(str(tmp_path / "w.db"))
    again = MindsSystem(personas, FakeLLM())
    assert MemoryStore(again).load(db2.conn) == 3
    texts = [m.text for m in again.minds["mira"].memory.memories]
    assert texts == ["Ann asked about the market.", "Newcomers often look for the market."]
    assert again.minds["mira"].memory.importance_since_reflection == 6
    again.minds["mira"].memory.add(700, "observation", "A new memory.", 2)
    assert again.minds["mira"].memory.memories[-1].id == 3  # ids continue
    (best,) = again.minds["mira"].memory.retrieve("market", now=700, k=1)
    assert "market" in best.text


def test_a_tick_that_fails_to_commit_takes_its_memories_with_it(tmp_path):
    class BrokenStore:   # another tick store that fails after the memories are written
        def has_changes(self):
            return True

        def write(self, conn):
            raise OSError("disk full")

    db = Database(str(tmp_path / "w.db"))
    minds = MindsSystem(load_personas()[:1], FakeLLM())
    store = MemoryStore(minds)
    store.load(db.conn)
    next(iter(minds.minds.values())).memory.add(600, "observation", "Lost with its tick.", 5)
    with pytest.raises(OSError):
        db.commit_tick(7, [("say", {"text": "hi"})], [], [], [store, BrokenStore()])
    assert db.conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    assert db.last_tick() == 0
    db.close()
