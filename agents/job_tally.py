"""What became of the minds' inference jobs, for statistics (a sim's
summary, agents/sim_report.py and server/sim.py; a region's figures,
server/cluster/region_figures.py): running totals of every job by kind and
status and of its tokens, and the latencies of the latest ones per
priority. Bounded: a server or region that runs for weeks keeps counters
here, never every job's result.
"""
from __future__ import annotations

from collections import Counter, deque
from typing import Any

# Latencies kept per priority (the latest): a sim's percentiles cover every
# job of its run (the README's two-day party generates ~18,000 tokens: a few
# thousand jobs) and a long-running server's cover its recent ones;
# 100,000 floats are ~3 MB per priority at most.
MAX_LATENCIES = 100_000


class JobTally:
    def __init__(self, max_latencies: int = MAX_LATENCIES) -> None:
        self.jobs = 0
        self.by_status: Counter[str] = Counter()  # "kind:status" -> jobs
        # GenerationResult.tokens: the embedded engine's ids or a remote server's count
        self.tokens = 0
        # the token ids results carry (a remote engine's carry none: server/sim.py counts those as they stream)
        self.token_ids = 0
        self.latency_ms: dict[int, deque[float]] = {}  # priority -> latencies of its latest ok jobs
        self.max_latencies = max_latencies

    def add(self, priority: int, kind: str, result: Any) -> None:
        """A finished job (a GenerationResult or ScoreResult, whatever its status)."""
        status = getattr(result, "status", "?")
        self.jobs += 1
        self.by_status[f"{kind}:{status}"] += 1
        self.tokens += getattr(result, "tokens", 0) or 0
        self.token_ids += len(getattr(result, "token_ids", []) or [])
        latency = getattr(result, "latency_s", None)
        if latency is not None and status == "ok":
            self.latency_ms.setdefault(priority, deque(maxlen=self.max_latencies)).append(latency * 1000)
