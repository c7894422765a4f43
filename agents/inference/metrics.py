"""Prometheus metrics of the inference engine.

Owns: queue depth, running batch size, generated tokens (counter and a
recent tokens/s gauge), time to first token and end-to-end latency per
priority class. Always registered in a caller-given `CollectorRegistry`
(a private one if none is given), never the global default registry, since
tests run many servers in one process.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .api import GenerationResult, Priority, ScoreResult

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, prefix: str = "hamlet_llm"):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge(f"{prefix}_queue_depth", "Requests waiting for a batch row", registry=r)
        self.running = Gauge(f"{prefix}_running_batch", "Sequences in the running batch", registry=r)
        self.tokens = Counter(f"{prefix}_generated_tokens", "Tokens generated", registry=r)
        self.tps = Gauge(f"{prefix}_tokens_per_second", "Generated tokens per second (recent)", registry=r)
        self.ttft = Histogram(f"{prefix}_time_to_first_token_seconds", "Submit to first token",
                              ["priority"], buckets=_LATENCY_BUCKETS, registry=r)
        self.latency = Histogram(f"{prefix}_request_latency_seconds", "Submit to completion",
                                 ["priority", "kind"], buckets=_LATENCY_BUCKETS, registry=r)
        self.finished = Counter(f"{prefix}_requests", "Finished requests by status",
                                ["kind", "status"], registry=r)
        self._seen = 0                       # engine tokens already counted
        self._window = (time.monotonic(), 0)  # (start, tokens at start) of the tokens/s window

    def observe_stats(self, stats: dict) -> None:
        self.queue_depth.set(stats.get("queue_depth", 0))
        self.running.set(stats.get("running", 0))
        total = stats.get("tokens_total", 0)
        if total > self._seen:
            self.tokens.inc(total - self._seen)
            self._seen = total
        now = time.monotonic()
        start, tokens = self._window
        if now - start >= 1.0:
            self.tps.set((self._seen - tokens) / (now - start))
            self._window = (now, self._seen)

    def observe_result(self, priority: int, result) -> None:
        name = Priority(priority).name.lower() if priority in Priority._value2member_map_ else str(priority)
        kind = "score" if isinstance(result, ScoreResult) else "generate"
        self.finished.labels(kind, result.status).inc()
        if result.status != "ok":
            return
        if result.latency_s is not None:
            self.latency.labels(name, kind).observe(result.latency_s)
        if isinstance(result, GenerationResult) and result.ttft_s is not None:
            self.ttft.labels(name).observe(result.ttft_s)
