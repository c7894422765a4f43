"""Where the engine steps on the CPU: inline, in a thread, or in a worker process.

Owns the CPU backends behind `EngineClient` (each a `Backend`, backend.py):

- `InlineBackend`: the caller's loop calls `step()` (backend.DirectBackend).
- `ThreadBackend`: a thread steps the engine; cheap to start, but the model's
  Python code competes with the loop for the GIL.
- `ProcessBackend`: a spawned worker process loads the model and steps it;
  the loop only moves small messages. The CPU default.

The thread and the worker run the same loop (`_serve_inbox`) over a bounded
inbox of messages: ("submit", req), ("cancel", job_id), ("close",).
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import traceback
from typing import Any

from .api import RunsIn
from .backend import Device, DirectBackend, OnDead, Stepper, StepEngine
from .jobs import Deliver, Request

InlineBackend = DirectBackend


def _put(inbox, item) -> bool:
    try:
        inbox.put_nowait(item)
        return True
    except queue.Full:
        return False


class _InboxBackend:
    """Backends fed through a bounded inbox: a full inbox refuses the job."""
    inbox: Any            # queue.Queue or multiprocessing's Queue

    def submit(self, req: Request) -> bool:
        return _put(self.inbox, ("submit", req))


def _serve_inbox(engine: StepEngine, inbox, send: Deliver, stop: threading.Event | None = None,
                 device: Device | None = None) -> None:
    """The loop a thread or worker runs: take messages, step while there is work
    (a whole step each time, through the shared `Stepper`: backend.py).
    Messages are also taken in the middle of a step (engine.interrupt), so a
    reply to a person can stop an NPC prefill between layers."""
    closing = False
    stepper = Stepper(engine, device)

    def take(block: bool) -> None:
        nonlocal closing
        try:
            msg = inbox.get(timeout=0.2) if block else inbox.get_nowait()
        except queue.Empty:
            msg = None
        while msg is not None and not closing:
            if msg[0] == "close":
                closing = True
            elif msg[0] == "submit":
                refused = engine.submit(msg[1])
                if refused:
                    send(refused, None)
            elif msg[0] == "cancel":
                engine.cancel(msg[1])
            try:
                msg = inbox.get_nowait()
            except queue.Empty:
                msg = None

    engine.interrupt = lambda: take(False)
    while (stop is None or not stop.is_set()) and not closing:
        take(block=not engine.has_work())
        if closing:
            return
        if engine.has_work():
            stepper.run(send)


class ThreadBackend(_InboxBackend):
    runs_in: RunsIn = "thread"

    def __init__(self, engine: StepEngine, inbox_size: int):
        self.engine = engine
        # Bounded by the client's outstanding-job limit plus room for cancels.
        self.inbox: queue.Queue = queue.Queue(maxsize=inbox_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, deliver: Deliver, on_dead: OnDead | None = None) -> None:
        self._thread = threading.Thread(target=self._run, args=(deliver,), name="hamlet-llm", daemon=True)
        self._thread.start()

    def _run(self, deliver: Deliver) -> None:
        _serve_inbox(self.engine, self.inbox, deliver, self._stop)

    def cancel(self, job_id: int) -> None:
        if not _put(self.inbox, ("cancel", job_id)):
            self.engine.cancel(job_id)   # a set.add; safe enough from another thread

    def step(self) -> bool:
        return self.engine.has_work()

    def close(self) -> None:
        self._stop.set()
        try:
            self.inbox.put_nowait(("close",))
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        release = getattr(self.engine, "release", None)
        if release is not None and (self._thread is None or not self._thread.is_alive()):
            release()   # never under a thread still stepping it


def _worker_main(model, device, dtype, limits, threads, nice, inbox, outbox) -> None:
    # Ctrl-C reaches the whole process group: the parent shuts the worker
    # down through its inbox, so the worker ignores the signal itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if nice:
            # The world's tick loop wins the CPU whenever it needs it: measured
            # with 1,000 bots and the NPCs talking, the worker's two threads at
            # nice 5 pushed tick p99 to ~34 ms, at 15 to ~23 ms. Alone with the
            # server, the worker still gets all the CPU the tick leaves.
            os.nice(nice)
        import torch
        if threads:
            torch.set_num_threads(threads)
        from .engine import Engine
        from .model import load_model
        loaded = load_model(model, device=device, dtype=dtype)
        engine = Engine(loaded, **limits)
        outbox.put(("ready", loaded.info()))
    except BaseException:
        outbox.put(("failed", traceback.format_exc()))
        return
    _serve_inbox(engine, inbox, lambda events, stats: outbox.put(("events", events, stats)))
    outbox.put(("closed",))


@contextlib.contextmanager
def _worker_environment():
    """The environment the worker starts with (spawn copies ours): OpenMP
    threads that sleep at a barrier rather than spin. Spinning takes the CPU
    the tick needs while a preempted sibling thread holds the barrier; on
    the 2-core AVX2 machine bench/crowd.py's p95 went from 10.7-18.3 s to
    12.7-13.6 s with it (nice 15). An operator's own OMP_WAIT_POLICY wins."""
    had = os.environ.get("OMP_WAIT_POLICY")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        yield
    finally:
        if had is None:
            os.environ.pop("OMP_WAIT_POLICY", None)


class ProcessBackend(_InboxBackend):
    runs_in: RunsIn = "process"

    def __init__(self, model, device, dtype, limits: dict, inbox_size: int, threads: int | None = None,
                 nice: int = 15, start_timeout: float = 300.0):
        ctx = mp.get_context("spawn")       # fork would copy torch's thread pools mid-flight
        # Bounded: the client never has more than its outstanding-job limit in flight.
        self.inbox = ctx.Queue(maxsize=inbox_size)
        self.outbox = ctx.Queue()            # bounded in practice: one message per engine step or job
        self.proc = ctx.Process(target=_worker_main, name="hamlet-llm-worker", daemon=True,
                                args=(model, device, dtype, limits, threads, nice, self.inbox, self.outbox))
        with _worker_environment():
            self.proc.start()
        try:
            msg = self.outbox.get(timeout=start_timeout)
        except queue.Empty:
            self.proc.kill()
            raise RuntimeError("the inference worker did not start in time") from None
        if msg[0] != "ready":
            self.proc.join(timeout=5)
            raise RuntimeError(f"the inference worker failed to start:\n{msg[1]}")
        self.info = msg[1]
        self._receiver: threading.Thread | None = None
        self._closing = False

    def attach(self, deliver: Deliver, on_dead: OnDead | None = None) -> None:
        self._receiver = threading.Thread(target=self._receive, args=(deliver, on_dead),
                                          name="hamlet-llm-receiver", daemon=True)
        self._receiver.start()

    def _receive(self, deliver: Deliver, on_dead: OnDead | None) -> None:
        while True:
            try:
                msg = self.outbox.get(timeout=0.5)
            except queue.Empty:
                if not self.proc.is_alive():
                    if on_dead and not self._closing:
                        on_dead(f"inference worker exited with code {self.proc.exitcode}")
                    return
                continue
            except (EOFError, OSError):
                return
            if msg[0] == "events":
                deliver(msg[1], msg[2])
            elif msg[0] == "closed":
                return

    def cancel(self, job_id: int) -> None:
        _put(self.inbox, ("cancel", job_id))   # if full, the job finishes or times out on its own

    def step(self) -> bool:
        return self.proc.is_alive()

    def close(self) -> None:
        self._closing = True
        try:
            self.inbox.put(("close",), timeout=1)
        except (queue.Full, ValueError, OSError):
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        if self._receiver is not None:
            self._receiver.join(timeout=2)
