"""NPCs answering each other's quests: a re-plan on an important memory.

When a quest goes up on the notice board, every NPC that holds what it asks
for remembers it as important ("Sanne asked on the notice board for 3 eggs,
for 8 coins", importance ERRAND_IMPORTANCE). An NPC with such a memory,
awake and free (no conversation, no job, nobody waiting for it), re-plans:
keeping its plan against taking the goods to the board this hour, scored
by the model (`Choose`, like every plan). The chosen plan is a `SetPlan`
input: the world holds it and the NPC walks to the board by it; there it
turns the quest in (`TurnIn`, a logged input paid atomically by the world).
Each NPC considers each quest once.
"""
from __future__ import annotations

from agents.intents import Choose
from agents.mind import Mind
from agents.plans import _with, routine_steps, step_at
from agents.routine import game_hour
from server.world.board import BOARD_PLACE, Quest, at_board
from server.world.inputs import Input, TurnIn
from server.world.world import World

# A quest an NPC could answer is worth re-planning for: above the everyday
# observations (1-4) and below what a person says to it directly (7).
ERRAND_IMPORTANCE = 6
# No errands late in the evening: the board is on the square, and the
# village goes home.
LAST_ERRAND_HOUR = 20
# (NPC entity, quest id) pairs already considered; quests close within a
# game day, so entries of closed quests are dropped as they close.
MAX_CONSIDERED = 4096


def errand_activity(q: Quest) -> str:
    return f"bringing {q.n} {q.item} for {q.poster_name}"


class Errands:
    def __init__(self) -> None:
        self.considered: set[tuple[int, int]] = set()
        self.tried: set[tuple[int, int]] = set()  # turn-ins sent: once each (a refusal is not retried)

    def notice(self, world: World, by_entity: dict[int, Mind], q: Quest) -> None:
        """A quest went up: those who hold what it asks for remember it as important."""
        for mind in by_entity.values():
            if mind.entity != q.poster and world.economy.purse(mind.entity).has(q.item, q.n):
                mind.memory.add(world.game_minutes, "event", f"{q.poster_name} asked on the notice board for "
                                                             f"{q.n} {q.item}, for {q.reward} coins.",
                                ERRAND_IMPORTANCE, embed=False)

    def step(self, world: World, mind: Mind, intents: list, out: list[Input]) -> list:
        """For a free NPC about to follow its routine: a quest to re-plan for
        instead, and the turn-in of one it brought to the board."""
        turn_in = self.turn_in(world, mind)
        if turn_in is not None:
            out.append(turn_in)
        errand = self.consider(world, mind)
        return [errand] if errand is not None else intents

    def consider(self, world: World, mind: Mind) -> Choose | None:
        """Keep the plan or run the errand, for the first open quest it can
        answer and has not considered; None when there is none."""
        hour = game_hour(world)
        if hour >= LAST_ERRAND_HOUR or mind.conversation is not None or mind.guiding is not None:
            return None
        open_ids = set(world.board.quests)
        if len(self.considered) + len(self.tried) > MAX_CONSIDERED:
            self.considered = {k for k in self.considered if k[1] in open_ids}
            self.tried = {k for k in self.tried if k[1] in open_ids}
        purse = world.economy.purse(mind.entity)
        for q in sorted(world.board.quests.values(), key=lambda q: q.id):
            key = (mind.entity, q.id)
            if q.poster == mind.entity or key in self.considered or not purse.has(q.item, q.n):
                continue
            self.considered.add(key)
            current = world.plans.get(mind.entity) or routine_steps(mind.persona)
            h = int(hour)
            go = _with(current, h, BOARD_PLACE, errand_activity(q), until=h + 1 if h < 23 else None)
            have = purse.goods.get(q.item, 0)
            return Choose(f"{q.poster_name} asked on the notice board for {q.n} {q.item}, for {q.reward} coins; "
                          f"{mind.name} has {have} {q.item}.",
                          [("plan", current, "errand"), ("plan", go, "errand")],
                          ["keep to the plan", f"take {q.n} {q.item} to the notice board for {q.poster_name}"])
        return None

    def turn_in(self, world: World, mind: Mind) -> Input | None:
        """At the board on an errand: the quest its plan names, turned in."""
        plan = world.plans.get(mind.entity)
        e = world.entities.get(mind.entity)
        if plan is None or e is None or e.path or not at_board(world, e):
            return None
        _, place, activity = step_at(plan, game_hour(world))
        if place != BOARD_PLACE:
            return None
        for q in world.board.quests.values():
            key = (mind.entity, q.id)
            if errand_activity(q) == activity and key not in self.tried and \
                    world.economy.purse(mind.entity).has(q.item, q.n):
                self.tried.add(key)
                return TurnIn(mind.entity, q.id)
        return None
