"""NPCs following their daily routine without a language model: each NPC
walks to the place its routine names for the current game hour. The minds
(`agents/mind`) build on this; alone it keeps the village moving when no
model runs. Outputs are ordinary inputs, logged like a player's."""
from __future__ import annotations

import random

from agents.personas import Persona
from agents.plans import step_at
from server.world.inputs import Input, MoveTo
from server.world.world import World


class RoutineWalker:
    def __init__(self, personas: list[Persona], seed: int) -> None:
        self.personas = {p.name.casefold(): p for p in personas}
        # Its own RNG: a system outside the world must not draw from the
        # world's, or replay (which does not run this system) would diverge.
        self.rng = random.Random(seed ^ 0x5EED)
        self._going: dict[int, str] = {}  # entity -> place it is heading to

    def step(self, world: World) -> list[Input]:
        if world.tick % 20:  # once a second is plenty for a routine
            return []
        hour = game_hour(world)
        out: list[Input] = []
        for e in world.entities.values():
            if e.kind != "npc" or e.path:
                continue
            persona = self.personas.get(e.name.casefold())
            if persona is None:
                continue
            place_name = persona.activity_at(hour).place
            place = world.map.places.get(place_name)
            if place is None or (self._going.get(e.id) == place_name and place.contains(e.x, e.y)):
                continue
            # somewhere inside the place, near its entry, so NPCs don't stack
            tx = place.entry[0] + self.rng.randint(-2, 2)
            ty = place.entry[1] + self.rng.randint(-2, 2)
            if not (world.map.walkable(tx, ty) and place.contains(tx, ty)):
                tx, ty = place.entry
            self._going[e.id] = place_name
            if (tx, ty) != (e.x, e.y):
                out.append(MoveTo(e.id, tx, ty))
        return out


def game_hour(world: World) -> float:
    return (world.game_minutes / 60.0) % 24


def routine_move(world: World, mind, rng: random.Random) -> MoveTo | None:
    """A mind's next move along its routine (or where it decided to go),
    checked once a second; None while walking or already there."""
    e = world.entities[mind.entity]
    if e.path or world.tick % 20:
        return None
    hour = game_hour(world)
    plan = world.plans.get(e.id)  # its plan for the day (agents/plans.py), else its persona's routine
    target = mind.heading_to or (step_at(plan, hour)[1] if plan else mind.persona.activity_at(hour).place)
    place = world.map.places.get(target)
    if place is None or place.contains(e.x, e.y):
        if mind.heading_to and place is not None:
            mind.heading_to = None  # arrived where it decided to go
        return None
    tx, ty = place.entry[0] + rng.randint(-2, 2), place.entry[1] + rng.randint(-2, 2)
    if not (world.map.walkable(tx, ty) and place.contains(tx, ty)):
        tx, ty = place.entry
    return MoveTo(e.id, tx, ty)
