"""The tick's named phases (server/game.py), without sockets: their order;
`persist` is the tick's one transaction, NPC memories included; acks,
observers and snapshots run after it. Minds run on a FAKE model (the model
plays no part here)."""
from __future__ import annotations

from agents.minds import MindBudget
from agents.personas import load_personas
from server.game import Game
from server.metrics import ServerMetrics
from server.npcs import install_minds
from server.persistence import Database
from server.restore import open_world
from server.world.inputs import Join, Say
from server.world.village import village
from tests.agents.fake_llm import FakeLLM
from tests.conftest import make_config

PHASES = ["inputs", "agents", "simulate", "replicate", "persist", "acknowledge", "observe", "snapshot"]


def make_game(tmp_path, **overrides) -> Game:
    config = make_config(tmp_path, **overrides)
    db = Database(config.db)
    return Game(config, open_world(db, village(), 1), db, ServerMetrics())


def test_the_phases_run_in_order_and_what_follows_persist_sees_the_tick_committed(tmp_path):
    game = make_game(tmp_path, snapshot_every_s=0.0)
    assert [name for name, _ in game.systems] == PHASES
    seen: list[tuple[str, int]] = []

    class Store:   # a tick store: written inside the transaction
        def has_changes(self):
            return True

        def write(self, conn):
            seen.append(("store", conn.in_transaction))
            return 1

    def agent(world):
        game.after_commit(lambda: seen.append(("ack", game.db.last_tick())))
        return []

    game.stores.append(Store())
    game.agent_systems.append(agent)
    game.on_tick.append(lambda world: seen.append(("observer", game.db.last_tick())))
    game.run_tick()
    tick = game.world.tick
    assert seen == [("store", True), ("ack", tick), ("observer", tick)]
    assert game.db.latest_snapshot() is not None  # snapshot_every_s=0: one every tick


def test_npc_memories_commit_in_the_ticks_one_transaction(tmp_path):
    game = make_game(tmp_path)
    personas = [p for p in load_personas() if p.name in ("Mira", "Tomas")]
    minds = install_minds(game, personas, FakeLLM(), MindBudget(), clock=lambda: game.world.tick / 20)
    player = game.world.allocate_entity_id() + 1000
    script = {2: lambda mira: [Join(player, "Ann", mira.x + 1, mira.y)],
              3: lambda mira: [Say(player, "Hello Mira, where is the market?", to=mira.id)]}
    game.agent_systems.insert(0, lambda world: script.get(world.tick, lambda m: [])(world.find_by_name("Mira")))
    statements: list[str] = []
    game.db.conn.set_trace_callback(statements.append)
    for _ in range(6):
        game.run_tick()
    game.db.conn.set_trace_callback(None)
    memory_writes = [i for i, s in enumerate(statements) if s.startswith("INSERT OR REPLACE INTO memories")]
    assert memory_writes, "the minds remembered what they heard"
    for i in memory_writes:   # each inside a tick's BEGIN ... COMMIT, which also holds the tick marker
        begin = max(j for j in range(i) if statements[j] == "BEGIN")
        commit = min(j for j in range(i, len(statements)) if statements[j] == "COMMIT")
        assert any("last_tick" in s for s in statements[begin:commit])
    assert statements.count("BEGIN") == statements.count("COMMIT") <= 6  # one transaction a tick at most
    stored = game.db.conn.execute("SELECT text FROM memories WHERE npc='Mira'").fetchall()
    assert any("market" in text for (text,) in stored)
    assert not any(mind.memory.unsaved for mind in minds.minds.values())
