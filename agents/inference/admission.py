"""The engine's queue discipline: which requests start in a step, and when
replies to people take the whole step.

Owns, as a mixin of `Engine` (engine.py), the parts that decide order:
requeueing an interrupted request at its old place, whether a reply to a
person is next, the hold (while such a reply waits or runs, only its rows
decode and nothing else is admitted; one ordinary step every
`max_hold_s`), swapping urgent rows to the front, and admission within a
step's prefill budget (chunking, urgent reserve, batch limit).
"""
from __future__ import annotations

import heapq

from .api import GenerateRequest, Priority
from .kv import common_prefix_len

MIN_CHUNK = 32          # a smaller leftover budget is not worth a chunk: the next step takes it


class Admission:
    def _requeue(self, req) -> None:
        """Back into the queue at its old place (an interrupted prefill)."""
        self.waiting[req.job_id] = req
        heapq.heappush(self._heap, (*req.__dict__["_key"], req.job_id))

    def _urgent_waiting(self) -> bool:
        """A reply to a person is next in the queue (priority policy only)."""
        while self._heap and self._heap[0][-1] not in self.waiting:
            heapq.heappop(self._heap)
        return (self.policy == "priority" and bool(self._heap)
                and self.waiting[self._heap[0][-1]].priority == Priority.HUMAN_REPLY)

    def _holding(self, now: float) -> bool:
        """Whether this step serves only replies to people: while one waits or
        is being generated (priority policy), other rows pause and nothing else
        is admitted or prefilled, so the reply's tokens come at the batch-1 step
        time (~43 ms here, against ~77 ms at 28 rows and ~0.2 s for a step
        with a prefill). Every `max_hold_s` of holding, one ordinary step
        runs, so a stream of people cannot starve the NPCs."""
        if self.policy != "priority" or not (
                any(s.req.priority == Priority.HUMAN_REPLY for s in self.running if s is not self.filling)
                or (self._urgent_waiting() and len(self.running) < self.max_batch)):
            self._hold_since = None
            return False
        if self._hold_since is None:
            self._hold_since = now
        if now - self._hold_since > self.max_hold_s:
            self._hold_since = now
            return False
        return True

    def _gather_urgent(self) -> int:
        """Swap the rows of replies to people to the front; returns how many.
        (The filling row is never one of them, so it stays last.)"""
        urgent = [s.req.priority == Priority.HUMAN_REPLY and s is not self.filling for s in self.running]
        u = sum(urgent)
        back = [i for i in range(u, len(self.running)) if urgent[i]]
        for i in range(u):
            if not urgent[i]:
                j = back.pop()
                a, b = self.running[i], self.running[j]
                self.kv.swap_rows(i, j, max(a.length, b.length))
                self.running[i], self.running[j] = b, a
        return u

    def _admit(self, budget: int, may_chunk: bool, started: bool, urgent_only: bool = False) -> list:
        """Requests to start this step, in queue order, within `budget` prefill
        tokens. The first request is taken whatever its size (unless `started`:
        a chunk already uses part of the budget); with may_chunk, a
        generation that does not fit what is left (at least MIN_CHUNK) starts as
        the chunked filling row, unless it is a reply to a person."""
        admitted, rows = [], len(self.running)
        while self._heap:
            job_id = self._heap[0][-1]
            req = self.waiting.get(job_id)
            if req is None:
                heapq.heappop(self._heap)
                continue
            if urgent_only and req.priority != Priority.HUMAN_REPLY:
                break
            is_gen = isinstance(req, GenerateRequest)
            limit = self.max_batch if req.priority == Priority.HUMAN_REPLY else self.max_batch - self.urgent_reserve
            if is_gen and rows >= limit:
                break
            cost = self._prefill_cost(req)
            chunked = (may_chunk and cost > budget and is_gen and req.priority != Priority.HUMAN_REPLY
                       and (budget >= MIN_CHUNK or not (admitted or started)))
            if cost > budget and not chunked and (admitted or started):
                break
            heapq.heappop(self._heap)
            del self.waiting[job_id]
            budget -= cost
            rows += is_gen
            admitted.append(req)
            if chunked:
                break          # the filling row must be the last row
        return admitted

    def _prefill_cost(self, req) -> int:
        """Tokens this request would prefill, after what the prefix cache already holds."""
        ids = self._encode(req)
        entry = self.prefixes.entries.get(req.prefix) if req.prefix else None
        n = len(ids) if isinstance(req, GenerateRequest) else len(ids) * max(1, len(req.candidates))
        return n - (common_prefix_len(entry.ids, ids) if entry is not None else 0)

    def _encode(self, req) -> list[int]:
        # Admission looks at a request's tokens before prefill does; encode once.
        ids = req.__dict__.get("_ids")
        if ids is None:
            ids = req.__dict__["_ids"] = self.tok(req.prompt)["input_ids"]
        return ids
