"""The inputs that change the world. Each applied input is appended to the
event log as `(kind, fields)` and replayed through the same `World.apply`, so
these records are the whole interface between the outside and the world.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, NamedTuple


class Rejection(NamedTuple):
    """What `World.apply` returns for an input it refuses (nothing changed)."""
    code: str  # a protocol ErrorCode value
    message: str


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
    # An addressee across a region border (World.foreign): its name and tile
    # as this world saw it, written in by World.address and logged, so the
    # line replays the same without the neighbour's picture (region_world.py).
    to_name: str | None = None
    to_x: int | None = None
    to_y: int | None = None


@dataclass(frozen=True, slots=True)
class SetFlags:
    """Set or clear display flags (e.g. the thinking mark of an NPC)."""
    kind: ClassVar[str] = "flags"
    entity: int
    flags: int


# -- goods and coins (rules in server/world/economy.py) ------------------------
@dataclass(frozen=True, slots=True)
class Give:
    kind: ClassVar[str] = "give"
    entity: int
    to: int
    item: str  # an item kind, or "coins"
    n: int


@dataclass(frozen=True, slots=True)
class Buy:
    kind: ClassVar[str] = "buy"
    entity: int
    shop: int
    item: str
    n: int
    max_price: int
    delivery: bool = False  # an NPC's supply order: no need to stand at the shop


@dataclass(frozen=True, slots=True)
class Sell:
    kind: ClassVar[str] = "sell"
    entity: int
    shop: int
    item: str
    n: int
    min_price: int


@dataclass(frozen=True, slots=True)
class MakeOffer:
    kind: ClassVar[str] = "offer"
    entity: int
    to: int
    give: tuple = ()  # ((item, n), ...)
    coins: int = 0
    want: tuple = ()
    want_coins: int = 0


@dataclass(frozen=True, slots=True)
class Accept:
    kind: ClassVar[str] = "accept"
    entity: int
    offer: int


@dataclass(frozen=True, slots=True)
class Decline:
    kind: ClassVar[str] = "decline"
    entity: int
    offer: int


@dataclass(frozen=True, slots=True)
class Produce:
    """A workplace's recipe runs (the economy system, on the game clock)."""
    kind: ClassVar[str] = "produce"
    entity: int
    recipe: int  # index into the catalog's recipes


@dataclass(frozen=True, slots=True)
class Consume:
    """An NPC uses something up (a meal)."""
    kind: ClassVar[str] = "consume"
    entity: int
    item: str
    n: int = 1


# -- the school ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Learn:
    """A teacher judged a learner's answer (agents/school.py)."""
    kind: ClassVar[str] = "learn"
    entity: int   # the learner
    teacher: int
    topic: str
    question: int
    right: bool


# -- plans ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SetPlan:
    """An NPC's plan for the day (agents/plans.py): ((hour, place, activity), ...)
    from the hours given, replacing its persona's routine until the next."""
    kind: ClassVar[str] = "plan"
    entity: int
    steps: tuple = ()
    why: str = ""  # what it chose among, for operators and replays


# -- the notice board (rules in server/world/board.py) ---------------------------
@dataclass(frozen=True, slots=True)
class PostQuest:
    """An NPC asks for goods it needs, for coins, on the board."""
    kind: ClassVar[str] = "quest"
    entity: int
    item: str
    n: int
    reward: int


@dataclass(frozen=True, slots=True)
class WithdrawQuest:
    kind: ClassVar[str] = "withdraw"
    entity: int
    quest: int


@dataclass(frozen=True, slots=True)
class TurnIn:
    """Someone brings what a quest asks for and is paid, in one input."""
    kind: ClassVar[str] = "turn_in"
    entity: int
    quest: int


@dataclass(frozen=True, slots=True)
class PinNotice:
    """An NPC puts a person's notice on the board (after moderation)."""
    kind: ClassVar[str] = "notice"
    entity: int  # the NPC
    author: int
    author_name: str
    text: str


INPUT_TYPES: dict[str, type] = {t.kind: t for t in (Join, Leave, MoveTo, Step, Stop, Say, SetFlags, Give, Buy, Sell,
                                                    MakeOffer, Accept, Decline, Produce, Consume, Learn, SetPlan,
                                                    PostQuest, WithdrawQuest, TurnIn, PinNotice)}
Input = (Join | Leave | MoveTo | Step | Stop | Say | SetFlags | Give | Buy | Sell | MakeOffer | Accept | Decline
         | Produce | Consume | Learn | SetPlan | PostQuest | WithdrawQuest | TurnIn | PinNotice)


def to_record(inp: Input) -> tuple[str, dict[str, Any]]:
    return inp.kind, asdict(inp)


def from_record(kind: str, data: dict[str, Any]) -> Input:
    cls = INPUT_TYPES[kind]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
