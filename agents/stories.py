"""Stories from what really happened: the village's notable events of the
day (trades, lessons, newcomers, who talked with whom), and the tale a
storyteller NPC tells from them in the evening to whoever is there.

Nothing in a tale is invented: every sentence is an event of the day, in
the order it happened, so a 135M model cannot get the facts wrong. The
storyteller tells one tale a game day, from STORY_HOUR on, when it is at its
workplace and a person can hear it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.explain import record
from server.world.inputs import Input, Say

if TYPE_CHECKING:
    from server.world.world import World

Mind = Any  # agents.mind.Mind

# Events kept for the day's tale: a busy day's worth; older ones drop.
MAX_DAY_EVENTS = 200
# The tale's hour (game time) and how many events it tells.
STORY_HOUR = 19
TALE_EVENTS = 4
# A spoken line is at most this long (agents/dialogue.MAX_LINE): a tale is
# told in a few lines.
TALE_LINE = 200


@dataclass(frozen=True)
class DayEvent:
    day: int
    minute: float
    text: str       # a sentence, without its full stop: "Ann bought 2 bread from Sanne for 8 coins"
    weight: int     # how much it is worth telling: 3 a trade or a lesson, 2 a newcomer, 1 a chat


class DayLog:
    def __init__(self) -> None:
        self.events: deque[DayEvent] = deque(maxlen=MAX_DAY_EVENTS)

    def add(self, minute: float, text: str, weight: int = 1) -> None:
        text = text.strip().rstrip(".")
        if text and not any(e.text == text and e.day == int(minute // 1440) for e in list(self.events)[-20:]):
            self.events.append(DayEvent(int(minute // 1440), minute, text, weight))

    def today(self, minute: float) -> list[DayEvent]:
        day = int(minute // 1440)
        return [e for e in self.events if e.day == day]


def tale(events: list[DayEvent], listeners: list[str]) -> list[str]:
    """The lines of the tale of `events`: the weightiest TALE_EVENTS, told in
    the order they happened, addressed to whoever listens."""
    if not events:
        return []
    chosen = sorted(sorted(events, key=lambda e: (-e.weight, -e.minute))[:TALE_EVENTS], key=lambda e: e.minute)
    who = " and ".join(listeners[:2]) if listeners else "friends"
    lines = [f"Gather round, {who}, and hear what happened in the village today!"]
    for i, e in enumerate(chosen):
        lead = "First" if i == 0 else "And to end the day" if i == len(chosen) - 1 and i > 0 else "Then"
        sentence = f"{lead}, {e.text}."
        lines.append(sentence if len(sentence) <= TALE_LINE else sentence[:TALE_LINE - 1] + "…")
    return lines


# Ticks between two lines of a tale (2 s at 20 Hz): time to read each.
TALE_GAP_TICKS = 40


class Storytellers:
    """The storyteller NPCs' evening tales (role "storyteller" in the personas)."""

    def __init__(self) -> None:
        self.day_log = DayLog()
        self.told = 0                     # tales told (the sim's summary)
        self._told_day: dict[int, int] = {}    # storyteller entity -> the game day of its last tale
        self._telling: dict[int, deque[str]] = {}  # storyteller entity -> lines still to say

    def tick(self, world: World, minds: dict[int, Mind], out: list[Input]) -> None:
        now = world.game_minutes
        day, hour = int(now // 1440), now % 1440 / 60
        for eid, mind in minds.items():
            if mind.persona.role != "storyteller" or eid not in world.entities:
                continue
            lines = self._telling.get(eid)
            if lines:
                if world.tick % TALE_GAP_TICKS == 0:
                    out.append(Say(eid, lines.popleft()))
                continue
            if hour < STORY_HOUR or self._told_day.get(eid) == day or mind.serving_people:
                continue
            me = world.entities[eid]
            place = world.map.places.get(mind.persona.workplace)
            if place is None or not place.contains(me.x, me.y):
                continue
            listeners = [e.name for e in world.hearers(me.x, me.y) if e.kind == "player"]
            events = self.day_log.today(now)
            if not listeners or not events:
                continue
            told = tale(events, listeners)
            self._told_day[eid] = day
            self._telling[eid] = deque(told)
            self.told += 1
            record(world, mind, "story", to=", ".join(listeners), line=" ".join(told), outcome="story",
                   facts=tuple(e.text for e in events[-TALE_EVENTS * 2:]))
            mind.memory.add(now, "action", f"I told the tale of the day to {', '.join(listeners)}.", 4)
