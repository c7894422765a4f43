"""An NPC's plan for the day, and changes to it.

When an NPC wakes on a new game day it plans its day: the candidates are
its persona's routine and variants the world allows (an evening at another
place people gather), and the model's `score` picks one. When a person asks
to meet it somewhere at an hour ("meet me at the well at noon"), keeping its
plan and going to the meeting are the candidates. Either way the chosen plan
becomes a `SetPlan` input: logged like every input, so `hamlet replay`
needs no model, and the world holds it (the routine is the fallback: with
`--model none` NPCs follow their personas' routines).
"""
from __future__ import annotations

import re

from agents.personas import Persona

Steps = tuple[tuple[int, str, str], ...]   # (hour, place, activity), hours ascending

# Places where people spend an evening, for the variants of a day.
GATHERING = ("tavern", "square", "pond", "chapel")
EVENING = 18
# A meeting lasts this many hours before the plan goes on.
MEETING_HOURS = 1

_MEET = re.compile(r"\b(meet|see you|join me|come to)\b", re.I)
_HOUR = re.compile(r"\b(noon|midday|midnight|(\d{1,2})(?::(\d{2}))?\s*(am|pm|o'clock)?)\b", re.I)


def routine_steps(p: Persona) -> Steps:
    return tuple((r.hour, r.place, r.activity) for r in sorted(p.routine, key=lambda r: r.hour))


def step_at(steps: Steps, hour: float) -> tuple[int, str, str]:
    """The step in force at `hour` (the last one before it, wrapping past midnight)."""
    current = steps[-1]
    for step in steps:
        if step[0] <= hour:
            current = step
    return current


def _with(steps: Steps, hour: int, place: str, activity: str, until: int | None = None) -> Steps:
    """`steps` with (hour, place, activity) from `hour`, and what was in force
    at `until` resumed then (if given)."""
    out = {h: (h, p, a) for h, p, a in steps}
    resume = step_at(steps, until) if until is not None else None
    out[hour] = (hour, place, activity)
    if resume is not None and until is not None and until not in out and until <= 23:
        out[until] = (until, resume[1], resume[2])
    return tuple(out[h] for h in sorted(out))


def day_candidates(p: Persona, places: set[str], events=()) -> list[tuple[str, Steps]]:
    """(what the NPC decides to do, the plan): its usual day first, then the
    day with each event it knows of today (agents/events.KnownEvent), then
    evenings elsewhere."""
    base = routine_steps(p)
    out = [("keep to the usual day", base)]
    out += [(ev.label, _with(base, ev.hour, ev.place, f"at the {ev.what}", until=ev.hour + MEETING_HOURS))
            for ev in events if ev.place in places][:2]  # two events a day at most: a short list scores best
    evening_place = step_at(base, EVENING)[1]
    if evening_place == p.home:  # it goes home early: its evening is its own
        return out
    for place in GATHERING:
        if place in places and place != evening_place and len(out) < 3 + min(2, len(events)):
            out.append((f"spend the evening at the {place}", _with(base, EVENING, place, f"spending the evening at the "
                                                                                        f"{place}")))
    return out


def meeting_asked(text: str, places: set[str], known_places) -> tuple[str, int] | None:
    """(place, hour) of a meeting a line asks for, or None."""
    if not _MEET.search(text):
        return None
    found = known_places(text, places)
    m = _HOUR.search(text)
    if not found or m is None:
        return None
    if m.group(1).lower() in ("noon", "midday"):
        hour = 12
    elif m.group(1).lower() == "midnight":
        hour = 0
    else:
        hour = int(m.group(2))
        suffix = (m.group(4) or "").lower()
        if suffix == "pm" and hour < 12:
            hour += 12
        elif not suffix and 1 <= hour <= 6:  # "at 3": the afternoon, in a village
            hour += 12
        if hour > 23:
            return None
    return found[0], hour


def meeting_candidates(steps: Steps, name: str, place: str, hour: int) -> list[tuple[str, Steps]]:
    return [("keep to the plan", steps),
            (f"meet {name} at the {place} at {hour:02d}:00",
             _with(steps, hour, place, f"meeting {name}", until=hour + MEETING_HOURS))]


def event_candidates(steps: Steps, ev) -> list[tuple[str, Steps]]:
    """Keeping the plan, or going to an event (agents/events.KnownEvent) heard of today."""
    return [("keep to the plan", steps),
            (ev.label, _with(steps, ev.hour, ev.place, f"at the {ev.what}", until=ev.hour + MEETING_HOURS))]
