"""Personas: who the NPCs are, read from an editable TOML file
(`agents/data/village.toml` by default)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PERSONAS = Path(__file__).with_name("data") / "village.toml"


@dataclass(frozen=True, slots=True)
class RoutineEntry:
    hour: int
    place: str
    activity: str


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    age: int
    occupation: str
    role: str
    traits: tuple[str, ...]
    home: str
    workplace: str
    summary: str
    routine: tuple[RoutineEntry, ...]
    relationships: dict[str, str] = field(default_factory=dict)
    memories: tuple[str, ...] = ()

    def activity_at(self, hour: float) -> RoutineEntry:
        """The routine entry in force at a game hour (wrapping past midnight)."""
        current = self.routine[-1]
        for entry in self.routine:
            if entry.hour <= hour:
                current = entry
        return current


def load_personas(path: str | Path | None = None, known_places: set[str] | None = None) -> list[Persona]:
    path = Path(path) if path else DEFAULT_PERSONAS
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    out: list[Persona] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("npc", [])):
        where = f"{path}: npc #{i + 1}"
        try:
            routine = tuple(RoutineEntry(int(h), str(p), str(a)) for h, p, a in raw["routine"])
            persona = Persona(
                name=str(raw["name"]), age=int(raw.get("age", 30)), occupation=str(raw["occupation"]),
                role=str(raw.get("role", "villager")), traits=tuple(raw.get("traits", ())),
                home=str(raw["home"]), workplace=str(raw["workplace"]), summary=str(raw.get("summary", "")),
                routine=tuple(sorted(routine, key=lambda r: r.hour)),
                relationships=dict(raw.get("relationships", {})), memories=tuple(raw.get("memories", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc!r}") from exc
        if not persona.routine:
            raise ValueError(f"{where}: routine is empty")
        if persona.name.casefold() in seen:
            raise ValueError(f"{where}: duplicate name {persona.name}")
        seen.add(persona.name.casefold())
        if known_places is not None:
            for place in {persona.home, persona.workplace, *(r.place for r in persona.routine)}:
                if place not in known_places:
                    raise ValueError(f"{where}: unknown place {place!r}")
        out.append(persona)
    return out
