"""One NPC's mind: what it remembers, whom it is talking to, what it is
waiting for. The decisions that need the whole village (who is near, the
budgets, the engine) live in `agents/minds.py`; this module holds the
per-NPC state and the small rules that only need that state."""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.events import KnownEvents
from agents.memory import Memory, MemoryStream
from agents.explain import WHY_KEPT, Why
from agents.personas import Persona

# People waiting for this NPC's answer, in arrival order. Each gets one;
# MAX_PARALLEL_REPLIES of them are generated at once (the engine batches
# them, with other NPCs' replies, in one step), the others wait their turn
# and hear a short holding line. 8: a crowd of 30 around 6 NPCs is served
# in one wave of the engine's 32-row batch (with 4 a round, the fifth person
# at each NPC waited a whole second round: p95 ~2x the p50 on the CPU).
# Past MAX_PENDING_REPLIES a newcomer is told at once to come back (a line
# addressed to them, from the persona, no model): at ~10-15 s a wave on the
# 2-core CPU, a 13th person would wait half a minute or more, longer than
# anyone waits for a greeting.
MAX_PENDING_REPLIES = 12
MAX_PARALLEL_REPLIES = 8
# This NPC's recent lines, for the gate's "repeats itself" verdict: a few
# minutes of talk.
RECENT_LINES = 8

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


@dataclass
class WaitingPerson:
    """Someone who addressed this NPC and has not had an answer yet."""
    speaker: int
    name: str
    text: str          # their latest line to the NPC
    since_tick: int    # when they first asked
    held: bool = False  # told to wait (a holding line) already
    attempts: int = 0  # generations refused by the gate so far
    since_s: float = 0.0  # when they first asked, on the minds' clock (seconds)


class Mind:
    def __init__(self, persona: Persona, memory: MemoryStream) -> None:
        self.persona = persona
        self.name = persona.name
        self.memory = memory
        self.entity: int | None = None
        self.job: PendingJob | None = None  # its one job of its own (a line, a choice, a reflection)
        self.waiting: deque[WaitingPerson] = deque()  # bounded by MAX_PENDING_REPLIES (queue_reply)
        self.reply_jobs: dict[int, PendingJob] = {}  # speaker -> its reply in flight
        self.recent_lines: deque[str] = deque(maxlen=RECENT_LINES)
        self.conversation: Conversation | None = None
        self.cooldown_until: dict[int, int] = {}  # partner entity -> tick
        # neighbour entity -> tick: it chose to keep to its work rather than
        # greet them, and does not weigh it again before then (bounded by the
        # NPCs it has met; expired entries go when a new one is added)
        self.weighed_until: dict[int, int] = {}
        self.next_initiative_at = 0.0  # budget clock seconds
        self.activity = persona.routine[0].activity
        self.heading_to: str | None = None
        # (person, their name, place, tick it began): walking someone somewhere (agents/guide.py)
        self.guiding: tuple[int, str, str, int] | None = None
        # person -> the question a teacher asked them (agents/school.py); at
        # most one each, for the people who asked (bounded like `waiting`)
        self.quizzes: dict[int, Any] = {}
        # the game day it last planned (agents/plans.py), and a meeting a
        # person asked for, (name, place, hour), until it decides on it
        self.plan_day = -1
        self.meeting: tuple[str, str, int] | None = None
        # events it heard of (a feast at the tavern at 18:00): plans and news (agents/events.py)
        self.events = KnownEvents()
        # recall query text -> (embedding ticket, clock when asked), one per person being answered
        self.queries: dict[str, tuple[Any, float]] = {}
        # the context shared by the replies to a crowd (agents/replies.py), so
        # that their prompts share a cached prefix; kept while the crowd lasts
        self.crowd_context: str | None = None
        # why it said and did its last things (agents/explain.py), bounded
        self.why: deque[Why] = deque(maxlen=WHY_KEPT)
        self.why_log: list[Why] | None = None  # every Why, when a headless sim asks (bounded by its length)

    # -- state questions -----------------------------------------------------
    @property
    def serving_people(self) -> bool:
        """Someone is waiting for this NPC's answer, or it is being generated."""
        return bool(self.waiting or self.reply_jobs)

    @property
    def busy(self) -> bool:
        return self.job is not None or self.conversation is not None or self.serving_people

    def free_for_chat(self, tick: int, partner: int) -> bool:
        return (self.job is None and self.conversation is None and not self.serving_people
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

    def queue_reply(self, speaker: int, name: str, text: str, tick: int, now_s: float = 0.0) -> str:
        """Someone addressed this NPC. Returns "queued", "updated" (they were
        already waiting: their latest line is answered, keeping their place)
        or "full" (MAX_PENDING_REPLIES are waiting: not queued)."""
        for person in self.waiting:
            if person.speaker == speaker:
                person.text = text
                return "updated"
        if len(self.waiting) + len(self.reply_jobs) >= MAX_PENDING_REPLIES:
            return "full"
        self.waiting.append(WaitingPerson(speaker, name, text, tick, since_s=now_s))
        return "queued"

    def next_to_answer(self) -> WaitingPerson | None:
        """The first person in arrival order whose reply is not in flight."""
        for person in self.waiting:
            if person.speaker not in self.reply_jobs:
                return person
        return None

    def forget_waiting(self, speaker: int) -> None:
        for i, person in enumerate(self.waiting):
            if person.speaker == speaker:
                del self.waiting[i]
                break
        if not self.waiting and not self.reply_jobs:
            self.crowd_context = None  # the crowd has gone: the next one gets a fresh context


def seed_memories(minds: Iterable[Mind], minute: float) -> None:
    """Give each mind with no memories yet its persona's seed memories."""
    for mind in minds:
        if not mind.memory.memories:
            for text in mind.persona.memories:
                mind.memory.add(minute, "seed", text, 5)


def take_unsaved_memories(minds: Iterable[Mind]) -> list[tuple[str, Memory]]:
    """(name, memory) of every memory the minds added since the last call, to
    be written in the tick's transaction (agents/memory_store.py); they are
    then no longer unsaved."""
    out: list[tuple[str, Memory]] = []
    for mind in minds:
        out += [(mind.name, m) for m in mind.memory.unsaved]
        mind.memory.unsaved = []
    return out
