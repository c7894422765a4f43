"""Walkers: entities that wander across the whole map, for `hamlet cluster
--walkers N` and bench/cluster.py, so handoffs happen without any client.
Each region moves the walkers it holds now: one without a path gets a new
random walkable target anywhere (often in another region), and now and
then says something, so speech crosses borders too.
"""
from __future__ import annotations

import random

from server.world.inputs import MoveTo, Say

PREFIX = "walker-"


def walker_system(region: str, rng: random.Random, say_every: int = 200):
    """An agent system (Game.agent_systems) moving this region's walkers."""
    def system(world) -> list:
        out = []
        for e in world.entities.values():
            if e.path or not e.name.startswith(PREFIX):
                continue
            for _ in range(20):
                x, y = rng.randrange(world.map.width), rng.randrange(world.map.height)
                if world.map.walkable(x, y) and abs(x - e.x) + abs(y - e.y) <= 60:
                    out.append(MoveTo(e.id, x, y))
                    break
            if rng.randrange(say_every) == 0:
                out.append(Say(e.id, f"{e.name} passing through {region}"))
        return out
    return system
