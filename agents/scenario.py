"""Scenario files: what a headless experiment runs (TOML; README, section
*Experiments*). A scenario names its population (the village's personas
and/or villagers generated from templates), the facts seeded into chosen
NPCs at a game time, the interventions (a scripted visitor's line, an
event announced at a place), its length in game days and the measures to
compute. `load_scenario` reads and checks a file; every mistake is a
`ScenarioError` naming the file, the key and the reason."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agents.personas import Persona, load_personas
from agents.villagers import MAX_GENERATED, generate_villagers

SHIPPED = Path(__file__).with_name("data") / "scenarios"
MEASURES = ("diffusion", "density", "coordination", "hallucination", "conversations", "plans")
# The world starts at 08:00 on day 0 (server/world/world.py WorldRules.start_minute).
START_MINUTE = 8 * 60
# Two weeks of game time at most: the longest experiment worth running on
# one machine (two game days already take half an hour of wall time or more).
MAX_DAYS = 14.0
# A visitor stays this long by default: time for the NPC it spoke to to answer.
VISITOR_MINUTES = 10.0
# Lines and fact texts are spoken in the world: the protocol's 280 characters.
MAX_TEXT = 280

_AT = re.compile(r"^\s*day\s+(\d+)\s+(\d{1,2}):(\d{2})\s*$", re.I)

# A paced run takes one engine step every N ticks: a generated token takes N
# half-seconds of game time. 1,000 (500 game seconds a token) is far past
# any useful pace; the party runs at 200 to meet 100x real time on 2 cores.
MAX_TICKS_PER_STEP = 1000


class ScenarioError(ValueError):
    """A scenario file that cannot be run: `file: key: reason`."""


@dataclass(frozen=True)
class Fact:
    id: str
    text: str               # what the NPCs in `tell` are told
    keywords: tuple[str, ...]   # a memory holding all of these knows the fact
    tell: tuple[str, ...]   # who is told
    at: float               # game minute it is told
    by: str                 # the visitor who tells it
    question: str           # the end-of-run interview's question about it
    place: str | None = None    # where and when it happens, if it is an event
    day: int | None = None
    hour: int | None = None

    @property
    def minute(self) -> float | None:
        return None if self.day is None or self.hour is None else self.day * 1440 + self.hour * 60


@dataclass(frozen=True)
class Intervention:
    kind: str               # "visitor": a line spoken by a visitor; "event": announced to all at a place
    at: float
    name: str               # the visitor (or crier of the event)
    line: str
    place: str | None = None
    to: str | None = None   # an NPC the visitor addresses
    stay_minutes: float = VISITOR_MINUTES


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    description: str
    days: float
    seed: int
    ticks_per_step: int     # the engine takes one step every N ticks (0: it finishes each tick's work)
    personas: tuple[Persona, ...]
    facts: tuple[Fact, ...]
    interventions: tuple[Intervention, ...]
    measures: tuple[str, ...]
    interview: bool

    @property
    def end_minute(self) -> float:
        return START_MINUTE + self.days * 1440


def parse_time(text: object, where: str) -> float:
    """"day D HH:MM" on the world's clock (days from 0) -> game minute."""
    m = _AT.match(text) if isinstance(text, str) else None
    if m is None or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise ScenarioError(f"{where}: expected a time like \"day 1 18:00\", got {text!r}")
    return int(m.group(1)) * 1440 + int(m.group(2)) * 60 + int(m.group(3))


class _Reader:
    """Typed access to one table of the file, with errors that say where."""

    def __init__(self, path: Path, key: str, table: object) -> None:
        self.where = f"{path}: {key}"
        if not isinstance(table, dict):
            raise ScenarioError(f"{self.where}: expected a table")
        self.table = table

    def get(self, key: str, kind: type | tuple[type, ...], default: object = ...) -> object:
        if key not in self.table:
            if default is ...:
                raise ScenarioError(f"{self.where}.{key}: missing")
            return default
        value = self.table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            raise ScenarioError(f"{self.where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def text(self, key: str, default: object = ...) -> str:
        value = self.get(key, str, default)
        if isinstance(value, str) and not 0 < len(value.strip()) <= MAX_TEXT:
            raise ScenarioError(f"{self.where}.{key}: must be 1 to {MAX_TEXT} characters")
        return value  # type: ignore[return-value]

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise ScenarioError(f"{self.where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def load_scenario(path: str | Path, places: set[str]) -> Scenario:
    """Read and check a scenario file against the map's `places`."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    top = _Reader(path, "scenario", data)
    top.where = str(path)
    top.check_keys({"name", "description", "days", "seed", "ticks_per_step", "population", "fact",
                    "intervention", "measures", "interview"})
    days = float(top.get("days", (int, float)))  # type: ignore[arg-type]
    if not 0 < days <= MAX_DAYS:
        raise ScenarioError(f"{path}: days: must be above 0 and at most {MAX_DAYS:g}")
    ticks_per_step = top.get("ticks_per_step", int, 1)
    if not 0 <= ticks_per_step <= MAX_TICKS_PER_STEP:  # type: ignore[operator]
        raise ScenarioError(f"{path}: ticks_per_step: must be 0 to {MAX_TICKS_PER_STEP}")
    measures = top.get("measures", list, list(MEASURES))
    for m in measures:  # type: ignore[union-attr]
        if m not in MEASURES:
            raise ScenarioError(f"{path}: measures: unknown measure {m!r} (known: {', '.join(MEASURES)})")
    personas = _population(path, top.get("population", dict, {}), places)
    names = {p.name.casefold(): p.name for p in personas}
    end = START_MINUTE + days * 1440
    facts = tuple(_fact(path, i, raw, places, names, end) for i, raw in enumerate(top.get("fact", list, [])))
    if len({f.id for f in facts}) != len(facts):
        raise ScenarioError(f"{path}: fact: two facts share an id")
    interventions = tuple(_intervention(path, i, raw, places, names, end)
                          for i, raw in enumerate(top.get("intervention", list, [])))
    return Scenario(path, top.text("name", path.stem), top.get("description", str, ""), days,  # type: ignore[arg-type]
                    top.get("seed", int, 1), ticks_per_step, tuple(personas), facts,  # type: ignore[arg-type]
                    interventions, tuple(measures), bool(top.get("interview", bool, True)))  # type: ignore[arg-type]


def _population(path: Path, raw: object, places: set[str]) -> list[Persona]:
    r = _Reader(path, "population", raw)
    r.check_keys({"npcs", "personas", "seed"})
    source = r.get("personas", str, "village")
    npcs = r.get("npcs", int)
    if not 1 <= npcs <= MAX_GENERATED + 100:  # type: ignore[operator]
        raise ScenarioError(f"{r.where}.npcs: must be 1 to {MAX_GENERATED + 100}")
    if source == "none":
        base: list[Persona] = []
    else:
        file = None if source == "village" else (path.parent / source)  # type: ignore[operator]
        try:
            base = load_personas(file, known_places=places)
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"{r.where}.personas: {exc}") from exc
    base = base[:npcs]  # type: ignore[index]
    extra = npcs - len(base)  # type: ignore[operator]
    if extra > MAX_GENERATED:
        raise ScenarioError(f"{r.where}.npcs: at most {MAX_GENERATED} villagers are generated")
    return base + generate_villagers(extra, r.get("seed", int, 1), {p.name for p in base}, places)  # type: ignore[arg-type]


def _fact(path: Path, i: int, raw: object, places: set[str], names: dict[str, str], end: float) -> Fact:
    r = _Reader(path, f"fact[{i}]", raw)
    r.check_keys({"id", "text", "keywords", "tell", "at", "by", "question", "place", "day", "hour"})
    keywords = r.get("keywords", list)
    if not keywords or not all(isinstance(k, str) and k.strip() for k in keywords):  # type: ignore[union-attr]
        raise ScenarioError(f"{r.where}.keywords: a list of one or more words")
    tell = r.get("tell", list)
    if not tell:
        raise ScenarioError(f"{r.where}.tell: name at least one NPC")
    for name in tell:  # type: ignore[union-attr]
        if not isinstance(name, str) or name.casefold() not in names:
            raise ScenarioError(f"{r.where}.tell: {name!r} is not in the population")
    text = r.text("text")
    for k in keywords:  # type: ignore[union-attr]
        if k.casefold() not in text.casefold():
            raise ScenarioError(f"{r.where}.keywords: {k!r} does not occur in the text")
    at = _within(r, "at", end)
    if r.text("by", "Messenger").casefold() in names:
        raise ScenarioError(f"{r.where}.by: the visitor who tells it needs a name no NPC has")
    place, day, hour = r.get("place", str, None), r.get("day", int, None), r.get("hour", int, None)
    if (place is None) != (day is None) or (day is None) != (hour is None):
        raise ScenarioError(f"{r.where}: an event gives place, day and hour together (or none of them)")
    if place is not None and place not in places:
        raise ScenarioError(f"{r.where}.place: {place!r} is not a place on the map")
    if hour is not None and not 0 <= hour <= 23:  # type: ignore[operator]
        raise ScenarioError(f"{r.where}.hour: 0 to 23")
    return Fact(r.text("id"), text, tuple(k.casefold() for k in keywords), tuple(names[n.casefold()] for n in tell),  # type: ignore[union-attr]
                at, r.text("by", "Messenger"), r.text("question", f"What have you heard about {keywords[0]}?"),  # type: ignore[index]
                place, day, hour)  # type: ignore[arg-type]


def _intervention(path: Path, i: int, raw: object, places: set[str], names: dict[str, str], end: float) -> Intervention:
    r = _Reader(path, f"intervention[{i}]", raw)
    r.check_keys({"kind", "at", "name", "line", "place", "to", "stay_minutes"})
    kind = r.get("kind", str)
    if kind not in ("visitor", "event"):
        raise ScenarioError(f"{r.where}.kind: \"visitor\" or \"event\", not {kind!r}")
    place, to = r.get("place", str, None), r.get("to", str, None)
    if place is not None and place not in places:
        raise ScenarioError(f"{r.where}.place: {place!r} is not a place on the map")
    if to is not None and to.casefold() not in names:  # type: ignore[union-attr]
        raise ScenarioError(f"{r.where}.to: {to!r} is not in the population")
    if (place is None) == (to is None) and kind == "visitor":
        raise ScenarioError(f"{r.where}: a visitor goes to a place or to an NPC (one of place, to)")
    if kind == "event" and place is None:
        raise ScenarioError(f"{r.where}.place: an event happens at a place")
    name = r.text("name", "Crier" if kind == "event" else "Visitor")
    if name.casefold() in names:
        raise ScenarioError(f"{r.where}.name: {name!r} is an NPC of the population; a visitor needs a name of its own")
    stay = float(r.get("stay_minutes", (int, float), VISITOR_MINUTES))  # type: ignore[arg-type]
    if not 0 < stay <= 240:  # a visitor, not a new villager: four game hours at most
        raise ScenarioError(f"{r.where}.stay_minutes: above 0 and at most 240")
    return Intervention(kind, _within(r, "at", end), name, r.text("line"), place, names[to.casefold()] if to else None, stay)  # type: ignore[union-attr]


def _within(r: _Reader, key: str, end: float) -> float:
    at = parse_time(r.get(key, str), f"{r.where}.{key}")
    if not START_MINUTE <= at < end:
        raise ScenarioError(f"{r.where}.{key}: must fall within the run (day 0 08:00 until its end)")
    return at
