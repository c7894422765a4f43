"""The step-able continuous batcher.

Owns: the waiting queue (priority or FIFO, bounded), the running batch
(rows of a `SlotKV`), admission with a prefill token budget, one decode
step for every running row, finishing rows and freeing them at once,
deadlines, cancellation, the prefix cache, and scoring.

`step()` is synchronous and returns events: ("piece", job_id, text) and
("done", job_id, result). `step_iter()` is the same step as a generator
that yields at each point where it must read results back from the device,
so a CUDA runner can poll an event instead of blocking (see cuda.py).
"""
from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field

import torch

from .api import GenerateRequest, GenerationResult, Priority, ScoreRequest, ScoreResult, Status
from .forward import Forward
from .kv import PrefixCache, PrefixEntry, SlotKV, common_prefix_len
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


class Engine:
    def __init__(self, loaded, *, max_batch: int = 32, max_queue: int = 256, max_seq_len: int = 2048,
                 prefill_tokens: int = 512, prefix_entries: int = 64, policy: str = "priority",
                 urgent_reserve: int = 4):
        # max_batch 32: past ~32 rows a 135M model on CPU gains little throughput per row
        #   while every row's step gets slower; a GPU deployment raises it.
        # max_queue 256: ~8 batches of backlog; beyond that an NPC line would be
        #   stale before it starts, so callers get "overloaded" and show "thinking".
        # prefill_tokens 512: bounds one step's prefill (tokens not found in the prefix
        #   cache) so running rows, a person's reply among them, keep streaming.
        # urgent_reserve 4: rows only HUMAN_REPLY may take, so a person is never
        #   queued behind a full batch of NPC small talk.
        self.loaded, self.tok = loaded, loaded.tokenizer
        self.fw = Forward(loaded.model, loaded.device)
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
        self._cancelled: set[int] = set()
        self._events: list[tuple] = []
        self.tokens_total = 0
        self.steps = 0

    # -- submission ---------------------------------------------------------
    def submit(self, req: GenerateRequest | ScoreRequest) -> list[tuple]:
        """Queue a request. Returns events at once only if it is refused."""
        if len(self.waiting) >= self.max_queue:
            return [("done", req.job_id, _failed(req, Status.OVERLOADED, "engine queue is full"))]
        self.waiting[req.job_id] = req
        key = (int(req.priority), next(self._order)) if self.policy == "priority" else (next(self._order),)
        heapq.heappush(self._heap, (*key, req.job_id))
        return []

    def cancel(self, job_id: int) -> None:
        self._cancelled.add(job_id)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running or self._cancelled)

    def stats(self) -> dict:
        return {"queue_depth": len(self.waiting), "running": len(self.running),
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
        if self.running:
            rows = self.running
            hidden = self.fw.decode(self.kv, [s.gen_ids[-1] for s in rows], [s.length for s in rows])
            ids = self._sample(hidden, rows)
            yield from self._sync(ids)
            for seq, tok in zip(rows, ids.tolist()):
                seq.length += 1
                self._on_token(seq, tok)
            self._free_finished()
        admitted = self._admit()
        scores = [r for r in admitted if isinstance(r, ScoreRequest)]
        gens = [r for r in admitted if isinstance(r, GenerateRequest)]
        if gens:
            yield from self._prefill(gens)
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
        """Compact: move the last live row into each freed row (one row copy each)."""
        rows = self.running
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

    def _admit(self) -> list:
        admitted, budget, rows = [], self.prefill_tokens, len(self.running)
        while self._heap:
            job_id = self._heap[0][-1]
            req = self.waiting.get(job_id)
            if req is None:
                heapq.heappop(self._heap)
                continue
            is_gen = isinstance(req, GenerateRequest)
            limit = self.max_batch if req.priority == Priority.HUMAN_REPLY else self.max_batch - self.urgent_reserve
            if is_gen and rows >= limit:
                break
            cost = self._prefill_cost(req)
            if admitted and cost > budget:
                break
            heapq.heappop(self._heap)
            del self.waiting[job_id]
            budget -= cost
            rows += is_gen
            admitted.append(req)
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

    def _prefill(self, reqs: list[GenerateRequest]):
        seqs, tails, starts = [], [], []
        for req in reqs:
            ids = self._encode(req)
            if not ids or len(ids) + req.max_new_tokens > self.max_seq_len:
                msg = f"prompt of {len(ids)} tokens + {req.max_new_tokens} new exceeds {self.max_seq_len}"
                self._events.append(("done", req.job_id, _failed(req, Status.ERROR, msg if ids else "empty prompt")))
                continue
            row = len(self.running)
            entry = self._prefix_entry(req.prefix)
            start = 0
            if entry is not None:
                start = min(common_prefix_len(entry.ids, ids), len(ids) - 1)
                self.kv.ensure_capacity(start + 1)
                self.kv.load_prefix(row, entry.k, entry.v, start)
            gen = make_generator(req.seed, self.device) if req.temperature > 0 else None
            seq = _Seq(req, len(ids), len(ids), TextState(self.tok, tuple(req.stop), req.sentences), gen)
            self.running.append(seq)
            seqs.append(seq)
            tails.append(ids[start:])
            starts.append(start)
        if not seqs:
            return
        first = len(self.running) - len(seqs)
        hidden = self.fw.prefill(self.kv, first, tails, starts)                # [n, hidden]
        ids = self._sample(hidden, seqs)
        yield from self._sync(ids)
        for seq, tok in zip(seqs, ids.tolist()):
            self._on_token(seq, tok)
        self._free_finished()

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
