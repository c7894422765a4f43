"""NPC memories persist with the world and survive a restart (FAKE model:
the model plays no part in what is stored)."""
from __future__ import annotations

from agents.memory_store import load_memories, save_memories
from agents.minds import MindsSystem
from agents.personas import load_personas
from server.persistence import Database
from tests.agents.fake_llm import FakeLLM


def test_memories_survive_a_restart(tmp_path):
    personas = load_personas()[:2]
    db = Database(str(tmp_path / "w.db"))
    minds = MindsSystem(personas, FakeLLM())
    load_memories(db.conn, minds)
    mira = minds.minds["mira"].memory
    mira.add(600, "observation", "Ann asked about the market.", 6)
    mira.add(610, "reflection", "Newcomers often look for the market.", 8)
    minds.minds["tomas"].memory.add(620, "observation", "Pell told a joke.", 3)
    assert save_memories(db.conn, minds) == 3
    assert save_memories(db.conn, minds) == 0  # nothing new
    db.close()

    db2 = Database(str(tmp_path / "w.db"))
    again = MindsSystem(personas, FakeLLM())
    assert load_memories(db2.conn, again) == 3
    texts = [m.text for m in again.minds["mira"].memory.memories]
    assert texts == ["Ann asked about the market.", "Newcomers often look for the market."]
    assert again.minds["mira"].memory.importance_since_reflection == 6
    again.minds["mira"].memory.add(700, "observation", "A new memory.", 2)
    assert again.minds["mira"].memory.memories[-1].id == 3  # ids continue
    (best,) = again.minds["mira"].memory.retrieve("market", now=700, k=1)
    assert "market" in best.text
