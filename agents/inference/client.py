"""`EngineClient`: the `LLM` (api.py) the rest of Hamlet holds when the
engine runs on this machine.

Owns: turning calls into requests and handles, the outstanding-job bound
(overload completes a handle at once, never raises), routing engine events
(from whatever thread or process runs the engine) to handles, and metrics.
How and where the engine steps is its `Backend`'s business (backend.py,
runners.py, cuda.py); `runs_in` says which.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from .api import GenerationResult, Priority, RunsIn, ScoreResult, Status
from .backend import Backend
from .bans import check_bans
from .handle import JobHandle
from .jobs import Done, Event, GenerateRequest, Piece, Request, ScoreRequest, failed, next_job_id
from .metrics import EngineMetrics


class EngineClient:
    def __init__(self, backend: Backend, tokenizer, info: dict, *, max_outstanding: int,
                 metrics: EngineMetrics | None = None):
        self.backend = backend
        self.tokenizer = tokenizer
        self._info = info
        self.max_outstanding = max_outstanding   # the engine's queue + batch: all it can hold
        self.metrics = metrics or EngineMetrics()
        self._lock = threading.Lock()
        self._jobs: dict[int, tuple[JobHandle[Any], int]] = {}
        self.closed = False
        backend.attach(self._deliver, self._fail_all)

    @property
    def runs_in(self) -> RunsIn:
        return self.backend.runs_in

    # -- the LLM interface ---------------------------------------------------
    def generate(self, prompt: str, *, max_new_tokens: int = 32, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] = (),
                 priority: int = Priority.CONVERSATION, deadline_s: float | None = None,
                 prefix: str | None = None, sentences: int | None = None,
                 stream: bool = True, ban: Sequence[str] = ()) -> JobHandle[GenerationResult]:
        """sentences: stop once the text holds this many complete sentences;
        stream: send text pieces as they come (`handle.stream()`); ban:
        phrases the text may not contain (bans.py; past its limits the job
        fails at once with status "error")."""
        now = time.monotonic()
        req = GenerateRequest(next_job_id(), prompt, int(max_new_tokens), float(temperature), float(top_p),
                              seed, tuple(stop), int(priority), None if deadline_s is None else now + deadline_s,
                              prefix, now, stream, None if sentences is None else int(sentences), tuple(ban))
        why = check_bans(req.ban)
        if why is not None:
            handle: JobHandle[GenerationResult] = JobHandle(req.job_id, req.kind, self.backend.cancel)
            handle._finish(failed(req.kind, Status.ERROR, why, now))
            return handle
        return self._submit(req)

    def score(self, prompt: str, candidates: Sequence[str], *, priority: int = Priority.PLANNING,
              deadline_s: float | None = None, prefix: str | None = None) -> JobHandle[ScoreResult]:
        now = time.monotonic()
        req = ScoreRequest(next_job_id(), prompt, list(candidates), int(priority),
                           None if deadline_s is None else now + deadline_s, prefix, now)
        return self._submit(req)

    def chat_prompt(self, system: str, turns: list[tuple[str, str]], add_generation_prompt: bool = True) -> str:
        messages = ([{"role": "system", "content": system}] if system else [])
        messages += [{"role": role, "content": content} for role, content in turns]
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def info(self) -> dict[str, Any]:
        return {**self._info, "runner": self.runs_in, "max_outstanding": self.max_outstanding,
                "outstanding": len(self._jobs)}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.backend.close()
        with self._lock:
            jobs, self._jobs = self._jobs, {}
        for handle, _ in jobs.values():
            handle._finish(failed(handle.kind, Status.CANCELLED, "the engine was closed"))

    def step(self) -> bool:
        """Advance the engine once if the caller drives it (runs_in "inline" or
        "cuda"); True while work remains."""
        return self.backend.step()

    # -- plumbing --------------------------------------------------------------
    def _submit(self, req: Request) -> JobHandle[Any]:
        handle: JobHandle[Any] = JobHandle(req.job_id, req.kind, self.backend.cancel)
        with self._lock:
            refused = self.closed or len(self._jobs) >= self.max_outstanding
            if not refused:
                self._jobs[req.job_id] = (handle, req.priority)
        if refused:
            status = Status.ERROR if self.closed else Status.OVERLOADED
            why = "engine closed" if self.closed else "too many outstanding requests"
            handle._finish(failed(req.kind, status, why))
            self.metrics.finished.labels(req.kind, status).inc()
            return handle
        if not self.backend.submit(req):
            self._deliver([Done(req.job_id, failed(req.kind, Status.OVERLOADED, "engine inbox is full"))])
        return handle

    def _deliver(self, events: list[Event], stats: dict | None = None) -> None:
        """Called by the backend, from any thread."""
        for event in events:
            if isinstance(event, Piece):
                entry = self._jobs.get(event.job_id)
                if entry is not None:
                    entry[0]._push(event.text)
            else:
                with self._lock:
                    entry = self._jobs.pop(event.job_id, None)
                if entry is not None:
                    self.metrics.observe_result(entry[1], event.result)
                    entry[0]._finish(event.result)
        if stats is not None:
            self.metrics.observe_stats(stats)

    def _fail_all(self, error: str) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, {}
        for handle, _ in jobs.values():
            handle._finish(failed(handle.kind, Status.ERROR, error))
