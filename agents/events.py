"""Events an NPC knows of: a gathering at a place and an hour ("Tomas holds a
harvest feast at the tavern at 18:00 on day 1"), recognised in what it hears
without the model. A known event becomes a plan it may choose (scored with
the model, agents/plans.py: on the day, or at once when heard that day)
and news it passes on: opening a chat with someone it has not told, it
invites them (the model's line, or the event said from its facts when the
line leaves them out)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from agents.facts import places_asked
from agents.memory import Memory
from agents.personas import Persona

OCCASIONS = ("feast", "party", "festival", "fair", "wedding", "dance", "celebration", "gathering", "supper",
             "banquet", "picnic", "concert")
# Events an NPC keeps in mind at once; the oldest is forgotten past this (a
# village has a handful of occasions a week; 8 bounds a flood of rumours).
MAX_EVENTS = 8
_WORD = re.compile(r"[A-Za-z']+")
_CLOCK = re.compile(r"\b(noon|midday|(\d{1,2})(?::(\d{2}))\s*(am|pm)?|(\d{1,2})\s*(am|pm|o'clock))\b", re.I)
_DAY = re.compile(r"\bday\s+(\d{1,3})\b|\b(today|tonight|tomorrow)\b", re.I)
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_ARTICLES = frozenset("a an the our his her their my your this that big grand".split())


@dataclass(frozen=True)
class KnownEvent:
    what: str       # "harvest feast"
    place: str
    day: int
    hour: int
    source: str     # the sentence it was heard in

    @property
    def key(self) -> tuple[str, int, int]:
        return self.place, self.day, self.hour

    @property
    def minute(self) -> int:
        return self.day * 1440 + self.hour * 60

    @property
    def label(self) -> str:
        return f"go to the {self.what} at the {self.place} at {self.hour:02d}:00"


def _hour(m: re.Match) -> int | None:
    if m.group(1).lower() in ("noon", "midday"):
        return 12
    hour = int(m.group(2) or m.group(5))
    suffix = (m.group(4) or m.group(6) or "").lower()
    if suffix == "pm" and hour < 12:
        hour += 12
    elif suffix == "o'clock" and 1 <= hour <= 6:  # "at 6 o'clock": the evening, in a village
        hour += 12
    return hour if 0 <= hour <= 23 else None


def tells_of_event(text: str) -> bool:
    """Does a sentence of the text name an occasion and an hour (an event, its
    place aside: the interview does not know the map's places)?"""
    return any(_CLOCK.search(s) and any(w.rstrip("s") in OCCASIONS for w in _WORD.findall(s.lower()))
               for s in _SENTENCE.findall(text))


def event_mentioned(text: str, now_minute: float, places: set[str]) -> KnownEvent | None:
    """The event a line tells of (an occasion, a place, an hour), or None.
    A day given as "day N", "today"/"tonight" or "tomorrow"; none given: the
    next time that hour comes."""
    for sentence in _SENTENCE.findall(text):
        words = _WORD.findall(sentence.lower())
        at = next((i for i, w in enumerate(words) if w.rstrip("s") in OCCASIONS), None)
        clock = _CLOCK.search(sentence)
        found = places_asked(sentence, places)
        if at is None or clock is None or not found:
            continue
        hour = _hour(clock)
        if hour is None:
            continue
        # the place the occasion is at: the first named after the occasion word
        # ("around the market I heard of a feast at the tavern": the tavern),
        # else the last one before it
        m = re.search(rf"\b{re.escape(words[at])}\b", sentence.lower())
        after = places_asked(sentence[m.start():], places) if m else []
        place = after[0] if after else found[-1]
        noun = words[at].rstrip("s")
        before = words[at - 1] if at > 0 else ""
        what = f"{before} {noun}" if before.isalpha() and before not in _ARTICLES and len(before) > 2 else noun
        today = int(now_minute // 1440)
        d = _DAY.search(sentence)
        if d is None:
            day = today if hour * 60 > now_minute % 1440 else today + 1
        elif d.group(1):
            day = int(d.group(1))
        else:
            day = today + (1 if d.group(2).lower() == "tomorrow" else 0)
        return KnownEvent(what, place, day, hour, " ".join(sentence.split()))
    return None


class KnownEvents:
    """One NPC's known events: those to come, whom it has told, and an event
    of today heard since its plan was made (to decide on)."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, int, int], KnownEvent] = {}
        self.told: set[tuple[tuple[str, int, int], str]] = set()   # (event, partner casefolded)
        self.pending: KnownEvent | None = None

    def heard(self, text: str, now_minute: float, places: set[str]) -> KnownEvent | None:
        ev = event_mentioned(text, now_minute, places)
        if ev is None or ev.minute <= now_minute or ev.key in self.events:
            return None
        if len(self.events) >= MAX_EVENTS:
            del self.events[min(self.events, key=lambda k: self.events[k].minute)]
        self.events[ev.key] = ev
        if ev.day == int(now_minute // 1440):
            self.pending = ev   # today: it decides now whether to go
        return ev

    def on_day(self, day: int) -> list[KnownEvent]:
        return sorted((e for e in self.events.values() if e.day == day), key=lambda e: e.minute)

    def news_for(self, partner: str, now_minute: float) -> KnownEvent | None:
        """An event to come that it has not told `partner` of yet."""
        for ev in sorted(self.events.values(), key=lambda e: e.minute):
            if ev.minute > now_minute and (ev.key, partner.casefold()) not in self.told:
                return ev
        return None

    def told_to(self, ev: KnownEvent, partner: str) -> None:
        self.told.add((ev.key, partner.casefold()))


def invite_turns(p: Persona, clock: str, activity: str, ev: KnownEvent, memories: list[Memory],
                 partner: str) -> list[tuple[str, str]]:
    """Chat turns for opening a chat with news of `ev` and an invitation."""
    remembered = "\n".join(f"- {m.text}" for m in memories) or "- (nothing else comes to mind)"
    return [("user", f"It is {clock}; you are {activity}.\nYou remember:\n{remembered}\n"
                     f"News: {news(ev)}\nYou meet {partner}. Tell {partner} the news (what, where and when) "
                     f"and invite them.")]


def carries(line: str, ev: KnownEvent) -> bool:
    """The line tells the event: its occasion, its place and its hour."""
    got = event_mentioned(line, ev.minute - 60, {ev.place})
    return got is not None and got.place == ev.place and got.hour == ev.hour and ev.what.split()[-1] in line.lower()


def news(ev: KnownEvent) -> str:
    return f"there is a {ev.what} at the {ev.place} at {ev.hour:02d}:00 on day {ev.day}."


def invite_line(ev: KnownEvent) -> str:
    """The news said from its facts, in words that others recognise again."""
    return f"{news(ev)[0].upper()}{news(ev)[1:]} Do come!"
