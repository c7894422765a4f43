"""The social measures of an experiment, read from the NPCs' memories and
the world while a scenario runs: who knows each seeded fact over game time
(a memory holding all its keywords), who can name whom (the relationship
network's density, before and after), who was at a seeded event's place
during its hour (coordination). The end-of-run interviews that confirm
knowledge and count made-up answers are agents/interview.py."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from agents.mind import Mind
from agents.scenario import Fact
from server.world.world import World

# Diffusion is sampled this often (game minutes): 96 points over two game
# days, enough for a smooth curve while each sample only reads new memories.
SAMPLE_MINUTES = 30
# Who is at an event's place is looked at this often during its hour (game
# minutes): a visit shorter than that may be missed.
ATTENDANCE_EVERY_MINUTES = 2
_COMING_GOING = re.compile(r"^[\w' ]+ (arrived|left)\.$")
def is_coming_going(text: str) -> bool:
    """A memory of seeing someone arrive or leave: it does not make them known."""
    return _COMING_GOING.match(text) is not None


_NAME_WORDS = re.compile(r"[A-Z][a-z']+(?: [A-Z][a-z']+)?")


def knows(text: str, fact: Fact) -> bool:
    low = text.casefold()
    return all(k in low for k in fact.keywords)


class NetworkTracker:
    """Whom each NPC can name: the people in its persona (relationships,
    summary, seed memories) and anyone named in a memory other than seeing
    them come and go."""

    def __init__(self, minds: Iterable[Mind]) -> None:
        self.minds = list(minds)
        self.names = {m.name for m in self.minds}
        self.known: dict[str, set[str]] = {}
        self.seen_id: dict[str, int] = {}
        for m in self.minds:
            p = m.persona
            texts = [*p.relationships, p.summary, *p.memories]
            self.known[m.name] = {n for t in texts for n in self._named(t)} - {m.name}
            self.seen_id[m.name] = 0

    def _named(self, text: str) -> set[str]:
        out = set()
        for match in _NAME_WORDS.finditer(text):
            words = match.group(0)
            if words in self.names:
                out.add(words)
            first = words.split(" ")[0]
            if first in self.names:
                out.add(first)
        return out

    def update(self) -> None:
        for m in self.minds:
            last = self.seen_id[m.name]
            for mem in m.memory.memories:
                if mem.id > last and not _COMING_GOING.match(mem.text):
                    self.known[m.name] |= self._named(mem.text) - {m.name}
            if m.memory.memories:
                self.seen_id[m.name] = max(last, m.memory.memories[-1].id)

    def density(self) -> float:
        n = len(self.minds)
        return sum(len(v) for v in self.known.values()) / (n * (n - 1)) if n > 1 else 0.0


class DiffusionTracker:
    """When each NPC first held a memory of each fact."""

    def __init__(self, facts: Iterable[Fact], minds: Iterable[Mind]) -> None:
        self.facts = list(facts)
        self.minds = list(minds)
        self.first: dict[str, dict[str, float]] = {f.id: {} for f in self.facts}
        self.seen_id: dict[str, int] = {m.name: 0 for m in self.minds}
        self.timeline: list[tuple[float, dict[str, int]]] = []   # (game minute, fact -> how many know)

    def update(self, minute: float) -> None:
        for m in self.minds:
            last = self.seen_id[m.name]
            new = [mem for mem in m.memory.memories if mem.id > last]
            for fact in self.facts:
                if m.name not in self.first[fact.id] and any(knows(mem.text, fact) for mem in new):
                    self.first[fact.id][m.name] = minute
            if new:
                self.seen_id[m.name] = new[-1].id
        self.timeline.append((minute, {f.id: len(self.first[f.id]) for f in self.facts}))

    def knew_by(self, fact: Fact, minute: float) -> set[str]:
        return {n for n, t in self.first[fact.id].items() if t <= minute}


class AttendanceTracker:
    """Who was inside each event's place at some moment of its hour."""

    def __init__(self, facts: Iterable[Fact]) -> None:
        self.events = [f for f in facts if f.minute is not None]
        self.present: dict[str, set[str]] = {f.id: set() for f in self.events}

    def update(self, world: World) -> None:
        now = world.game_minutes
        for f in self.events:
            if f.minute <= now < f.minute + 60:  # type: ignore[operator]
                place = world.map.places[f.place]  # type: ignore[index]
                self.present[f.id] |= {e.name for e in world.entities.values()
                                       if e.kind == "npc" and place.contains(e.x, e.y)}


class ExperimentRecord:
    """The three trackers, fed by the sim loop (server/sim.py)."""

    def __init__(self, facts: Iterable[Fact], minds: Iterable[Mind]) -> None:
        minds = list(minds)
        self.facts = list(facts)
        self.network = NetworkTracker(minds)
        self.density_before: float | None = None
        self.diffusion = DiffusionTracker(self.facts, minds)
        self.attendance = AttendanceTracker(self.facts)
        self.n = len(minds)

    def tick(self, world: World) -> None:
        minute = world.game_minutes
        if self.density_before is None and world.tick >= 2:   # the minds hold their seed memories
            self.network.update()
            self.density_before = self.network.density()
        whole = world.tick % int(SAMPLE_MINUTES * 60 / world.rules.game_seconds_per_tick) == 0
        if whole:
            self.diffusion.update(minute)
        if world.tick % int(ATTENDANCE_EVERY_MINUTES * 60 / world.rules.game_seconds_per_tick) == 0:
            self.attendance.update(world)

    def summary(self, world: World, interviews: dict[str, Any] | None) -> dict[str, Any]:
        """The measures for summary.json (interviews: agents/interview.py's results)."""
        now = world.game_minutes
        self.diffusion.update(now)
        self.network.update()
        out: dict[str, Any] = {"npcs": self.n, "density_before": round(self.density_before or 0.0, 4),
                               "density_after": round(self.network.density(), 4), "facts": {}}
        for f in self.facts:
            knew = self.diffusion.knew_by(f, now)
            row: dict[str, Any] = {"told": list(f.tell), "knew_memory": len(knew),
                                   "knew_memory_share": round(len(knew) / self.n, 4),
                                   "timeline": [[round(t, 1), c[f.id]] for t, c in self.diffusion.timeline]}
            if interviews is not None:
                confirmed = {n for n in knew if interviews["answers"].get(n, {}).get(f.id, {}).get("confirms")}
                row["knew"] = len(confirmed)
                row["knew_share"] = round(len(confirmed) / self.n, 4)
            if f.minute is not None:
                invited = self.diffusion.knew_by(f, f.minute) - set(f.tell)
                came = self.attendance.present[f.id]
                uninvited = {m.name for m in self.network.minds} - invited - set(f.tell)
                row.update({"invited": len(invited), "attended_of_invited": len(invited & came),
                            "attended_of_invited_share": round(len(invited & came) / len(invited), 4) if invited else None,
                            "uninvited_present": len(uninvited & came), "uninvited": len(uninvited),
                            "present": sorted(came)})
            out["facts"][f.id] = row
        return out
