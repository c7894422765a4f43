"""The engine's queue discipline: which requests start in a step, and when
replies to people take the whole step.

Owns `Scheduler`, which the engine holds (engine.py): the bounded waiting
queue (priority or FIFO, a heap over `Queued` entries, each keeping its
heap key and its prompt's tokens, so an interrupted request goes back at
its old place without re-encoding), expiry of waiting requests, the hold
(while a reply to a person waits or runs, only its rows decode and nothing
else is admitted; every `max_hold_s` one step that decodes every row but
admits no NPC work while a reply runs, and every FULL_RELEASE_EVERY-th
such step an ordinary one), and admission
within a step's prefill token budget (chunking, urgent reserve, batch limit).
It knows nothing of the running rows beyond counts the engine passes in.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from .api import Priority
from .jobs import GenerateRequest, Request
from .kv import PrefixCache, common_prefix_len

MIN_CHUNK = 32          # a smaller leftover budget is not worth a chunk: the next step takes it
# While replies to people run, the hold lets NPC rows decode every max_hold_s,
# but that step admits and prefills no NPC work (a decode step of ~30 rows
# takes ~0.15 s here, one with an NPC prefill 1-3 s: measured on the 2-core
# CPU, that step was the slow tail of a person's reply); every this-many such
# steps an ordinary one admits NPC work, so a stream of people cannot starve
# it (with max_hold_s 2, one in ~8 s).
FULL_RELEASE_EVERY = 4


@dataclass(eq=False)
class Queued:
    """A request in (or taken from) the queue."""
    req: Request
    key: tuple[int, ...]          # heap order: (priority, arrival), or (arrival,) under FIFO
    ids: list[int] | None = None  # the prompt's tokens, once encoded
    extra: int | None = None      # a score's candidates' tokens, once encoded

    @property
    def job_id(self) -> int:
        return self.req.job_id

    @property
    def urgent(self) -> bool:
        return self.req.priority == Priority.HUMAN_REPLY

    @property
    def generates(self) -> bool:
        return isinstance(self.req, GenerateRequest)


class Scheduler:
    def __init__(self, encode: Callable[[str], list[int]], prefixes: PrefixCache, *, policy: str,
                 max_queue: int, max_batch: int, urgent_reserve: int, max_hold_s: float):
        # urgent_reserve: rows only HUMAN_REPLY may take, so a person is never
        #   queued behind a full batch of NPC small talk.
        # max_hold_s: a reply to a person (<= ~24 tokens) takes ~1 s alone, so
        #   one ordinary step every 2 s of replies keeps NPCs going while
        #   rarely touching a reply.
        self.encode, self.prefixes = encode, prefixes
        self.policy, self.max_queue, self.max_batch = policy, max_queue, max_batch
        self.urgent_reserve = min(urgent_reserve, max_batch - 1) if policy == "priority" else 0
        self.max_hold_s = max_hold_s
        self.waiting: dict[int, Queued] = {}
        self._heap: list[tuple[int, ...]] = []      # (*key, job_id); entries not in `waiting` are stale
        self._order = itertools.count()
        self._hold_since: float | None = None
        self._releases = 0                          # lean releases since the last ordinary step
        self.lean = False                           # this step: decode every row, admit no NPC work
        self.urgent_submitted = 0                   # replies to people ever queued (the interrupt watches it)

    def __len__(self) -> int:
        return len(self.waiting)

    # -- the queue ---------------------------------------------------------------
    def push(self, req: Request) -> bool:
        """Queue a request; False if the queue is full."""
        if len(self.waiting) >= self.max_queue:
            return False
        key = (int(req.priority), next(self._order)) if self.policy == "priority" else (next(self._order),)
        self.requeue(Queued(req, key))
        if req.priority == Priority.HUMAN_REPLY:
            self.urgent_submitted += 1
        return True

    def requeue(self, q: Queued) -> None:
        """(Back) into the queue at its place (an interrupted prefill keeps its old key)."""
        self.waiting[q.job_id] = q
        heapq.heappush(self._heap, (*q.key, q.job_id))

    def remove(self, job_id: int) -> Queued | None:
        return self.waiting.pop(job_id, None)

    def expired(self, now: float) -> list[Queued]:
        """Take out the waiting requests whose deadline has passed."""
        gone = [q for q in self.waiting.values() if q.req.deadline is not None and now > q.req.deadline]
        for q in gone:
            del self.waiting[q.job_id]
        return gone

    def tokens(self, q: Queued) -> list[int]:
        """The prompt's tokens (admission looks at them before prefill does; encoded once)."""
        if q.ids is None:
            q.ids = self.encode(q.req.prompt)
        return q.ids

    def _head(self) -> Queued | None:
        while self._heap and self._heap[0][-1] not in self.waiting:
            heapq.heappop(self._heap)
        return self.waiting[self._heap[0][-1]] if self._heap else None

    # -- the policy ----------------------------------------------------------------
    def urgent_next(self) -> bool:
        """A reply to a person is next in the queue (priority policy only)."""
        head = self._head() if self.policy == "priority" else None
        return head is not None and head.urgent

    def holding(self, now: float, urgent_running: bool, rows: int, npc_rows: bool = True) -> bool:
        """Whether this step serves only replies to people: while one waits or
        is being generated (priority policy), other rows pause and nothing else
        is admitted or prefilled, so the reply's tokens come at the batch-1 step
        time (~43 ms here, against ~77 ms at 28 rows and ~0.2 s for a step
        with a prefill). Every `max_hold_s` of holding, one step lets the
        NPCs' work go on, so a stream of people cannot starve the NPCs; unless
        there is no NPC work (`npc_rows`: rows of theirs running; or queued),
        when it would only shrink the step's prefill budget for the people
        waiting. While a reply is being generated, that step is `lean` (NPC
        rows decode; no NPC work is admitted or prefilled, nor a score or a
        prefix computed: those would stall the reply for a second or more),
        except every FULL_RELEASE_EVERY-th time."""
        self.lean = False
        if self.policy != "priority" or not (urgent_running or (self.urgent_next() and rows < self.max_batch)):
            self._hold_since = None
            self._releases = 0
            return False
        if self._hold_since is None:
            self._hold_since = now
        if now - self._hold_since > self.max_hold_s and (npc_rows or self._npc_waiting()):
            self._hold_since = now
            if urgent_running:
                self._releases = (self._releases + 1) % FULL_RELEASE_EVERY
                self.lean = self._releases != 0
            return False
        return True

    def _npc_waiting(self) -> bool:
        return any(not q.urgent for q in self.waiting.values())

    def admit(self, budget: int, rows: int, *, may_chunk: bool, started: bool,
              urgent_only: bool = False) -> list[Queued]:
        """Requests to start this step, in queue order, within `budget` prefill
        tokens, given `rows` running. The first request is taken whatever its
        size (unless `started`: a chunk already uses part of the budget); with
        may_chunk, a generation that does not fit what is left (at least
        MIN_CHUNK) starts as the chunked filling row, unless it is a reply to
        a person."""
        admitted: list[Queued] = []
        paid: dict[str, int] = {}
        while (q := self._head()) is not None:
            if urgent_only and not q.urgent:
                break
            limit = self.max_batch if q.urgent else self.max_batch - self.urgent_reserve
            if q.generates and rows >= limit:
                break
            cost = self._prefill_cost(q, paid)
            chunked = (may_chunk and cost > budget and q.generates and not q.urgent
                       and (budget >= MIN_CHUNK or not (admitted or started)))
            if cost > budget and not chunked and (admitted or started):
                break
            heapq.heappop(self._heap)
            del self.waiting[q.job_id]
            budget -= cost
            rows += q.generates
            admitted.append(q)
            if chunked:
                break          # the filling row must be the last row
        return admitted

    def _prefill_cost(self, q: Queued, paid: dict[str, int]) -> int:
        """Tokens this request would prefill, after what the prefix cache
        already holds. A prefix not yet cached is computed from the longest
        cached one it extends, once a step: `paid` holds the token counts of
        those already counted this step (a crowd's replies share one)."""
        ids = self.tokens(q)
        n = len(ids)
        if not q.generates:        # the prompt once (scoring.py), then each candidate's own tokens
            if q.extra is None:
                q.extra = sum(len(self.encode(c)) for c in q.req.candidates)  # type: ignore[union-attr]
            n += q.extra
        text = q.req.prefix
        if not text:
            return n
        entry = self.prefixes.entries.get(text)
        if entry is not None:
            return n - common_prefix_len(entry.ids, ids)
        if text in paid:
            return n - paid[text]
        _, base, cached = self.prefixes.base_for(text, ids)
        paid[text] = common_prefix_len(self.encode(text), ids)
        return n - cached
