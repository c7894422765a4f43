"""How the world applies the inputs that act on an entity itself: join,
leave, move, step, stop, say, learn, plan and flags (`InputHandlers`, mixed
into `World` in world.py, which maps each input type to its handler). The
inputs that move goods or coins have their rules in `trade_rules.py`, the
board's in `board.py`.

Each handler checks first and changes nothing when it returns a Rejection.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.world.addressees import Seen, logged_addressee
from server.world.economy import Economy
from server.world.entity import Entity
from server.world.grid import SpatialGrid
from server.world.inputs import Join, Learn, Leave, MoveTo, Rejection, Say, SetFlags, SetPlan, Step, Stop
from server.world.learning import Progress
from server.world.tilemap import DIRECTIONS, TileMap
from server.world.world_rules import WorldRules

# A day plan: at most one step an hour, of a short activity.
MAX_PLAN_STEPS = 24
MAX_PLAN_TEXT = 60


class InputHandlers:
    # What the handlers use of the world (set up by World.__init__).
    map: TileMap
    rules: WorldRules
    tick: int
    entities: dict[int, Entity]
    by_name: dict[str, int]
    grid: SpatialGrid
    next_entity_id: int
    next_chat_id: int
    events: list[dict[str, Any]]
    economy: Economy
    progress: Progress
    plans: dict[int, tuple[tuple[int, str, str], ...]]
    foreign: Callable[[int], Seen | None] | None
    _changed: Callable[[tuple[int, int]], None]
    in_hearing: Callable[[Entity | Seen, Entity | Seen], bool]

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
