"""Persona files of plain villagers for the benchmarks: each stands all day
at one place, chatting with neighbours."""
from __future__ import annotations

import json
from pathlib import Path

TRAITS = [["cheerful", "chatty"], ["grumpy", "honest"], ["shy", "kind"], ["curious", "quick"], ["proud", "loud"]]


def write_villagers(path: Path, names: list[str], places: list[str], first_age: int = 20) -> Path:
    """One villager per name, the i-th at places[i % len(places)]."""
    out = []
    for i, name in enumerate(names):
        place = places[i % len(places)]
        out.append(f'''[[npc]]
name = "{name}"
age = {first_age + i}
occupation = "villager"
traits = {json.dumps(TRAITS[i % len(TRAITS)])}
home = "house {1 + i % 9}"
workplace = "{place}"
summary = "{name} likes to chat with neighbours at the {place}."
routine = [[0, "{place}", "chatting with neighbours"]]
''')
    path.write_text("\n".join(out))
    return path
