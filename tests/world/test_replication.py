"""Replication on random worlds: a mirror built only from the deltas a
client receives always equals what it should see, for in-sync clients
(shared frames), clients that skip rounds (latest state wins) and clients
that move across cells."""
from __future__ import annotations

import random

from protocol.codec import decode_server
from server.replication import EMPTY_VIEW, CellCache, Replicator
from server.world.inputs import Join, Leave, MoveTo, SetFlags
from server.world.village import village
from server.world.world import World


class MirrorClient:
    def __init__(self, entity: int, skip_every: int = 0) -> None:
        self.entity = entity
        self.known = EMPTY_VIEW
        self.known_cell = None
        self.mirror: dict[int, tuple[int, int, int]] = {}
        self.skip_every = skip_every
        self.rounds = 0

    def state_slot_free(self) -> bool:
        self.rounds += 1
        return not (self.skip_every and self.rounds % self.skip_every == 0)

    def put_state(self, frame: bytes) -> None:
        d = decode_server(frame).data
        for eid, _kind, _name, x, y, flags in d["enter"]:
            assert eid not in self.mirror, "entered twice"
            self.mirror[eid] = (x, y, flags)
        for eid, x, y in d["move"]:
            self.mirror[eid] = (x, y, self.mirror[eid][2])
        for eid, flags in d["upd"]:
            self.mirror[eid] = (*self.mirror[eid][:2], flags)
        for eid in d["leave"]:
            del self.mirror[eid]

    def send(self, frame: bytes) -> None:
        pass


def expected(world: World, entity: int, view_cells: int = 1) -> dict[int, tuple[int, int, int]]:
    cx, cy = world.grid.where[entity]
    out = {}
    for e in world.entities.values():
        ex, ey = world.grid.where[e.id]
        if abs(ex - cx) <= view_cells and abs(ey - cy) <= view_cells:
            out[e.id] = (e.x, e.y, e.flags)
    return out


def test_mirrors_match_the_truth_on_a_random_world():
    rng = random.Random(5)
    world = World(village(), seed=5)
    tm = world.map
    walkable = [(x, y) for y in range(tm.height) for x in range(tm.width) if tm.walkable(x, y)]
    world.begin_tick()
    for eid in range(1, 81):
        x, y = rng.choice(walkable)
        assert world.apply(Join(eid, f"e{eid}", x, y)) is None
    cells = CellCache(world)
    replicators = [Replicator(world, cells=cells), Replicator(world, cells=cells)]
    clients = [MirrorClient(eid, skip_every=(3 if eid % 4 == 0 else 0)) for eid in range(1, 41)]
    next_id = 81
    for tick in range(400):
        world.begin_tick()
        for _ in range(6):
            eid = rng.choice(list(world.entities))
            r = rng.random()
            if r < 0.7:
                x, y = rng.choice(walkable)
                e = world.entities[eid]
                if abs(x - e.x) + abs(y - e.y) < 30:
                    world.apply(MoveTo(eid, x, y))
            elif r < 0.85:
                world.apply(SetFlags(eid, rng.randrange(4)))
            elif eid > 40:  # others come and go
                world.apply(Leave(eid))
                x, y = rng.choice(walkable)
                world.apply(Join(next_id, f"e{next_id}", x, y))
                next_id += 1
        world.simulate()
        phase = tick % 2
        replicators[phase].replicate([c for c in clients if c.entity % 2 == phase])
        for c in clients:
            if c.entity % 2 == phase and c.rounds and (not c.skip_every or c.rounds % c.skip_every):
                assert c.mirror == expected(world, c.entity), (tick, c.entity)
    shared = sum(r.frames_shared for r in replicators)
    assert shared > 0  # frames were shared between clients in the same cell
