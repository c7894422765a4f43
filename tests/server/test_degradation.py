"""Graceful degradation: slow ticks halve the state update rate, fast ones
bring it back; a full server refuses joins with 1013 (test_bad_input.py)."""
from __future__ import annotations

from server.game import CADENCE_DWELL_TICKS, Game
from server.metrics import ServerMetrics
from server.persistence import Database
from server.world.village import village
from server.world.world import World
from tests.conftest import make_config


def test_state_cadence_follows_the_load(tmp_path):
    cfg = make_config(tmp_path, tick_rate=20.0)
    game = Game(cfg, World(village()), Database(cfg.db), ServerMetrics())
    assert len(game.replicators) == cfg.state_every_ticks == 2

    def ticks(n: int, took: float) -> None:
        for _ in range(n):
            game.world.begin_tick()
            game._adapt_cadence(took)

    ticks(CADENCE_DWELL_TICKS + 50, 0.030)  # 60% of a 50 ms budget
    assert len(game.replicators) == 4
    ticks(CADENCE_DWELL_TICKS * 3, 0.030)
    assert len(game.replicators) == cfg.max_state_every_ticks == 4  # never past the cap
    ticks(CADENCE_DWELL_TICKS + 100, 0.002)
    assert len(game.replicators) == 2
    assert b"hamlet_state_every_ticks 2.0" in game.metrics.render()
