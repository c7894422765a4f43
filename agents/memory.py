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
    embedding: list[float] | None = None


class MemoryStream:
    def __init__(self, owner: str, embedder: Embedder | None = None) -> None:
        self.owner = owner
        self.embedder = embedder
        self.memories: list[Memory] = []
        self.next_id = 1
        self.importance_since_reflection = 0.0
        self.unsaved: list[Memory] = []

    def add(self, minute: float, kind: str, text: str, importance: float) -> Memory:
        m = Memory(self.next_id, minute, kind, text, float(importance), minute)
        if self.embedder is not None:
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

    def score(self, m: Memory, now: float, query_words: set[str], query_emb: list[float] | None,
              weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> float:
        hours = max(0.0, now - m.last_access) / 60.0
        recency = RECENCY_DECAY_PER_HOUR ** hours
        importance = m.importance / 10.0
        if query_emb is not None and m.embedding is not None:
            relevance = max(0.0, _cosine(query_emb, m.embedding))
        else:
            relevance = lexical_relevance(query_words, m.text)
        wr, wi, wv = weights
        return wr * recency + wi * importance + wv * relevance

    def retrieve(self, query: str, now: float, k: int = 5) -> list[Memory]:
        """The k best memories for `query` at game minute `now`; marks them accessed."""
        if not self.memories:
            return []
        words = keywords(query)
        q_emb = self.embedder([query])[0] if self.embedder else None
        ranked = sorted(self.memories, key=lambda m: self.score(m, now, words, q_emb), reverse=True)[:k]
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


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
