"""The step-able continuous batcher.

Owns: the waiting queue (priority or FIFO, bounded), the running batch
(rows of a `SlotKV`), one decode step for every running row, prefill,
finishing rows and freeing them at once, deadlines, cancellation, the
prefix cache, and scoring. Which requests start in a step (admission with
a prefill token budget, the hold for replies to people) is admission.py.

Chunked prefill: a prompt longer than what is left of a step's prefill
budget is prefilled over several steps (at most one such "filling" row at a
time, always the last row, so the rows being decoded stay one contiguous
block). A step therefore lasts about as long as `prefill_tokens` tokens
take, and a person's reply arriving meanwhile waits at most that long.
Replies to people (HUMAN_REPLY) are never chunked.

Priority policy: while a reply to a person waits or is being generated,
the step serves only such replies (their rows are swapped to the front; the
others pause with their caches intact, and nothing else is admitted), with
one ordinary step every `max_hold_s`; and a prefill of other work stops
between layers when such a reply arrives (`interrupt`, set by the runner),
its requests going back to the queue. FIFO policy shares every step.

`step()` is synchronous and returns events: ("piece", job_id, text) and
("done", job_id, result). `step_iter()` is the same step as a generator
that yields at each point where it must read results back from the device,
so a CUDA runner can poll an event instead of blocking (see cuda.py).
"""
from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .admission import Admission
from .api import GenerateRequest, GenerationResult, Priority, ScoreRequest, ScoreResult, Status
from .forward import Forward
from .kv import PrefixCache, PrefixEntry, SlotKV, common_prefix_len
from .llama import PrefillInterrupted
from .sampling import TextState, make_generator, sample
from .scoring import score_request

MIN_PREFIX_TOKENS = 8   # shorter shared prefixes are cheaper to recompute than to copy


@dataclass
class _Seq:
    req: GenerateRequest
    prompt_len: int
    length: int                      # tokens whose keys/values are in the row
    text: TextState
    generator: torch.Generator | None
    gen_ids: list[int] = field(default_factory=list)
    first_token_at: float | None = None
    ids: list[int] = field(default_factory=list)   # the prompt's tokens


class Engine(Admission):
    def __init__(self, loaded, *, max_batch: int = 32, max_queue: int = 256, max_seq_len: int = 2048,
                 prefill_tokens: int = 256, prefix_entries: int = 64, policy: str = "priority",
                 urgent_reserve: int = 4, max_hold_s: float = 2.0, int8_decode_rows: int = 0):
        # max_batch 32: past ~32 rows a 135M model on CPU gains little throughput per row
        #   while every row's step gets slower; a GPU deployment raises it.
        # max_queue 256: ~8 batches of backlog; beyond that an NPC line would be
        #   stale before it starts, so callers get "overloaded" and show "thinking".
        # prefill_tokens 256: bounds one step's prefill (tokens not found in the prefix
        #   cache; longer prompts are chunked), so a step takes ~0.2-0.3 s on the
        #   CPU: running rows keep streaming and a person's reply waits at most that
        #   long to start. (512 made 0.5-0.9 s steps; 128 cut bench/inference's
        #   throughput by ~25%; 256 and 512 measured the same within noise.)
        # urgent_reserve 4: rows only HUMAN_REPLY may take, so a person is never
        #   queued behind a full batch of NPC small talk.
        # max_hold_s 2.0: a reply to a person (<= ~24 tokens) takes ~1 s alone,
        #   so one ordinary step every 2 s of replies keeps NPCs going while
        #   rarely touching a reply.
        self.loaded, self.tok = loaded, loaded.tokenizer
        self.max_hold_s, self._hold_since = max_hold_s, None
        # int8_decode_rows: see Forward; load_llm turns it on for the CPU (4: from
        #   ~8 rows up the int8 kernel loses its lead over bf16 on this CPU).
        self.fw = Forward(loaded.model, loaded.device, int8_rows=int8_decode_rows)
        self.device = loaded.device
        self.max_batch, self.max_queue = max_batch, max_queue
        self.prefill_tokens, self.policy = prefill_tokens, policy
        self.urgent_reserve = min(urgent_reserve, max_batch - 1) if policy == "priority" else 0
        limit = getattr(loaded.model.config, "max_position_embeddings", max_seq_len) or max_seq_len
        self.max_seq_len = min(max_seq_len, limit)
        self.kv = SlotKV(self.fw.layers, max_batch, self.fw.kv_heads, self.fw.head_dim,
                         self.max_seq_len, self.fw.dtype, self.device)
        self.prefixes = PrefixCache(prefix_entries)
        eos = loaded.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos = {e for e in eos + [self.tok.eos_token_id] if e is not None}
        self.waiting: dict[int, GenerateRequest | ScoreRequest] = {}
        self._heap: list[tuple] = []
        self._order = itertools.count()
        self.running: list[_Seq] = []    # row i of self.kv <-> running[i]
        self.filling: _Seq | None = None  # running[-1] while its prompt is prefilled in chunks
        self._cancelled: set[int] = set()
        self._events: list[tuple] = []
        self.tokens_total = 0
        self.steps = 0
        # interrupt: set by a runner; takes the messages that arrived meanwhile
        # (submits, cancels) into the engine, so that a prefill of NPC work can
        # stop between layers when a reply to a person comes in (see _prefill).
        self.interrupt: Callable[[], None] | None = None
        self.urgent_submitted = 0
        self.interrupted = 0

    # -- submission ---------------------------------------------------------
    def submit(self, req: GenerateRequest | ScoreRequest) -> list[tuple]:
        """Queue a request. Returns events at once only if it is refused."""
        if len(self.waiting) >= self.max_queue:
            return [("done", req.job_id, _failed(req, Status.OVERLOADED, "engine queue is full"))]
        self.waiting[req.job_id] = req
        key = (int(req.priority), next(self._order)) if self.policy == "priority" else (next(self._order),)
        req.__dict__["_key"] = key
        heapq.heappush(self._heap, (*key, req.job_id))
        if req.priority == Priority.HUMAN_REPLY:
            self.urgent_submitted += 1
        return []

    def cancel(self, job_id: int) -> None:
        self._cancelled.add(job_id)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running or self._cancelled)

    def stats(self) -> dict:
        return {"queue_depth": len(self.waiting), "running": len(self.running),
                "filling": int(self.filling is not None), "interrupted": self.interrupted,
                "tokens_total": self.tokens_total, "steps": self.steps,
                "prefix_hits": self.prefixes.hits, "prefix_misses": self.prefixes.misses}

    # -- the step -------------------------------------------------------------
    def step(self) -> list[tuple]:
        for _ in self.step_iter():
            pass
        return self.take_events()

    def take_events(self) -> list[tuple]:
        events, self._events = self._events, []
        return events

    def step_iter(self):
        self.steps += 1
        now = time.monotonic()
        self._expire(now)
        hold = self._holding(now)
        rows = self.running[:-1] if self.filling is not None else self.running
        if hold:
            rows = self.running[:self._gather_urgent()]
        if rows:
            longest = max(s.length for s in self.running)
            hidden = self.fw.decode(self.kv, [s.gen_ids[-1] for s in rows], [s.length for s in rows],
                                    longest=longest)
            ids = self._sample(hidden, rows)
            yield from self._sync(ids)
            for seq, tok in zip(rows, ids.tolist()):
                seq.length += 1
                self._on_token(seq, tok)
            self._free_finished()
        budget, chunk = self.prefill_tokens, None
        seq = self.filling
        if seq is not None and not hold and not self._urgent_waiting():
            n = min(budget, seq.prompt_len - seq.length)   # the filling row's next chunk comes first
            chunk, budget = (seq, n), budget - n
        still_filling = seq is not None and (chunk is None or chunk[1] < seq.prompt_len - seq.length)
        admitted = [] if chunk is not None and still_filling else \
            self._admit(budget, may_chunk=not still_filling, started=chunk is not None, urgent_only=hold)
        scores = [r for r in admitted if isinstance(r, ScoreRequest)]
        gens = [r for r in admitted if isinstance(r, GenerateRequest)]
        if gens or chunk is not None:
            interrupted = yield from self._prefill(gens, chunk, budget)
            if interrupted:            # a person's reply came in: it goes first next step
                for req in scores:
                    self._requeue(req)
                return
        for req in scores:
            self._finish_score(req)

    def _sync(self, ids: torch.Tensor):
        if ids.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
            yield event
        return None

    def _sample(self, hidden: torch.Tensor, seqs: list[_Seq]) -> torch.Tensor:
        logits = self.fw.logits(hidden)                                        # [n, vocab]
        ids = sample(logits, [s.req.temperature for s in seqs], [s.req.top_p for s in seqs],
                     [s.generator for s in seqs])
        return ids.to("cpu", non_blocking=True)

    def _on_token(self, seq: _Seq, tok: int) -> None:
        now = time.monotonic()
        if seq.first_token_at is None:
            seq.first_token_at = now
        self.tokens_total += 1
        seq.gen_ids.append(tok)
        reason = None
        if tok in self.eos:
            reason = "stop"
        else:
            piece = seq.text.update(seq.gen_ids)
            if piece and seq.req.stream:
                self._events.append(("piece", seq.req.job_id, piece))
            if seq.text.stopped:
                reason = "stop"
            elif len(seq.gen_ids) >= seq.req.max_new_tokens:
                reason = "length"
        if reason is not None:
            self._complete(seq, Status.OK, reason)

    def _complete(self, seq: _Seq, status: str, reason: str | None, error: str | None = None) -> None:
        if seq.req.job_id in self._cancelled:
            self._cancelled.discard(seq.req.job_id)
        tail = seq.text.flush()
        if tail and seq.req.stream and status == Status.OK:
            self._events.append(("piece", seq.req.job_id, tail))
        now = time.monotonic()
        ids = [t for t in seq.gen_ids if t not in self.eos]
        result = GenerationResult(
            text=seq.text.text, token_ids=ids, status=status, finish_reason=reason,
            ttft_s=None if seq.first_token_at is None else seq.first_token_at - seq.req.submitted,
            latency_s=now - seq.req.submitted, error=error, prompt_tokens=seq.prompt_len)
        self._events.append(("done", seq.req.job_id, result))
        seq.length = -1      # marks the row free

    def _free_finished(self) -> None:
        """Compact: move the last live row into each freed row (one row copy
        each); the filling row, if any, stays the last row."""
        rows = self.running
        filling = self.filling if self.filling is not None and self.filling.length >= 0 else None
        self.filling = filling
        if filling is not None:
            old_row = len(rows) - 1
            rows.pop()
        while rows and rows[-1].length < 0:
            rows.pop()
        for i in range(len(rows)):
            if i >= len(rows):
                break
            if rows[i].length < 0:
                last = rows.pop()                    # live: the freed tail was trimmed
                self.kv.move_row(len(rows), i, last.length)
                rows[i] = last
                while rows and rows[-1].length < 0:
                    rows.pop()
        if filling is not None:
            if len(rows) != old_row:
                self.kv.move_row(old_row, len(rows), filling.length)
            rows.append(filling)

    def _expire(self, now: float) -> None:
        for job_id in list(self._cancelled):
            req = self.waiting.pop(job_id, None)
            if req is not None:
                self._events.append(("done", job_id, _failed(req, Status.CANCELLED, None)))
                self._cancelled.discard(job_id)
        for job_id, req in list(self.waiting.items()):
            if req.deadline is not None and now > req.deadline:
                del self.waiting[job_id]
                self._events.append(("done", job_id, _failed(req, Status.DEADLINE, "deadline passed while queued")))
        for seq in self.running:
            if seq.req.job_id in self._cancelled:
                self._complete(seq, Status.CANCELLED, None)
            elif seq.req.deadline is not None and now > seq.req.deadline:
                self._complete(seq, Status.DEADLINE, None, "deadline passed while generating")
        self._cancelled.intersection_update(self.waiting.keys() | {s.req.job_id for s in self.running})
        self._free_finished()

    def _prefix_entry(self, prefix: str | None) -> PrefixEntry | None:
        if not prefix:
            return None
        entry = self.prefixes.get(prefix)
        if entry is not None:
            self.prefixes.hits += 1
            return entry
        self.prefixes.misses += 1
        ids = self.tok(prefix)["input_ids"]
        if len(ids) < MIN_PREFIX_TOKENS or len(ids) >= self.max_seq_len:
            return None
        _, cache = self.fw.dense([ids])
        k, v = cache.stacked_new(0)                                            # [L, H, Tp, D]
        entry = PrefixEntry(ids, k, v)
        self.prefixes.put(prefix, entry)
        return entry

    def _prefill(self, reqs: list[GenerateRequest], chunk: tuple[_Seq, int] | None, budget: int):
        """One batched prefill over contiguous rows: the filling row's next chunk
        (if any), then the new requests, the last of which may take only part
        of its prompt (the rest of `budget`) and become the filling row. A
        filling row that is not continued this step (a person's reply went
        first) is moved past the new rows, so that it stays last."""
        valid = []
        for req in reqs:
            ids = self._encode(req)
            if not ids or len(ids) + req.max_new_tokens > self.max_seq_len:
                msg = f"prompt of {len(ids)} tokens + {req.max_new_tokens} new exceeds {self.max_seq_len}"
                self._events.append(("done", req.job_id, _failed(req, Status.ERROR, msg if ids else "empty prompt")))
            else:
                valid.append((req, ids))
        saved = (list(self.running), self.filling)
        parked = None
        if self.filling is not None and chunk is None and valid:
            parked = self.running.pop()
            self.kv.move_row(len(self.running), len(self.running) + len(valid), parked.length)
        seqs, tails, starts = [], [], []
        first = len(self.running) - (1 if chunk is not None else 0)
        if chunk is not None:
            seq, n = chunk
            seqs.append(seq)
            tails.append(seq.ids[seq.length:seq.length + n])
            starts.append(seq.length)
        for req, ids in valid:
            row = len(self.running)
            entry = self._prefix_entry(req.prefix)
            start = 0
            if entry is not None:
                start = min(common_prefix_len(entry.ids, ids), len(ids) - 1)
                self.kv.ensure_capacity(start + 1)
                self.kv.load_prefix(row, entry.k, entry.v, start)
            gen = make_generator(req.seed, self.device) if req.temperature > 0 else None
            seq = _Seq(req, len(ids), start, TextState(self.tok, tuple(req.stop), req.sentences), gen, ids=ids)
            tail = ids[start:]
            if len(tail) > budget and parked is None and req.priority != Priority.HUMAN_REPLY \
                    and (self.filling is None or chunk is not None):
                tail = tail[:max(budget, 1)]
                self.filling = seq
            budget -= len(tail)
            self.running.append(seq)
            seqs.append(seq)
            tails.append(tail)
            starts.append(start)
        if parked is not None:
            self.running.append(parked)
        if not seqs:
            return False
        urgent = any(seq.req.priority == Priority.HUMAN_REPLY for seq in seqs)
        arrived = self.urgent_submitted
        check = None if urgent or self.interrupt is None or self.policy != "priority" else \
            (lambda: self.interrupt() or self.urgent_submitted != arrived)
        try:
            hidden = self.fw.prefill(self.kv, first, tails, starts, interrupted=check)   # [n, hidden]
        except PrefillInterrupted:
            # Undo: nothing advanced (keys/values written so far are rewritten
            # identically later); a parked filling row goes back to its row.
            if parked is not None:
                self.kv.move_row(len(self.running) - 1, len(saved[0]) - 1, parked.length)
            self.running, self.filling = saved
            for req, _ in valid:
                self._requeue(req)
            self.interrupted += 1
            return True
        for seq, tail in zip(seqs, tails):
            seq.length += len(tail)
        # a row still filling has no next token yet (and must not draw from its seeded generator)
        done = [i for i, seq in enumerate(seqs) if seq.length == seq.prompt_len]
        if not done:
            return False
        ready = [seqs[i] for i in done]
        ids = self._sample(hidden[done] if len(done) < len(seqs) else hidden, ready)
        yield from self._sync(ids)
        for seq, tok in zip(ready, ids.tolist()):
            if seq is self.filling:
                self.filling = None
            self._on_token(seq, tok)
        self._free_finished()
        return False

    def _finish_score(self, req: ScoreRequest) -> None:
        try:
            result = score_request(self, req)
        except Exception as exc:  # a bad request must not take the engine down
            result = _failed(req, Status.ERROR, f"{type(exc).__name__}: {exc}")
        self._events.append(("done", req.job_id, result))


def _failed(req, status: str, error: str | None):
    latency = time.monotonic() - req.submitted if req.submitted else None
    if isinstance(req, ScoreRequest):
        return ScoreResult([], status=status, latency_s=latency, error=error)
    return GenerationResult("", [], status=status, finish_reason=None, latency_s=latency, error=error)
