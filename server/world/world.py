"""The authoritative world: entities on a tile map, movement, speech, and
their goods and coins (the rules of trade are in `economy.py`). This module
holds the world's state, its tick, its queries and its snapshots, and maps
each input to the handler that applies it: the entity's own inputs (join,
move, say, ...) in `input_handlers.py`, trades in `trade_rules.py`, the
board's in `board.py`. Its numbers (`WorldRules`) are in `world_rules.py`.

The world is a plain object with no I/O and no clock: `begin_tick()`,
`apply(input)` for each input of the tick, then `simulate()`. Given the same
snapshot and the same inputs it reaches the same state, bit for bit, which is
what replay from the event log relies on.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import msgpack

from protocol.entities import FLAG_AWAY, FLAG_THINKING
from server.world import board as board_rules
from server.world import trade_rules
from server.world.addressees import Seen, addressed_across
from server.world.board import Board
from server.world.catalog import Catalog
from server.world.economy import Economy
from server.world.entity import Entity
from server.world.grid import SpatialGrid
from server.world.input_handlers import InputHandlers
from server.world.inputs import Input, Join, Leave, Learn, MoveTo, Rejection, Say, SetFlags, SetPlan, Step, Stop
from server.world.learning import Progress
from server.world.tilemap import TileMap
from server.world.world_rules import WorldRules

# FLAG_THINKING and FLAG_AWAY (imported above, and used from here by others)
# are the protocol's flag bits: clients read them, so protocol/entities.py
# declares them. WorldRules (world_rules.py) is imported from here too.


class World(InputHandlers):
    def __init__(self, tilemap: TileMap, seed: int = 0, rules: WorldRules = WorldRules(),
                 catalog: Catalog | None = None) -> None:
        self.map = tilemap
        self.rules = rules
        self.seed = seed
        self.rng = random.Random(seed)
        self.tick = 0
        self.entities: dict[int, Entity] = {}
        self.by_name: dict[str, int] = {}  # casefolded name -> id
        self.grid = SpatialGrid(rules.grid_cell)
        self.next_entity_id = 1
        self.next_chat_id = 1
        self.events: list[dict[str, Any]] = []  # this tick's events
        # For each grid cell, the change counter when something visible last
        # changed there, so replication can reuse views of unchanged
        # neighbourhoods (a counter, not the tick: changes made between
        # ticks count too). At most one entry per cell of the map.
        self.changed_cells: dict[tuple[int, int], int] = {}
        self.change_count = 0
        # Goods and coins; a world without a catalog has no goods to trade.
        self.economy = Economy(catalog if catalog is not None else Catalog({}))
        self.progress = Progress()  # what learners learned at the school
        # NPCs' plans for the day: entity -> ((hour, place, activity), ...)
        self.plans: dict[int, tuple[tuple[int, str, str], ...]] = {}
        self.board = Board()  # quests and notices (board.py)
        # Who stands outside this world, near enough to be addressed: a
        # region sets it from its border view (server/cluster/region.py);
        # None in one process. Never consulted by replay: a say to someone
        # it knows carries what it saw of them in its logged input (address).
        self.foreign: Callable[[int], Seen | None] | None = None

    # -- the tick ------------------------------------------------------------
    def begin_tick(self) -> None:
        self.tick += 1
        self.events = []
        self.economy.begin_tick()
        self.progress.begin_tick()
        self.board.begin_tick()

    def allocate_entity_id(self) -> int:
        eid = self.next_entity_id
        self.next_entity_id += 1
        return eid

    def apply(self, inp: Input) -> Rejection | int | None:
        """Apply one input. Returns a Rejection (nothing changed), the chat id
        of a `Say`, or None."""
        handler = _HANDLERS.get(type(inp))
        if handler is None:
            return Rejection("internal", f"unknown input {type(inp).__name__}")
        if not isinstance(inp, Join) and inp.entity not in self.entities:
            return Rejection("no_such_entity", f"entity {inp.entity} is not in the world")
        return handler(self, inp)

    def simulate(self) -> None:
        self.economy.expire(self.tick)
        self.board.expire(self.tick)
        for e in self.entities.values():
            if not e.path:
                continue
            if e.cooldown > 0:
                e.cooldown -= 1
                continue
            x, y = e.path.pop(0)
            self._changed(self.grid.cell_of(e.x, e.y))
            e.x, e.y = x, y
            self.grid.move(e.id, x, y)
            self._changed(self.grid.where[e.id])
            e.cooldown = self.rules.ticks_per_tile - 1

    def _changed(self, cell: tuple[int, int]) -> None:
        self.change_count += 1
        self.changed_cells[cell] = self.change_count

    # -- queries -------------------------------------------------------------
    @property
    def game_minutes(self) -> float:
        """Minutes since midnight of day 0 on the game clock."""
        return self.rules.start_minute + self.tick * self.rules.game_seconds_per_tick / 60.0

    def clock(self) -> str:
        m = int(self.game_minutes)
        return f"day {m // 1440} {m // 60 % 24:02d}:{m % 60:02d}"

    def find_entity(self, eid: int) -> Entity | Seen | None:
        """This world's entity `eid`, else the one across a border that
        `foreign` knows (read-only: id, kind, name, x, y), else None."""
        e = self.entities.get(eid)
        if e is None and self.foreign is not None:
            return self.foreign(eid)
        return e

    def address(self, inp: Any) -> Any:
        """`inp` as it is to be logged (a say across a border carries whom it
        reached: addressees.py)."""
        return inp if self.foreign is None else addressed_across(inp, self.entities, self.foreign)

    def in_hearing(self, a: Entity | Seen, b: Entity | Seen) -> bool:
        r = self.rules.hearing_radius
        return (a.x - b.x) ** 2 + (a.y - b.y) ** 2 <= r * r

    def hearers(self, x: int, y: int) -> list[Entity]:
        r2 = self.rules.hearing_radius ** 2
        out = []
        for eid in self.grid.near(x, y, self.rules.hearing_radius):
            e = self.entities[eid]
            if (e.x - x) ** 2 + (e.y - y) ** 2 <= r2:
                out.append(e)
        return out

    def find_by_name(self, name: str) -> Entity | None:
        eid = self.by_name.get(name.casefold())
        return self.entities.get(eid) if eid is not None else None

    # -- snapshots -----------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        state = self.rng.getstate()
        return {
            "map": self.map.name, "seed": self.seed, "tick": self.tick,
            "rng": [state[0], list(state[1]), state[2]],
            "next_entity_id": self.next_entity_id, "next_chat_id": self.next_chat_id,
            "entities": [[e.id, e.kind, e.name, e.x, e.y, e.flags, [list(p) for p in e.path], e.cooldown]
                         for e in sorted(self.entities.values(), key=lambda e: e.id)],
            "economy": self.economy.snapshot(),
            "progress": self.progress.snapshot(),
            "plans": [[eid, [list(step) for step in steps]] for eid, steps in sorted(self.plans.items())],
            "board": self.board.snapshot(),
        }

    @classmethod
    def restore(cls, tilemap: TileMap, snap: dict[str, Any], rules: WorldRules = WorldRules(),
                catalog: Catalog | None = None) -> World:
        """The world a snapshot holds. It keeps the goods it was created with;
        `catalog` serves a snapshot from before the economy existed."""
        w = cls(tilemap, snap["seed"], rules, catalog)
        if "economy" in snap:
            w.economy = Economy.restore(snap["economy"])
        restored_purses = "economy" in snap
        if "progress" in snap:
            w.progress = Progress.restore(snap["progress"])
        if "board" in snap:
            w.board = Board.restore(snap["board"])
        w.plans = {eid: tuple((h, p, a) for h, p, a in steps) for eid, steps in snap.get("plans", [])}
        v, internal, gauss = snap["rng"]
        w.rng.setstate((v, tuple(internal), gauss))
        w.tick = snap["tick"]
        w.next_entity_id = snap["next_entity_id"]
        w.next_chat_id = snap["next_chat_id"]
        for eid, kind, name, x, y, flags, path, cooldown in snap["entities"]:
            e = Entity(eid, kind, name, x, y, flags, [tuple(p) for p in path], cooldown)
            w.entities[eid] = e
            w.by_name[name.casefold()] = eid
            w.grid.insert(eid, x, y)
            if not restored_purses:  # a world from before the economy: holders open their purses now
                w.economy.open_purse(e)
        w.economy.begin_tick()
        return w

    def state_hash(self) -> str:
        return hashlib.sha256(msgpack.packb(self.snapshot(), use_bin_type=True)).hexdigest()


# input type -> World method that applies it
_HANDLERS: dict[type, Callable[[World, Any], Rejection | int | None]] = {
    Join: World._join, Leave: World._leave, MoveTo: World._move_to, Step: World._step,
    Stop: World._stop, Say: World._say, SetFlags: World._flags, Learn: World._learn,
    SetPlan: World._plan, **trade_rules.HANDLERS, **board_rules.HANDLERS,
}
