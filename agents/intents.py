"""What a mind decides to do next, as data. `agents/mind_decide.py` returns
these; the minds system (`agents/minds.py`) carries them out (submitting
jobs, ending conversations, emitting inputs). Keeping the decision apart
from its effects lets the policy be read and tested on its own."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.inference.api import Priority
from agents.mind import WaitingPerson


@dataclass(frozen=True)
class StopWalking:
    """A person speaking to it interrupts its walk."""


@dataclass(frozen=True)
class Answer:
    """Generate a reply to a waiting person (batched with the others)."""
    person: WaitingPerson
    query_embedding: Any  # the recall query's embedding, or None (lexical relevance)


@dataclass(frozen=True)
class AnswerAsleep:
    """It is asleep: answer as someone woken, from its routine, no model."""
    person: WaitingPerson


@dataclass(frozen=True)
class Hold:
    """Tell someone waiting behind a crowd that their turn will come."""
    person: WaitingPerson


@dataclass(frozen=True)
class Generate:
    """A line of NPC conversation or a reflection."""
    kind: str  # opener, line, farewell, reflect
    turns: list[tuple[str, str]]
    priority: Priority
    max_tokens: int
    deadline_s: float | None
    context: dict[str, Any]


@dataclass(frozen=True)
class Choose:
    """Score candidate actions (never parse them from free text)."""
    situation: str
    actions: list[tuple]
    labels: list[str]


@dataclass(frozen=True)
class EndConversation:
    pass


@dataclass(frozen=True)
class FollowRoutine:
    pass


Intent = StopWalking | Answer | AnswerAsleep | Hold | Generate | Choose | EndConversation | FollowRoutine
