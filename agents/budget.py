"""The minds' budgets: how much NPCs may generate on their own, how often
they start something, how long lines and replies may be. Replies to people
are counted but never refused."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MindBudget:
    # Global tokens per minute for everything NPCs generate on their own
    # (conversation, reflection). The CPU engine does roughly 150-400 tok/s;
    # a third of that keeps replies to people fast. Replies to people are
    # counted but never refused.
    tokens_per_minute: float = 4000.0
    # An NPC starts something on its own (a chat, a reflection) at most this often.
    npc_min_interval_s: float = 4.0
    max_lines: int = 6  # lines in one NPC-NPC conversation, both sides together
    pair_cooldown_ticks: int = 2400  # two real minutes at 20 Hz before the same pair chats again
    # Having chosen to keep to its work rather than greet a neighbour, an NPC
    # does not weigh greeting them again for this long (one real minute at
    # 20 Hz; ten game minutes). Without it two NPCs at neighbouring stalls
    # weighed it every npc_min_interval_s: a party run's 25 NPCs scored
    # 3,851 such choices in two game days, most of the engine's work.
    keep_cooldown_ticks: int = 1200
    line_gap_ticks: int = 30  # pacing between lines (1.5 s at 20 Hz)
    player_idle_ticks: int = 600  # a conversation with a person ends after 30 s of silence
    chat_range: int = 6  # tiles: NPCs this close may start a conversation
    # A reply to a person: one sentence (below), rarely over 20 tokens; the cap
    # bounds the wait when the model rambles (~40 ms a token on the CPU).
    reply_tokens: int = 24
    line_tokens: int = 32
    # A reply to a person ends with its first full sentence: a person is
    # waiting, and each token costs ~35-40 ms at batch 1 on the CPU (a 32-token
    # reply alone took ~1.2 s). NPC small talk may run to two.
    reply_sentences: int = 1
    # A reply to one person (not a crowd) may be generated this many times at
    # once, from one cached prompt (the engine prefills it once and decodes
    # the candidates as rows of one batch); the first the gate passes is said
    # as soon as it is done, the others cancelled (agents/reply_candidates.py).
    # 1 (the default): one at a time, a refused line generated again. Measured
    # with bench/npc's dinner-time load on the 2-core CPU, 2 did not help:
    # greeting-to-reply p95 7.2-9.9 s against 3.7-6.7 s with 1 (p50 2.1-3.9
    # against 2.4-2.6 s; ~10 replies a run): refusals came in pairs (both
    # candidates refused in about one pair of four: the same prompt fails the
    # same way) and a second row made every decode step of the reply slower.
    reply_candidates: int = 1
    line_sentences: int = 2
    reflect_tokens: int = 48
    # Wall-clock deadlines: a reply later than this is worse than the
    # fallback line. None (the headless sim's lockstep mode) waits for it.
    reply_deadline_s: float | None = 30.0
    # A reply the gate refused is generated again only while its person has
    # waited less than this: a second try costs a whole generation (~5-10 s in
    # a crowd on the CPU); past this the fallback line serves them better.
    # None (the headless sim) always tries again.
    reply_retry_within_s: float | None = 8.0
    line_deadline_s: float | None = 30.0


class TokenBucket:
    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = per_minute
        self.tokens = per_minute
        self.clock = clock
        self.at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def can_spend(self, n: int) -> bool:
        self._refill()
        return self.tokens >= n

    def spend(self, n: int) -> None:
        self._refill()
        self.tokens -= n
