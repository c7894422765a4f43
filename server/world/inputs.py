"""The inputs that change the world. Each applied input is appended to the
event log as `(kind, fields)` and replayed through the same `World.apply`, so
these records are the whole interface between the outside and the world.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Join:
    kind: ClassVar[str] = "join"
    entity: int
    name: str
    x: int
    y: int
    npc: bool = False


@dataclass(frozen=True, slots=True)
class Leave:
    kind: ClassVar[str] = "leave"
    entity: int


@dataclass(frozen=True, slots=True)
class MoveTo:
    kind: ClassVar[str] = "move_to"
    entity: int
    x: int
    y: int
    job: int | None = None  # the inference job that chose this move, for NPCs


@dataclass(frozen=True, slots=True)
class Step:
    kind: ClassVar[str] = "step"
    entity: int
    dir: str


@dataclass(frozen=True, slots=True)
class Stop:
    kind: ClassVar[str] = "stop"
    entity: int


@dataclass(frozen=True, slots=True)
class Say:
    kind: ClassVar[str] = "say"
    entity: int
    text: str
    to: int | None = None
    job: int | None = None  # the inference job that produced an NPC's line


@dataclass(frozen=True, slots=True)
class SetFlags:
    """Set or clear display flags (e.g. the thinking mark of an NPC)."""
    kind: ClassVar[str] = "flags"
    entity: int
    flags: int


INPUT_TYPES: dict[str, type] = {t.kind: t for t in (Join, Leave, MoveTo, Step, Stop, Say, SetFlags)}
Input = Join | Leave | MoveTo | Step | Stop | Say | SetFlags


def to_record(inp: Input) -> tuple[str, dict[str, Any]]:
    return inp.kind, asdict(inp)


def from_record(kind: str, data: dict[str, Any]) -> Input:
    cls = INPUT_TYPES[kind]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
