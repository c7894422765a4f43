"""A scenario's script in the tick (an agents-phase system): at their game
times, visitors join beside the NPCs a fact is seeded into and tell it to
them, say an intervention's line at a place or to an NPC, or announce an
event to everyone at a place, and leave after their stay. All of it is
ordinary logged inputs (Join, Say, Leave), so the NPCs remember it through
their perception and `hamlet replay` needs no model."""
from __future__ import annotations

from dataclasses import dataclass

from agents.scenario import Scenario
from server.world.inputs import Input, Join, Leave, Say
from server.world.world import World


@dataclass
class Appearance:
    at: float               # game minute
    name: str
    line: str
    place: str | None
    to: str | None          # an NPC's name
    stay_minutes: float
    fact: str | None = None
    entity: int | None = None
    leaves_at: float = 0.0
    said_at: float | None = None   # when the line was said (None: not yet, or its NPC was missing)


def appearances(scenario: Scenario) -> list[Appearance]:
    """Every visit the scenario scripts, in time order."""
    out = [Appearance(f.at, f.by, f.text, None, name, 10.0, fact=f.id) for f in scenario.facts for name in f.tell]
    out += [Appearance(i.at, i.name, i.line, i.place, i.to, i.stay_minutes) for i in scenario.interventions]
    return sorted(out, key=lambda a: a.at)


class ScenarioScript:
    def __init__(self, scenario: Scenario) -> None:
        self.todo = appearances(scenario)
        self.present: list[Appearance] = []
        self.done: list[Appearance] = []

    def __call__(self, world: World) -> list[Input]:
        out: list[Input] = []
        now = world.game_minutes
        for a in [a for a in self.present if a.leaves_at <= now]:
            self.present.remove(a)
            if a.entity in world.entities:
                out.append(Leave(a.entity))
        while self.todo and self.todo[0].at <= now:
            a = self.todo.pop(0)
            self.done.append(a)
            self._arrive(world, a, now, out)
        return out

    def _arrive(self, world: World, a: Appearance, now: float, out: list[Input]) -> None:
        target = world.find_by_name(a.to) if a.to else None
        if a.to and target is None:
            return  # its NPC is not in the world (yet): nothing to say
        if target is not None:
            x, y = target.x, target.y
        else:
            place = world.map.places[a.place or "square"]
            x, y = place.entry
        name, k = a.name, 2
        while world.find_by_name(name) is not None or any(p.name == name for p in self.present):
            name, k = f"{a.name} {k}", k + 1   # another visitor of that name is still here
        a.name, a.entity = name, world.allocate_entity_id()
        out.append(Join(a.entity, name, x, y))
        out.append(Say(a.entity, a.line, target.id if target is not None else None))
        a.said_at, a.leaves_at = now, now + a.stay_minutes
        self.present.append(a)

    def seeded(self) -> list[dict]:
        """What was told to whom and when, for the summary."""
        return [{"fact": a.fact, "to": a.to, "by": a.name, "minute": a.said_at} for a in self.done if a.fact]
