"""One NPC's mind: what it remembers, whom it is talking to, what it is
waiting for. The decisions that need the whole village (who is near, the
budgets, the engine) live in `agents/minds.py`; this module holds the
per-NPC state and the small rules that only need that state."""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agents.memory import MemoryStream
from agents.personas import Persona

# Lines from people waiting for this NPC's reply. A person rarely has more
# than one or two questions in flight; older ones past this are dropped
# (the NPC answers the latest) so a chatty crowd cannot queue up minutes.
MAX_PENDING_REPLIES = 3

_conversation_ids = itertools.count(1)


@dataclass
class ConversationLog:
    """A conversation as the transcript shows it; shared by both sides."""
    id: int
    participants: list[str]
    with_player: bool
    started: float  # game minute
    lines: list[tuple[float, str, str]] = field(default_factory=list)  # (minute, speaker, text)
    ended: float | None = None

    @classmethod
    def start(cls, participants: list[str], with_player: bool, minute: float) -> ConversationLog:
        return cls(next(_conversation_ids), participants, with_player, minute)


@dataclass
class Conversation:
    partner: int
    partner_name: str
    with_player: bool
    log: ConversationLog
    my_turn: bool
    next_tick: int = 0  # not before this tick (pacing)
    last_tick: int = 0  # when the last line was said

    @property
    def history(self) -> list[tuple[str, str]]:
        return [(who, text) for _, who, text in self.log.lines]


@dataclass
class PendingJob:
    handle: Any  # agents.inference Handle
    kind: str  # reply, opener, line, farewell, choose, reflect
    context: dict[str, Any]


class Mind:
    def __init__(self, persona: Persona, memory: MemoryStream) -> None:
        self.persona = persona
        self.name = persona.name
        self.memory = memory
        self.entity: int | None = None
        self.job: PendingJob | None = None
        self.replies: deque[tuple[int, str, str]] = deque(maxlen=MAX_PENDING_REPLIES)
        self.conversation: Conversation | None = None
        self.cooldown_until: dict[int, int] = {}  # partner entity -> tick
        self.next_initiative_at = 0.0  # budget clock seconds
        self.activity = persona.routine[0].activity
        self.heading_to: str | None = None
        self.query: tuple[Any, float] | None = None  # (embedding ticket, clock when asked) of a reply's recall

    # -- state questions -----------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.job is not None or self.conversation is not None or bool(self.replies)

    def free_for_chat(self, tick: int, partner: int) -> bool:
        return (self.job is None and self.conversation is None and not self.replies
                and self.cooldown_until.get(partner, 0) <= tick)

    # -- conversation bookkeeping --------------------------------------------
    def begin_conversation(self, partner: int, partner_name: str, with_player: bool,
                           log: ConversationLog, my_turn: bool, tick: int) -> Conversation:
        self.conversation = Conversation(partner, partner_name, with_player, log, my_turn, tick, tick)
        return self.conversation

    def end_conversation(self, tick: int, minute: float, cooldown_ticks: int) -> ConversationLog | None:
        conv = self.conversation
        if conv is None:
            return None
        self.conversation = None
        self.cooldown_until[conv.partner] = tick + cooldown_ticks
        if conv.log.ended is None:
            conv.log.ended = minute
            return conv.log
        return None

    def queue_reply(self, speaker: int, name: str, text: str) -> None:
        for i, (sid, _, _) in enumerate(self.replies):
            if sid == speaker:  # answer the latest line of each person
                del self.replies[i]
                break
        self.replies.append((speaker, name, text))
