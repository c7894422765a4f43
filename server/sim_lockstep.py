"""Lockstep with an engine that runs on its own threads, for the headless
sim's fast mode (server/sim.py).

The embedded engine's inline runner is stepped by the sim after each tick
until it is idle. A remote engine (`RemoteLLM`, one `http://` URL) or a
pool of them (`EnginePool`, several) cannot be stepped: it works on its own
thread. `Lockstep` wraps such an engine, counts the jobs submitted through
it, and `wait()` blocks after each tick until every one of them has
finished, so the model's latency costs no game time, as with the inline
engine. In `--realtime` it only counts (the ticks keep their rate).

Bounds and failures (the sim stops with a message, never hangs):

- a job that fails because no engine could be reached (RemoteLLM retried
  it, or the pool tried every engine that is up) stops the run: going on
  would fill it with fallback lines, measuring nothing of the model;
- no job finishing for `stall_s` while some are outstanding stops it too
  (each remote request has its own timeout, so this is a last resort).

Paced modes (`--ticks-per-step N > 0`: one engine step every N ticks, so
words take game time) need an engine the sim steps; with a remote engine
they are refused (`paced_refusal`): use lockstep (0) or `--realtime`.
"""
from __future__ import annotations

import threading
import time
from typing import Any

# Outstanding jobs with none finishing for this long: the engine is stuck.
# A remote request times out by itself after 60 s (and is retried up to 3
# times on 5xx), so a live engine finishes something well within this.
STALL_S = 300.0
WAIT_SLICE_S = 0.5  # waits are sliced so a Ctrl-C is seen promptly


class EngineFailed(RuntimeError):
    """The engine cannot serve the run: the sim stops with this message."""


def needs_lockstep(llm: Any) -> bool:
    """Whether `llm` runs on its own (no `step()` for the sim to call)."""
    return not callable(getattr(llm, "step", None))


def is_remote_model(model: str | None) -> bool:
    """Whether `model` names engines elsewhere: URLs, or a NATS queue group of workers."""
    return model is not None and model.strip().startswith(("http://", "https://", "nats://"))


def paced_refusal(remote: bool, model: str, ticks_per_step: int, realtime: bool) -> str | None:
    """The message refusing a paced run on a remote engine, or None if the run is fine."""
    if realtime or ticks_per_step == 0 or not remote:
        return None
    return (f"--ticks-per-step {ticks_per_step} paces the embedded engine's steps, and a remote engine "
            f"({model}) steps on its own: use --ticks-per-step 0 (the world waits for each tick's jobs) "
            "or --realtime (ticks at 20 Hz, the engine's latency takes game time)")


class Lockstep:
    """An LLM proxy that knows how many of its jobs are outstanding."""

    def __init__(self, llm: Any, stall_s: float = STALL_S) -> None:
        self.llm = llm
        self.stall_s = stall_s
        self._cond = threading.Condition()
        self._pending = 0
        self._last_done = time.monotonic()
        self._unreachable: str | None = None
        self.waited_s = 0.0  # wall time spent waiting for the engine
        # Tokens of generations that came back without token ids (a remote
        # engine sends text and `GenerationResult.tokens`, its count); the sim
        # counts the others' token ids itself. Taken by the sim each tick.
        self._streamed = 0

    # -- the LLM interface the minds use, tracked ------------------------------
    def generate(self, *args: Any, **kw: Any) -> Any:
        return self._track(self.llm.generate(*args, **kw))

    def chat(self, *args: Any, **kw: Any) -> Any:
        return self._track(self.llm.chat(*args, **kw))

    def score(self, *args: Any, **kw: Any) -> Any:
        return self._track(self.llm.score(*args, **kw))

    def __getattr__(self, name: str) -> Any:  # chat_prompt, runs_in, info, close...
        if name == "step":  # never stepped: the sim waits instead
            raise AttributeError(name)
        return getattr(self.llm, name)

    def _track(self, handle: Any) -> Any:
        with self._cond:
            if not self._pending:  # the stall clock starts with the first outstanding job
                self._last_done = time.monotonic()
            self._pending += 1
        handle.add_done_callback(self._finished)  # at once if it is done already
        return handle

    def _finished(self, handle: Any) -> None:
        result = handle.result()
        error = getattr(result, "error", None) or ""
        streamed = (getattr(result, "tokens", 0) if handle.kind == "generate" and result.ok
                    and not getattr(result, "token_ids", None) else 0)
        with self._cond:
            self._streamed += streamed
            self._pending -= 1
            self._last_done = time.monotonic()
            if not result.ok and "unreachable" in error and self._unreachable is None:
                self._unreachable = error
            self._cond.notify_all()

    def take_streamed_tokens(self) -> int:
        with self._cond:
            n, self._streamed = self._streamed, 0
        return n

    @property
    def pending(self) -> int:
        return self._pending

    def wait(self) -> None:
        """Until every job submitted so far has finished. EngineFailed when
        the engine could not be reached or stalled."""
        t0 = time.monotonic()
        try:
            with self._cond:
                while self._pending and self._unreachable is None:
                    stuck = time.monotonic() - self._last_done
                    if stuck > self.stall_s:
                        raise EngineFailed(f"the engine ({self._where()}) finished none of {self._pending} "
                                           f"jobs in {stuck:.0f} s")
                    self._cond.wait(WAIT_SLICE_S)
                if self._unreachable is not None:
                    raise EngineFailed(f"the engine cannot be reached ({self._where()}): {self._unreachable}")
        finally:
            self.waited_s += time.monotonic() - t0

    def _where(self) -> str:
        engines = getattr(self.llm, "engines", None)
        if engines:
            return ", ".join(e.llm.base_url for e in engines)
        return str(getattr(self.llm, "base_url", type(self.llm).__name__))
