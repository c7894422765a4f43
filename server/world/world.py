"""The authoritative world: entities on a tile map, movement, speech, and
their goods and coins (the rules of trade are in `economy.py`).

The world is a plain object with no I/O and no clock: `begin_tick()`,
`apply(input)` for each input of the tick, then `simulate()`. Given the same
snapshot and the same inputs it reaches the same state, bit for bit, which is
what replay from the event log relies on.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from protocol.entities import FLAG_AWAY, FLAG_THINKING, HEARING_RANGE
from server.world import board as board_rules
from server.world import trade_rules
from server.world.addressees import Seen, addressed_across, logged_addressee
from server.world.board import Board
from server.world.catalog import Catalog
from server.world.economy import Economy
from server.world.entity import Entity
from server.world.grid import SpatialGrid
from server.world.inputs import Input, Join, Leave, Learn, MoveTo, Rejection, Say, SetFlags, SetPlan, Step, Stop
from server.world.learning import Progress
from server.world.tilemap import DIRECTIONS, TileMap

# FLAG_THINKING and FLAG_AWAY (imported above, and used from here by others)
# are the protocol's flag bits: clients read them, so protocol/entities.py
# declares them.


@dataclass(frozen=True, slots=True)
class WorldRules:
    # Walking speed: one tile per 4 ticks is 5 tiles/s at 20 Hz, a brisk walk
    # on a map of 1 m tiles that clients can still interpolate smoothly.
    ticks_per_tile: int = 4
    # Speech carries this many tiles (about a shout across the square); the
    # protocol declares it, since clients check an addressee's distance.
    hearing_radius: int = HEARING_RANGE
    # The longest path a single move may ask for; the default map's diameter
    # is about 220 tiles, so any place is one move away.
    max_path: int = 400
    # Grid cells of 16 x 16 tiles; a client sees its cell and the 8 around
    # it: at least 16 tiles in every direction (a 1280 x 720 browser view at
    # 32 px per tile shows 20 x 11 each side), with few cells to visit.
    grid_cell: int = 16
    # The game clock runs ten times faster than real time at 20 Hz (half a
    # game second per tick): a game day lasts 2.4 real hours, so routines
    # change while people play, and a conversation of a few real seconds
    # takes a game minute or so.
    game_seconds_per_tick: float = 0.5
    start_minute: int = 8 * 60  # a new world starts at 08:00 on day 0


# A day plan: at most one step an hour, of a short activity.
MAX_PLAN_STEPS = 24
MAX_PLAN_TEXT = 60


class World:
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

    # -- input handlers ------------------------------------------------------
    def _join(self, inp: Join) -> Rejection | None:
        if inp.entity in self.entities:
            return Rejection("already_joined", f"entity {inp.entity} is already in the world")
        if inp.name.casefold() in self.by_name:
            return Rejection("name_taken", f"{inp.name} is already here")
        if not self.map.walkable(inp.x, inp.y):
            return Rejection("bad_move", "cannot stand there")
        e = Entity(inp.entity, "npc" if inp.npc else "player", inp.name, inp.x, inp.y)
        self.entities[e.id] = e
        self.by_name[e.name.casefold()] = e.id
        self.grid.insert(e.id, e.x, e.y)
        self._changed(self.grid.where[e.id])
        self.next_entity_id = max(self.next_entity_id, e.id + 1)
        self.economy.open_purse(e)
        self.events.append({"kind": "arrive", "tick": self.tick, "from": e.id, "name": e.name,
                            "x": e.x, "y": e.y})
        return None

    def _leave(self, inp: Leave) -> None:
        e = self.entities.pop(inp.entity)
        del self.by_name[e.name.casefold()]
        self._changed(self.grid.where[e.id])
        self.grid.remove(e.id)
        self.events.append({"kind": "depart", "tick": self.tick, "from": e.id, "name": e.name,
                            "x": e.x, "y": e.y})

    def _move_to(self, inp: MoveTo) -> Rejection | None:
        e = self.entities[inp.entity]
        if not self.map.in_bounds(inp.x, inp.y):
            return Rejection("bad_move", f"({inp.x}, {inp.y}) is off the map")
        if not self.map.walkable(inp.x, inp.y):
            return Rejection("bad_move", f"({inp.x}, {inp.y}) is blocked")
        path = self.map.find_path((e.x, e.y), (inp.x, inp.y))
        if path is None:
            return Rejection("bad_move", f"no way to ({inp.x}, {inp.y})")
        if len(path) > self.rules.max_path:
            return Rejection("bad_move", f"({inp.x}, {inp.y}) is too far for one move")
        e.path = path
        return None

    def _step(self, inp: Step) -> Rejection | None:
        e = self.entities[inp.entity]
        dx, dy = DIRECTIONS.get(inp.dir, (0, 0))
        if (dx, dy) == (0, 0):
            return Rejection("bad_value", f"unknown direction {inp.dir!r}")
        start = e.path[-1] if e.path else (e.x, e.y)
        target = (start[0] + dx, start[1] + dy)
        if not self.map.walkable(*target):
            return Rejection("bad_move", "that way is blocked")
        e.path = (e.path + [target])[-4:]  # queued steps stay short
        return None

    def _stop(self, inp: Stop) -> None:
        self.entities[inp.entity].path = []

    def _say(self, inp: Say) -> Rejection | int:
        e = self.entities[inp.entity]
        to_name = None
        if inp.to is not None:
            target: Entity | Seen | None = self.entities.get(inp.to)
            if target is None:  # across a border: as logged (replay), else as the region sees them
                target = logged_addressee(inp) or (self.foreign(inp.to) if self.foreign is not None else None)
            if target is None or target.id == e.id:
                return Rejection("no_such_entity", f"nobody with id {inp.to} is here")
            if not self.in_hearing(e, target):
                return Rejection("bad_value", f"{target.name} is too far away to hear you")
            to_name = target.name
        chat_id = self.next_chat_id
        self.next_chat_id += 1
        self.events.append({"kind": "say", "tick": self.tick, "from": e.id, "name": e.name,
                            "text": inp.text, "to": inp.to, "to_name": to_name, "chat": chat_id,
                            "x": e.x, "y": e.y})
        return chat_id

    def _learn(self, inp: Learn) -> Rejection | None:
        teacher = self.entities.get(inp.teacher)
        if teacher is None or teacher.kind != "npc":
            return Rejection("no_such_entity", f"no teacher {inp.teacher} is here")
        if not self.progress.answered(inp.entity, inp.topic, inp.question, inp.right):
            return Rejection("full", "too many questions in that topic")
        return None

    def _plan(self, inp: SetPlan) -> Rejection | None:
        steps = tuple((int(h), str(p), str(a)) for h, p, a in inp.steps)
        if not steps or len(steps) > MAX_PLAN_STEPS or self.entities[inp.entity].kind != "npc":
            return Rejection("bad_value", f"a plan is 1 to {MAX_PLAN_STEPS} steps, for an NPC")
        hours = [h for h, _, _ in steps]
        if hours != sorted(set(hours)) or not 0 <= hours[0] <= hours[-1] <= 23:
            return Rejection("bad_value", "a plan's hours run from 0 to 23, each once, in order")
        for _, place, activity in steps:
            if place not in self.map.places or not 0 < len(activity) <= MAX_PLAN_TEXT:
                return Rejection("bad_value", f"no place {place!r}, or an activity over {MAX_PLAN_TEXT} characters")
        self.plans[inp.entity] = steps
        return None

    def _flags(self, inp: SetFlags) -> None:
        self.entities[inp.entity].flags = inp.flags
        self._changed(self.grid.where[inp.entity])

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
