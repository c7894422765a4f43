"""`EnginePool`: the `LLM` interface over several OpenAI-compatible engines.

Owns: which engine (`hamlet llm-serve`, vLLM, ...) runs each job, and the
engines' health. A job goes to the engine with the fewest outstanding jobs
(ties in turn). An engine that cannot be reached is rested, 1 s the first
time and twice as long each time after, up to 30 s; then it is tried with
one job at a time until one gets through. A job whose engine could not be
reached, or refused it as overloaded, goes to an engine it has not tried
yet, unless it already streamed text (that text is the caller's already).
When no engine is left, the handle fails at once: status "error" naming
each engine and why it rests, or "overloaded" when they are only full.
Each engine is a `RemoteLLM` (remote.py) that retries nothing itself: the
pool's retry is another engine. Per-engine figures are in `info()` and,
labelled by engine, in the metrics registry.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge

from .api import GenerationResult, RunsIn, ScoreResult, Status
from .calls import Call, chat_call, generate_call, score_call
from .handle import JobHandle
from .jobs import failed, next_job_id
from .metrics import EngineMetrics
from .remote import RemoteLLM, is_unreachable

# First rest of an unreachable engine: a refused connect costs a job
# milliseconds, so an engine back from a restart is used again quickly.
DOWN_S = 1.0
# Longest rest: an engine gone for good costs one probe job a refused (or,
# on a silent host, a connect_timeout_s) attempt every 30 s, no more.
MAX_DOWN_S = 30.0
# Connect timeout for each engine: on a LAN a connect takes milliseconds;
# 2 s bounds what a probe of a silent host adds to one job's latency.
CONNECT_TIMEOUT_S = 2.0
# At most this many engines (each a connection pool and a thread): a world
# needs a handful; a list of hundreds is more likely a mistake.
MAX_ENGINES = 64


@dataclass
class EngineSlot:
    """One engine and what the pool knows of it (changed under the pool's lock)."""
    index: int
    llm: RemoteLLM
    outstanding: int = 0
    done: int = 0                   # jobs that ended ok here
    failures: int = 0               # jobs that failed here (any status but ok and cancelled)
    unreachable: int = 0            # of those, the ones that never reached it
    fails_in_row: int = 0           # unreachable since it last answered
    down_until: float = 0.0         # monotonic; resting until then
    last_error: str | None = None

    def figures(self, now: float) -> dict[str, Any]:
        return {"url": self.llm.base_url, "outstanding": self.outstanding, "done": self.done,
                "failures": self.failures, "unreachable": self.unreachable,
                "down_for_s": round(max(0.0, self.down_until - now), 3), "last_error": self.last_error}


@dataclass
class _Job:
    call: Call
    handle: JobHandle
    submitted: float
    tried: set[int] = field(default_factory=set)   # engine indexes; at most len(engines)
    attempt: int = 0
    cancel: Any = None
    cancelled: bool = False


class EnginePool:
    runs_in: RunsIn = "remote"

    def __init__(self, urls: Sequence[str], *, registry=None, down_s: float = DOWN_S,
                 max_down_s: float = MAX_DOWN_S, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 tokenizer=None, **remote_kw: Any):
        """remote_kw: RemoteLLM's settings (timeout_s, max_concurrency,
        max_outstanding, model) for each engine; its `retries` default to 0
        here, since the pool's retry is another engine."""
        if not 1 <= len(urls) <= MAX_ENGINES:
            raise ValueError(f"an engine pool takes 1..{MAX_ENGINES} URLs, not {len(urls)}")
        remote_kw.setdefault("retries", 0)
        self.engines: list[EngineSlot] = []
        try:
            for i, url in enumerate(urls):
                llm = RemoteLLM(url, connect_timeout_s=connect_timeout_s, tokenizer=tokenizer, **remote_kw)
                self.engines.append(EngineSlot(i, llm))
        except Exception:
            for e in self.engines:       # their threads stop with them
                e.llm.close()
            raise
        self.down_s, self.max_down_s = down_s, max_down_s
        self.tokenizer = tokenizer
        self.metrics = EngineMetrics(registry)          # the pool's results, by priority, as one model's
        r = self.metrics.registry
        self._g_outstanding = Gauge("hamlet_llm_engine_outstanding", "Jobs at each engine", ["engine"], registry=r)
        self._g_down = Gauge("hamlet_llm_engine_down", "1 while an engine rests as unreachable", ["engine"],
                             registry=r)
        self._c_jobs = Counter("hamlet_llm_engine_jobs", "Jobs ended at each engine, by status",
                               ["engine", "status"], registry=r)
        self._lock = threading.Lock()
        self._next = 0                                   # round robin among equally loaded engines
        self.closed = False

    # -- the LLM interface ---------------------------------------------------
    def generate(self, prompt: str, **kw: Any) -> JobHandle[GenerationResult]:
        """The arguments of `LLM.generate` (calls.generate_call)."""
        return self.submit(generate_call(prompt, **kw))

    def chat(self, system: str, turns: list[tuple[str, str]], **kw: Any) -> JobHandle[GenerationResult]:
        return self.submit(chat_call(system, turns, **kw))

    def score(self, prompt: str, candidates: Sequence[str], **kw: Any) -> JobHandle[ScoreResult]:
        """The arguments of `LLM.score` (calls.score_call)."""
        return self.submit(score_call(prompt, candidates, **kw))

    def chat_prompt(self, system: str, turns: list[tuple[str, str]], add_generation_prompt: bool = True) -> str:
        return self.engines[0].llm.chat_prompt(system, turns, add_generation_prompt)

    def figures(self) -> list[dict[str, Any]]:
        """Each engine's URL, outstanding / done / failed / unreachable jobs,
        how long it still rests and its last error; never blocks."""
        now = time.monotonic()
        with self._lock:
            return [e.figures(now) for e in self.engines]

    def info(self) -> dict[str, Any]:
        """The model (asked of an engine that is up: blocks up to 6 s per
        engine asked, the first time) and every engine's figures."""
        figures = self.figures()
        up = [e for e, f in zip(self.engines, figures) if not f["down_for_s"]]
        model = next((i for i in (e.llm.info() for e in up[:2]) if "error" not in i), {})
        return {"name": model.get("name"), "server": model.get("server"), "runner": "remote",
                "engines": figures, "outstanding": sum(f["outstanding"] for f in figures)}

    def close(self) -> None:
        """Cancel what is in flight (its handles complete as "cancelled") and stop."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for e in self.engines:
            e.llm.close()

    # -- dispatch --------------------------------------------------------------
    def submit(self, call: Call) -> JobHandle:
        job = _Job(call, JobHandle(next_job_id(), call.kind, lambda _id: self._cancel(job)), time.monotonic())
        if call.refused is not None:        # a bad request: no engine would take it
            job.handle._finish(failed(call.kind, Status.ERROR, call.refused, job.submitted))
        else:
            self._dispatch(job, None)
        return job.handle

    def _cancel(self, job: _Job) -> None:
        with self._lock:
            job.cancelled = True
            cancel = job.cancel
        if cancel is not None:
            cancel()

    def _pick(self, tried: set[int], now: float) -> EngineSlot | None:
        """The least loaded engine that is up and not yet tried (under the lock)."""
        best: EngineSlot | None = None
        n = len(self.engines)
        for k in range(n):
            e = self.engines[(self._next + k) % n]
            if e.index in tried or e.down_until > now or (e.fails_in_row and e.outstanding):
                continue          # resting, or on probation with its one job out
            if best is None or e.outstanding < best.outstanding:
                best = e
        if best is not None:
            self._next = (best.index + 1) % n
        return best

    def _dispatch(self, job: _Job, last: Any) -> None:
        """Send `job` to an engine; `last` is its previous attempt's failure."""
        now = time.monotonic()
        with self._lock:
            engine = None if self.closed or job.cancelled else self._pick(job.tried, now)
            if engine is not None:
                engine.outstanding += 1
                job.tried.add(engine.index)
                job.attempt += 1
                attempt = job.attempt
            else:
                result = self._no_engine(job, last, now)
        if engine is None:
            self.metrics.observe_result(job.call.priority, result)
            job.handle._finish(result)
            return
        self._g_outstanding.labels(engine.llm.base_url).inc()
        cancel = engine.llm.request(job.call, job.handle, lambda _h, r: self._finished(job, engine, r),
                                    job.submitted)
        with self._lock:
            if job.attempt == attempt:       # else it already failed here and moved on
                job.cancel = cancel
            cancelled = job.cancelled
        if cancelled:
            cancel()

    def _no_engine(self, job: _Job, last: Any, now: float) -> GenerationResult | ScoreResult:
        kind = job.call.kind
        if self.closed:
            return failed(kind, Status.CANCELLED if job.tried else Status.ERROR, "the engine pool was closed",
                          job.submitted)
        if job.cancelled:
            return failed(kind, Status.CANCELLED, None, job.submitted)
        if last is not None:      # it failed at every engine that is up: its last failure says why
            return last
        # a first attempt finds no engine only when every one rests as unreachable
        why = "; ".join(f"{e.llm.base_url} ({e.last_error}, retry in {max(0.0, e.down_until - now):.1f} s)"
                        for e in self.engines)
        return failed(kind, Status.ERROR, f"all {len(self.engines)} engines are unreachable: {why}", job.submitted)

    def _finished(self, job: _Job, engine: EngineSlot, result: Any) -> None:
        """An attempt's end, from the engine's thread (or within request())."""
        unreachable = not result.ok and is_unreachable(result)
        now = time.monotonic()
        with self._lock:
            engine.outstanding -= 1
            if result.ok:
                engine.done += 1
            elif result.status != Status.CANCELLED:     # a caller's cancel is no fault of the engine
                engine.failures += 1
                engine.last_error = (result.error or result.status)[:200]
            if not unreachable and result.status != Status.CANCELLED:    # it answered
                engine.fails_in_row, engine.down_until = 0, 0.0
            elif unreachable:
                engine.unreachable += 1
                engine.fails_in_row += 1
                rest = min(self.max_down_s, self.down_s * 2 ** min(engine.fails_in_row - 1, 16))
                engine.down_until = now + rest
            retry = (not result.ok and (unreachable or result.status == Status.OVERLOADED)
                     and not job.handle.text_so_far and not job.cancelled and not self.closed
                     and len(job.tried) < len(self.engines))
            down = engine.down_until > now
        url = engine.llm.base_url
        self._g_outstanding.labels(url).dec()
        self._g_down.labels(url).set(1 if down else 0)
        self._c_jobs.labels(url, result.status).inc()
        if retry:
            self._dispatch(job, result)
            return
        self.metrics.observe_result(job.call.priority, result)
        job.handle._finish(result)
