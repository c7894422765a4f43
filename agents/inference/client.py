"""The `LLM` the rest of Hamlet holds when the engine runs in this machine.

Owns: turning calls into requests and handles, the outstanding-job bound
(overload completes a handle at once, never raises), routing engine events
(from whatever thread or process runs the engine) to handles, and metrics.
How and where the engine steps is a backend's business (runners.py, cuda.py).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from .api import (GenerateRequest, GenerationResult, Priority, ScoreRequest, ScoreResult, Status,
                  next_job_id)
from .handle import Handle
from .metrics import EngineMetrics


class EngineClient:
    def __init__(self, backend, tokenizer, info: dict, *, max_outstanding: int,
                 metrics: EngineMetrics | None = None):
        self.backend = backend
        self.tokenizer = tokenizer
        self._info = info
        self.max_outstanding = max_outstanding   # the engine's queue + batch: all it can hold
        self.metrics = metrics or EngineMetrics()
        self._lock = threading.Lock()
        self._jobs: dict[int, tuple[Handle, int]] = {}
        self.closed = False
        backend.attach(self._deliver, self._fail_all)

    # -- the LLM interface ---------------------------------------------------
    def generate(self, prompt: str, *, max_new_tokens: int = 32, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] = (),
                 priority: Priority = Priority.CONVERSATION, deadline_s: float | None = None,
                 prefix: str | None = None, stream: bool = True, sentences: int | None = None) -> Handle:
        """sentences: stop once the text holds this many complete sentences."""
        now = time.monotonic()
        req = GenerateRequest(next_job_id(), prompt, int(max_new_tokens), float(temperature), float(top_p),
                              seed, tuple(stop), int(priority), None if deadline_s is None else now + deadline_s,
                              prefix, now, stream, None if sentences is None else int(sentences))
        return self._submit(req, "generate")

    def score(self, prompt: str, candidates: Sequence[str], *, priority: Priority = Priority.PLANNING,
              deadline_s: float | None = None, prefix: str | None = None) -> Handle:
        now = time.monotonic()
        req = ScoreRequest(next_job_id(), prompt, list(candidates), int(priority),
                           None if deadline_s is None else now + deadline_s, prefix, now)
        return self._submit(req, "score")

    def chat_prompt(self, system: str, turns: list[tuple[str, str]], add_generation_prompt: bool = True) -> str:
        messages = ([{"role": "system", "content": system}] if system else [])
        messages += [{"role": role, "content": content} for role, content in turns]
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def info(self) -> dict:
        return {**self._info, "runner": self.backend.name, "max_outstanding": self.max_outstanding,
                "outstanding": len(self._jobs)}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.backend.close()
        with self._lock:
            jobs, self._jobs = self._jobs, {}
        for job_id, (handle, _) in jobs.items():
            handle._finish(_refused(handle.kind, Status.CANCELLED, "the engine was closed"))

    # The inline and CUDA backends are driven by their owner's loop.
    def step(self) -> bool:
        """Advance the engine once if the backend is driven by the caller; True if work remains."""
        return self.backend.step()

    # -- plumbing --------------------------------------------------------------
    def _submit(self, req, kind: str) -> Handle:
        handle = Handle(req.job_id, kind, self.backend.cancel)
        with self._lock:
            refused = self.closed or len(self._jobs) >= self.max_outstanding
            if not refused:
                self._jobs[req.job_id] = (handle, req.priority)
        if refused:
            status = Status.ERROR if self.closed else Status.OVERLOADED
            handle._finish(_refused(kind, status, "engine closed" if self.closed else "too many outstanding requests"))
            self.metrics.finished.labels(kind, status).inc()
            return handle
        if not self.backend.submit(req):
            self._deliver([("done", req.job_id, _refused(kind, Status.OVERLOADED, "engine inbox is full"))])
        return handle

    def _deliver(self, events: list[tuple], stats: dict | None = None) -> None:
        """Called by the backend, from any thread."""
        for kind, job_id, payload in events:
            if kind == "piece":
                entry = self._jobs.get(job_id)
                if entry is not None:
                    entry[0]._push(payload)
            elif kind == "done":
                with self._lock:
                    entry = self._jobs.pop(job_id, None)
                if entry is not None:
                    self.metrics.observe_result(entry[1], payload)
                    entry[0]._finish(payload)
        if stats is not None:
            self.metrics.observe_stats(stats)

    def _fail_all(self, error: str) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, {}
        for handle, _ in jobs.values():
            handle._finish(_refused(handle.kind, Status.ERROR, error))


def _refused(kind: str, status: str, error: str | None):
    if kind == "score":
        return ScoreResult([], status=status, latency_s=0.0, error=error)
    return GenerationResult("", [], status=status, finish_reason=None, latency_s=0.0, error=error)
