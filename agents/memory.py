"""An NPC's memory stream and its retrieval, after Generative Agents.

Each memory has a game time, a kind (seed, observation, dialogue,
reflection), a text and an importance (1-10). Retrieval ranks memories by
a weighted sum of recency (exponential decay per game hour since last
access), importance, and relevance to a query: cosine similarity of
embeddings when an embedder is available, otherwise a lexical overlap
score. Reflection is due when the importance summed since the last one
passes a threshold.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Recency decays by this factor per game hour (0.99 after Park et al.,
# who used 0.995 per sandbox hour; a village day is shorter).
RECENCY_DECAY_PER_HOUR = 0.99
# Reflect after this much importance has accumulated (about a dozen
# ordinary observations or four important conversations).
REFLECTION_THRESHOLD = 40.0
# A stream keeps at most this many memories; the least important old ones
# go first. 2,000 short lines is a few hundred KB per NPC.
MAX_MEMORIES = 2000

_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset("""a an the and or but if of to in on at by for with from is are was were be been am i
you he she it we they me him her them my your his its our their this that these those do does did
have has had not no yes so as just very can will would should could what who where when why how
there here about up out into over then than too also""".split())

Embedder = Callable[[Sequence[str]], list[list[float]]]


def keywords(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


@dataclass(slots=True)
class Memory:
    id: int
    minute: float  # game minutes when it happened
    kind: str
    text: str
    importance: float
    last_access: float
    embedding: Sequence[float] | None = None   # a list, or a tensor from agents/embeddings.py
    words: frozenset[str] | None = None       # keywords(text), computed once


class MemoryStream:
    def __init__(self, owner: str, embedder: Embedder | None = None) -> None:
        self.owner = owner
        self.embedder = embedder
        self.memories: list[Memory] = []
        self.next_id = 1
        self.importance_since_reflection = 0.0
        self.unsaved: list[Memory] = []
        self._matrix: tuple[list[int], object] | None = None   # (ids, [n, d] unit rows) of the embedded

    def _relevances(self, query_words: set[str], q_emb) -> list[float]:
        """Relevance of each memory: cosine to the query's embedding where both
        have one (clamped at 0), else the lexical score. The matrix of the
        stream's embeddings is rebuilt only when the embedded memories change."""
        memories = self.memories
        out = [0.0] * len(memories)
        embedded = [i for i, m in enumerate(memories) if m.embedding is not None] if q_emb is not None else []
        if embedded:
            import torch
            ids = [memories[i].id for i in embedded]
            if self._matrix is None or self._matrix[0] != ids:
                mat = torch.stack([torch.as_tensor(memories[i].embedding, dtype=torch.float32)
                                   for i in embedded])                                        # [n, d]
                self._matrix = (ids, mat / mat.norm(dim=1, keepdim=True).clamp(min=1e-12))
            q = torch.as_tensor(q_emb, dtype=torch.float32)                                   # [d]
            sims = self._matrix[1] @ (q / q.norm().clamp(min=1e-12))                          # [n]
            for i, s in zip(embedded, sims.clamp(min=0.0).tolist()):
                out[i] = s
        done = set(embedded)
        for i, m in enumerate(memories):
            if i not in done:
                out[i] = _lexical(query_words, m)
        return out

    def add(self, minute: float, kind: str, text: str, importance: float, embed: bool = True) -> Memory:
        """embed=False: relevance stays lexical (comings and goings: a name is
        all there is to match, and a crowd makes hundreds a minute)."""
        m = Memory(self.next_id, minute, kind, text, float(importance), minute)
        if self.embedder is not None and embed:
            later = getattr(self.embedder, "later", None)
            if later is not None:
                later(m)  # filled in the background; scored lexically until then
            else:
                m.embedding = self.embedder([text])[0]
        self.next_id += 1
        self.memories.append(m)
        self.unsaved.append(m)
        if kind != "reflection":
            self.importance_since_reflection += importance
        if len(self.memories) > MAX_MEMORIES:
            self._forget()
        return m

    def load(self, m: Memory) -> None:
        self.memories.append(m)
        self.next_id = max(self.next_id, m.id + 1)
        later = getattr(self.embedder, "later", None)
        if later is not None:
            later(m)

    def _forget(self) -> None:
        # drop the least important of the oldest half
        half = len(self.memories) // 2
        old = sorted(self.memories[:half], key=lambda m: (m.importance, m.minute))
        drop = {m.id for m in old[: len(self.memories) - MAX_MEMORIES]}
        self.memories = [m for m in self.memories if m.id not in drop]

    def reflection_due(self) -> bool:
        return self.importance_since_reflection >= REFLECTION_THRESHOLD

    def reflected(self) -> None:
        self.importance_since_reflection = 0.0

    def recent(self, n: int, kinds: Sequence[str] | None = None) -> list[Memory]:
        pool = [m for m in self.memories if kinds is None or m.kind in kinds]
        return pool[-n:]

    def score(self, m: Memory, now: float, query_words: set[str], query_emb: Sequence[float] | None,
              weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> float:
        if query_emb is not None and m.embedding is not None:
            relevance = max(0.0, _cosine(query_emb, m.embedding))
        else:
            relevance = _lexical(query_words, m)
        return self._score(m, now, relevance, weights)

    @staticmethod
    def _score(m: Memory, now: float, relevance: float, weights=(1.0, 1.0, 1.0)) -> float:
        hours = max(0.0, now - m.last_access) / 60.0
        wr, wi, wv = weights
        return wr * RECENCY_DECAY_PER_HOUR ** hours + wi * m.importance / 10.0 + wv * relevance

    def retrieve(self, query: str, now: float, k: int = 5, q_emb: Any = ...) -> list[Memory]:
        """The k best memories for `query` at game minute `now`; marks them accessed.
        Relevance of the embedded memories is one matrix product (a full stream
        of 2,000 memories took ~60 ms a query scored one by one in Python)."""
        if not self.memories:
            return []
        words = keywords(query)
        if q_emb is ...:   # not given: what the embedder has at hand (None: lexical)
            q_emb = None
            if self.embedder is not None:
                query_fn = getattr(self.embedder, "query", None)   # the real embedder: cached or None
                q_emb = query_fn(query) if query_fn is not None else self.embedder([query])[0]
        relevance = self._relevances(words, q_emb)
        scored = sorted(zip((self._score(m, now, r) for m, r in zip(self.memories, relevance)),
                            range(0, -len(self.memories), -1)), reverse=True)[:k]   # ties: older first
        ranked = [self.memories[-i] for _, i in scored]
        for m in ranked:
            m.last_access = now
        return ranked


def lexical_relevance(query_words: set[str], text: str) -> float:
    """Share of the query's keywords found in the text (0..1)."""
    if not query_words:
        return 0.0
    words = keywords(text)
    hits = sum(1 for w in query_words if w in words or (len(w) > 4 and any(x.startswith(w[:5]) for x in words)))
    return hits / len(query_words)


def _lexical(query_words: set[str], m: Memory) -> float:
    if not query_words:
        return 0.0
    if m.words is None:
        m.words = frozenset(keywords(m.text))
    words = m.words
    hits = sum(1 for w in query_words if w in words or (len(w) > 4 and any(x.startswith(w[:5]) for x in words)))
    return hits / len(query_words)




def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
