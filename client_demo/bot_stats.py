"""What one load-test bot (client_demo/bot.py) measures: its counters
(`BotStats`: connects, resumes, reconnects, messages, bytes, errors) and its
latency samples (`Samples`: at most MAX_SAMPLES each, reservoir-sampled),
which client_demo/bots_report.py merges into the run's report.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

# Bots keep at most this many latency samples each (reservoir sampling):
# enough for p99 over a run, bounded memory for 1,000 bots.
MAX_SAMPLES = 512


class Samples:
    def __init__(self, rng: random.Random) -> None:
        self.values: list[float] = []
        self.seen = 0
        self.rng = rng

    def add(self, v: float) -> None:
        self.seen += 1
        if len(self.values) < MAX_SAMPLES:
            self.values.append(v)
        else:
            j = self.rng.randrange(self.seen)
            if j < MAX_SAMPLES:
                self.values[j] = v


@dataclass
class BotStats:
    connected: bool = False
    connect_error: str | None = None
    resumes_ok: int = 0
    resumes_failed: int = 0
    sent: int = 0
    errors: Counter = field(default_factory=Counter)
    close_code: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    state_updates: int = 0
    connected_s: float = 0.0
    reconnects_ok: int = 0
    reconnects_failed: int = 0  # attempts that did not get the avatar back (retried)
