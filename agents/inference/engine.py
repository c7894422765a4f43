"""The step-able continuous batcher.

Owns: one step (decode every running row, then prefill what starts),
sampling, finishing rows, cancellation, deadlines of running rows, the
prefix cache and scoring. The prefill itself (planned, run, rolled back
when interrupted, first tokens) is mixed in from prefill.py
(`Prefilling`). It composes a `Scheduler` (scheduler.py: the waiting
queue, admission, the hold for replies to people) and a `RunningBatch`
(batch.py: which sequence owns which row of the `SlotKV`).

Chunked prefill: a prompt longer than what is left of a step's prefill
budget is prefilled over several steps (at most one such "filling" row at a
time, always the last row, so the rows being decoded stay one contiguous
block). A step therefore lasts about as long as `prefill_tokens` tokens
take, and a person's reply arriving meanwhile waits at most that long.
Replies to people (HUMAN_REPLY) are never chunked.

Priority policy: while a reply to a person waits or runs, only such rows
decode (the others pause, caches intact; Scheduler.holding), and a prefill
of other work stops between layers when one arrives (`interrupt`, set by
the runner), its requests going back to the queue. FIFO shares every step.

`step()` is synchronous and returns events (`Piece`, `Done`: jobs.py).
`step_iter()` is the same step as a generator that yields at each point
where it must read results back from the device, so a CUDA runner can poll
an event instead of blocking (see backend.py).
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .api import ScoreResult, Status
from .bans import banned_next, mask_banned
from .blockweights import BLOCK_ROWS
from .batch import RunningBatch, Seq
from .forward import Forward
from .jobs import Done, Event, Piece, Request, ScoreRequest, failed
from .kv import PrefixCache, PrefixEntry, SlotKV
from .prefill import Prefilling, Step
from .sampling import sample
from .scheduler import Scheduler
from .scoring import score

# A step that serves only replies to people may prefill this many times the
# usual budget (4 x 256 tokens: about four replies' prompts at once).
URGENT_PREFILL_FACTOR = 4


class Engine(Prefilling):
    def __init__(self, loaded, *, max_batch: int = 32, max_queue: int = 256, max_seq_len: int = 2048,
                 prefill_tokens: int = 256, prefix_entries: int = 64, policy: str = "priority",
                 urgent_reserve: int = 4, max_hold_s: float = 2.0, int8_decode_rows: int = 0,
                 block_rows: int = BLOCK_ROWS):
        # max_batch 32: past ~32 rows a 135M model on CPU gains little throughput per row
        #   while every row's step gets slower; a GPU deployment raises it.
        # max_queue 256: ~8 batches of backlog; beyond that an NPC line would be
        #   stale before it starts, so callers get "overloaded" and show "thinking".
        # prefill_tokens 256: bounds one step's prefill (tokens not found in the prefix
        #   cache; longer prompts are chunked), so a step takes ~0.2-0.3 s on the
        #   CPU: running rows keep streaming and a person's reply waits at most that
        #   long to start. (512 made 0.5-0.9 s steps; 128 cut bench/inference's
        #   throughput by ~25%; 256 and 512 measured the same within noise.)
        # urgent_reserve 4, max_hold_s 2.0: see Scheduler.
        # int8_decode_rows: see Forward; load_llm turns it on for the CPU (4: from
        #   ~8 rows up the int8 kernel loses its lead over bf16 on this CPU).
        self.tok, self.device = loaded.tokenizer, loaded.device
        # block_rows: steps of up to this many token rows read the weights' exact
        #   block forms where the model's weights are of that form (blockweights.py:
        #   a one-row step ~59 -> ~25 ms for the embedded model on the AVX2 CPU); 0: never.
        self.fw = Forward(loaded.model, loaded.device, int8_rows=int8_decode_rows, block_rows=block_rows)
        self.prefill_tokens, self.policy = prefill_tokens, policy
        limit = getattr(loaded.model.config, "max_position_embeddings", max_seq_len) or max_seq_len
        self.max_seq_len = min(max_seq_len, limit)
        self.batch = RunningBatch(SlotKV(self.fw.layers, max_batch, self.fw.kv_heads, self.fw.head_dim,
                                         self.max_seq_len, self.fw.dtype, self.device))
        self.prefixes = PrefixCache(prefix_entries)
        self.scheduler = Scheduler(lambda text: self.tok(text)["input_ids"], self.prefixes, policy=policy,
                                   max_queue=max_queue, max_batch=max_batch, urgent_reserve=urgent_reserve,
                                   max_hold_s=max_hold_s)
        eos = loaded.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos = {e for e in eos + [self.tok.eos_token_id] if e is not None}
        self._cancelled: set[int] = set()
        self._events: list[Event] = []
        self.tokens_total = self.steps = self.interrupted = 0
        # interrupt: set by a runner; takes the messages that arrived meanwhile
        # (submits, cancels) into the engine, so that a prefill of NPC work can
        # stop between layers when a reply to a person comes in (_run_prefill).
        self.interrupt: Callable[[], None] | None = None

    # -- what runners see ---------------------------------------------------------------
    def submit(self, req: Request) -> list[Event]:
        """Queue a request. Returns events at once only if it is refused."""
        if not self.scheduler.push(req):
            return [Done(req.job_id, failed(req.kind, Status.OVERLOADED, "engine queue is full", req.submitted))]
        return []

    def release(self) -> None:
        """Closed: drop the weights' working copies and every cache at once.
        An engine sits in reference cycles (its callbacks), so otherwise its
        ~1 GB waits for the garbage collector (tests make engines by dozens)."""
        self.fw = self.batch = self.prefixes = None  # type: ignore[assignment]

    def cancel(self, job_id: int) -> None:
        self._cancelled.add(job_id)

    def has_work(self) -> bool:
        return bool(self.scheduler.waiting or self.batch.rows or self._cancelled)

    def stats(self) -> dict:
        return {"queue_depth": len(self.scheduler), "running": len(self.batch),
                "filling": int(self.batch.filling is not None), "interrupted": self.interrupted,
                "tokens_total": self.tokens_total, "steps": self.steps,
                "prefix_hits": self.prefixes.hits, "prefix_misses": self.prefixes.misses}

    def prefix(self, text: str | None) -> PrefixEntry | None:
        """The cached keys/values of a shared prompt prefix, computed on a miss
        (None if there is none or it is too short to be worth it)."""
        if not text:
            return None
        def one(ids: list[int], base: PrefixEntry | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
            return self._prefix_kvs([(ids, base, n)])[0]
        return self.prefixes.lookup(text, self.scheduler.encode, one, self.max_seq_len)

    def _prefix_kvs(self, items: list[tuple[list[int], PrefixEntry | None, int]]
                    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Keys/values of prefixes [L, H, T, D], each reusing its base's first n
        positions (or from nothing), in one forward (`Forward.dense_rows`)."""
        pasts = [None if base is None else (base.k[:, :, :n], base.v[:, :, :n]) for _, base, n in items]
        new = self.fw.dense_rows([ids[n:] for ids, _, n in items], pasts)
        return [(nk, nv) if past is None else (torch.cat([past[0], nk], dim=2), torch.cat([past[1], nv], dim=2))
                for past, (nk, nv) in zip(pasts, new)]

    def score(self, req: ScoreRequest) -> ScoreResult:
        """Score a request's candidates now (one batched forward)."""
        try:
            return score(self.fw, self.tok, req, self.prefix(req.prefix), self.max_seq_len)
        except Exception as exc:  # a bad request must not take the engine down
            return ScoreResult([], Status.ERROR, time.monotonic() - req.submitted, f"{type(exc).__name__}: {exc}")

    # -- the step ---------------------------------------------------------------------
    def step(self) -> list[Event]:
        for _ in self.step_iter():
            pass
        return self.take_events()

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def step_iter(self) -> Step:
        self.steps += 1
        now = time.monotonic()
        self._expire(now)
        sched, batch = self.scheduler, self.batch
        hold = sched.holding(now, batch.urgent_running(), len(batch), any(not s.urgent for s in batch.rows))
        rows = batch.rows[:batch.gather_urgent()] if hold else batch.decoding()
        if rows:
            hidden = self.fw.decode(batch.kv, [s.gen_ids[-1] for s in rows], [s.length for s in rows],
                                    longest=batch.longest())                   # [n, hidden]
            ids = self._sample(hidden, rows)
            yield from self._sync(ids)
            for seq, tok in zip(rows, ids.tolist()):
                seq.length += 1
                self._on_token(seq, tok)
            batch.compact()
        # While people wait (a hold), their replies are prefilled together: a
        # crowd's replies start in a few steps rather than one a step, and one
        # larger prefill uses the matmuls better than many small ones.
        budget = self.prefill_tokens * (URGENT_PREFILL_FACTOR if hold else 1)
        chunk, fill, urgent_only = None, batch.filling, hold or sched.lean
        if fill is not None and not urgent_only and not sched.urgent_next():
            n = min(budget, fill.prompt_len - fill.length)   # the filling row's next chunk comes first
            chunk, budget = (fill, n), budget - n
        still_filling = fill is not None and (chunk is None or chunk[1] < fill.prompt_len - fill.length)
        admitted = [] if chunk is not None and still_filling else sched.admit(
            budget, len(batch), may_chunk=not still_filling, started=chunk is not None, urgent_only=urgent_only)
        scores = [q for q in admitted if not q.generates]
        gens = [q for q in admitted if q.generates]
        if gens or chunk is not None:
            plan = self._plan_prefill(gens, chunk, budget)
            if plan is not None:
                last = self._run_prefill(plan)                                  # [n, hidden]
                if last is None:           # a person's reply came in: it goes first next step
                    self._roll_back(plan)
                    for q in scores:
                        sched.requeue(q)
                    return
                yield from self._first_tokens(plan, last)
        for q in scores:
            assert isinstance(q.req, ScoreRequest)
            self._events.append(Done(q.job_id, self.score(q.req)))

    def _sync(self, ids: torch.Tensor) -> Step:
        if ids.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
            yield event

    def _sample(self, hidden: torch.Tensor, seqs: list[Seq]) -> torch.Tensor:
        logits = self.fw.logits(hidden)                                        # [n, vocab]
        if any(s.bans for s in seqs):
            mask_banned(logits, [banned_next(s.gen_ids, s.bans) for s in seqs])
        ids = sample(logits, [s.req.temperature for s in seqs], [s.req.top_p for s in seqs],
                     [s.generator for s in seqs])                              # [n]
        return ids.to("cpu", non_blocking=True)

    def _on_token(self, seq: Seq, tok: int) -> None:
        self.tokens_total += 1
        piece, reason = seq.add_token(tok, self.eos)
        if piece and seq.req.stream:
            self._events.append(Piece(seq.req.job_id, piece))
        if reason is not None:
            self._complete(seq, Status.OK, reason)

    def _complete(self, seq: Seq, status: str, reason: str | None, error: str | None = None) -> None:
        self._cancelled.discard(seq.req.job_id)
        tail, result = seq.finish(status, reason, error, self.eos)
        if tail and seq.req.stream and status == Status.OK:
            self._events.append(Piece(seq.req.job_id, tail))
        self._events.append(Done(seq.req.job_id, result))

    def _expire(self, now: float) -> None:
        for job_id in list(self._cancelled):
            q = self.scheduler.remove(job_id)
            if q is not None:
                self._events.append(Done(job_id, failed(q.req.kind, Status.CANCELLED, None, q.req.submitted)))
                self._cancelled.discard(job_id)
        for q in self.scheduler.expired(now):
            self._events.append(Done(q.job_id, failed(q.req.kind, Status.DEADLINE, "deadline passed while queued",
                                                      q.req.submitted)))
        for seq in self.batch.rows:
            if seq.req.job_id in self._cancelled:
                self._complete(seq, Status.CANCELLED, None)
            elif seq.req.deadline is not None and now > seq.req.deadline:
                self._complete(seq, Status.DEADLINE, None, "deadline passed while generating")
        self._cancelled.intersection_update(self.scheduler.waiting.keys() | {s.req.job_id for s in self.batch.rows})
        self.batch.compact()
