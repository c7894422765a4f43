"""The engine's prefill, mixed into `Engine` (engine.py) as `Prefilling`:
plan one batched prefill (the filling row's next chunk, then the newly
admitted requests, the last of which may take only part of its prompt and
become the filling row), run it (stopping between layers when a reply to a
person arrives), roll it back when interrupted, and sample the first token
of each row whose prompt is complete.
"""
from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import torch

from .api import Status
from .bans import ban_sequences
from .batch import RunningBatch, Seq
from .forward import Forward
from .jobs import Done, Event, GenerateRequest, failed
from .kv import PrefixCache, PrefixEntry, common_prefix_len
from .llama import PrefillInterrupted
from .sampling import TextState, make_generator
from .scheduler import Queued, Scheduler

Step = Generator["torch.cuda.Event", None, None]   # yields where it must wait for the device


@dataclass
class _Prefill:
    """One batched prefill over contiguous rows from `first_row`: seqs[i] gets
    tails[i] at positions starts[i]..."""
    seqs: list[Seq]
    tails: list[list[int]]
    starts: list[int]
    first_row: int
    admitted: list[Queued]                   # what goes back to the queue if it is interrupted
    saved: tuple[list[Seq], Seq | None]      # the batch before it
    parked: Seq | None                       # a filling row moved past the new rows


class Prefilling:
    # What the prefill uses of the engine (set up by Engine.__init__).
    tok: Any
    device: Any
    fw: Forward
    policy: str
    max_seq_len: int
    batch: RunningBatch
    prefixes: PrefixCache
    scheduler: Scheduler
    interrupted: int
    interrupt: Callable[[], None] | None
    _events: list[Event]
    _prefix_kvs: Callable[[list[tuple[list[int], PrefixEntry | None, int]]], list[tuple[torch.Tensor, torch.Tensor]]]
    prefix: Callable[[str | None], PrefixEntry | None]
    _sample: Callable[[torch.Tensor, list[Seq]], torch.Tensor]
    _sync: Callable[[torch.Tensor], Step]
    _on_token: Callable[[Seq, int], None]

    def _plan_prefill(self, admitted: list[Queued], chunk: tuple[Seq, int] | None, budget: int
                      ) -> _Prefill | None:
        """Rows for the filling row's next chunk (if any), then the new requests,
        the last of which may take only part of its prompt (the rest of
        `budget`) and become the filling row. A filling row not continued this
        step (a person's reply went first) is parked past the new rows."""
        batch, valid = self.batch, []
        for q in admitted:
            ids, req = self.scheduler.tokens(q), q.req
            assert isinstance(req, GenerateRequest)
            if not ids or len(ids) + req.max_new_tokens > self.max_seq_len:
                msg = f"prompt of {len(ids)} tokens + {req.max_new_tokens} new exceeds {self.max_seq_len}"
                self._events.append(Done(q.job_id, failed(req.kind, Status.ERROR, msg if ids else "empty prompt",
                                                          req.submitted)))
            else:
                valid.append(q)
        saved = batch.snapshot()
        parked = batch.park_filling(len(valid)) if batch.filling is not None and chunk is None and valid else None
        plan = _Prefill([], [], [], len(batch) - (1 if chunk is not None else 0), valid, saved, parked)
        if chunk is not None:
            seq, n = chunk
            plan.seqs.append(seq)
            plan.tails.append(seq.ids[seq.length:seq.length + n])
            plan.starts.append(seq.length)
        # the new prefixes (a crowd's context at each NPC) in one forward, not one each
        self.prefixes.fill([q.req.prefix for q in valid if q.req.prefix], self.scheduler.encode,
                           self._prefix_kvs, self.max_seq_len)
        for q in valid:
            req, ids = q.req, self.scheduler.tokens(q)
            assert isinstance(req, GenerateRequest)
            entry, start = self.prefix(req.prefix), 0
            if entry is not None:
                start = min(common_prefix_len(entry.ids, ids), len(ids) - 1)
                batch.kv.ensure_capacity(start + 1)
                batch.kv.load_prefix(len(batch), entry.k, entry.v, start)
            gen = make_generator(req.seed, self.device) if req.temperature > 0 else None
            seq = Seq(req, len(ids), start, TextState(self.tok, tuple(req.stop), req.sentences), gen, ids=ids,
                      bans=ban_sequences(self.tok, req.ban) if req.ban else ())
            tail = ids[start:]
            may_fill = parked is None and not seq.urgent and (batch.filling is None or chunk is not None)
            if len(tail) > budget and may_fill:
                tail = tail[:max(budget, 1)]
                batch.filling = seq
            budget -= len(tail)
            batch.rows.append(seq)
            plan.seqs.append(seq)
            plan.tails.append(tail)
            plan.starts.append(start)
        if parked is not None:
            batch.unpark(parked)
        return plan if plan.seqs else None

    def _run_prefill(self, plan: _Prefill) -> torch.Tensor | None:
        """The forward: -> last hidden state of each row [n, hidden], or None if a
        reply to a person arrived meanwhile (priority policy, NPC work only)."""
        arrived = self.scheduler.urgent_submitted
        check = None if self.interrupt is None or self.policy != "priority" or any(s.urgent for s in plan.seqs) \
            else (lambda: self.interrupt() or self.scheduler.urgent_submitted != arrived)  # type: ignore[misc]
        try:
            return self.fw.prefill(self.batch.kv, plan.first_row, plan.tails, plan.starts, interrupted=check)
        except PrefillInterrupted:
            return None

    def _roll_back(self, plan: _Prefill) -> None:
        """Undo an interrupted prefill: nothing advanced (keys/values written so
        far are rewritten identically later); its requests go back in the queue."""
        self.batch.restore(plan.saved, plan.parked)
        for q in plan.admitted:
            self.scheduler.requeue(q)
        self.interrupted += 1

    def _first_tokens(self, plan: _Prefill, hidden: torch.Tensor) -> Step:
        for seq, tail in zip(plan.seqs, plan.tails):
            seq.length += len(tail)
        # a row still filling has no next token yet (and must not draw from its seeded generator)
        done = [i for i, seq in enumerate(plan.seqs) if seq.length == seq.prompt_len]
        if not done:
            return
        ready = [plan.seqs[i] for i in done]
        ids = self._sample(hidden[done] if len(done) < len(plan.seqs) else hidden, ready)
        yield from self._sync(ids)
        for seq, tok in zip(ready, ids.tolist()):
            if seq is self.batch.filling:
                self.batch.filling = None
            self._on_token(seq, tok)
        self.batch.compact()
