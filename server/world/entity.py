"""An entity of the world: a player's avatar or an NPC, where it stands,
its display flags and the path it is walking."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Entity:
    id: int
    kind: str  # "player" or "npc"
    name: str
    x: int
    y: int
    flags: int = 0
    path: list[tuple[int, int]] = field(default_factory=list)
    cooldown: int = 0
