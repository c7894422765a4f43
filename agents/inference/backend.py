"""What every runner shares: the `Backend` Protocol, the one loop that
advances an engine step, and the backend driven by its caller's loop.

Owns:
  - `Backend`: what `EngineClient` (client.py) needs from wherever the
    engine runs (runners.py: inline, thread, process; cuda.py).
  - `StepEngine`: what a runner needs from an engine (engine.py's `Engine`).
  - `Device` hooks and `Stepper`: a step is `engine.step_iter()`, a
    generator that yields a sync point wherever results must come back from
    the device. `Stepper.poll()` resumes it only once the device says that
    point is reached, and never waits; `Stepper.run()` waits. On the CPU
    nothing is yielded, so one poll is one whole step.
  - `DirectBackend`: submissions and steps on the caller's thread; the
    inline runner as it is, the CUDA runner with its device hooks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, runtime_checkable

from .api import RunsIn
from .jobs import Deliver, Event, Request

OnDead = Callable[[str], None]


@runtime_checkable
class Backend(Protocol):
    @property
    def runs_in(self) -> RunsIn: ...

    def attach(self, deliver: Deliver, on_dead: OnDead | None = None) -> None:
        """Start delivering events (and engine stats) to `deliver`, from any
        thread; `on_dead(reason)` if the engine dies under it."""
        ...

    def submit(self, req: Request) -> bool:
        """Hand a job over without blocking; False if there is no room."""
        ...

    def cancel(self, job_id: int) -> None: ...

    def step(self) -> bool:
        """Advance the engine if the caller drives it; True while work remains."""
        ...

    def close(self) -> None: ...


class StepEngine(Protocol):
    interrupt: Callable[[], None] | None

    def submit(self, req: Request) -> list[Event]: ...

    def cancel(self, job_id: int) -> None: ...

    def has_work(self) -> bool: ...

    def step(self) -> list[Event]: ...

    def step_iter(self) -> Iterator[Any]: ...

    def take_events(self) -> list[Event]: ...

    def stats(self) -> dict: ...


class Device:
    """Per-device hooks of the step loop; the CPU's: nothing to wait for."""

    def context(self) -> AbstractContextManager:
        """Entered around each resumption of a step (CUDA: its side stream)."""
        return nullcontext()

    def ready(self, sync: Any) -> bool:
        """Whether the device has reached a sync point the step yielded."""
        return True

    def wait(self, sync: Any) -> None:
        """Block until it has."""


class Stepper:
    def __init__(self, engine: StepEngine, device: Device | None = None):
        self.engine, self.device = engine, device or Device()
        self._step: Iterator[Any] | None = None   # the suspended step, if one is in flight
        self._sync: Any = None                    # what it waits for

    @property
    def in_flight(self) -> bool:
        return self._step is not None

    def poll(self, deliver: Deliver) -> bool:
        """Advance as far as possible without waiting; True while work remains."""
        if self._step is not None and not self.device.ready(self._sync):
            return True
        if self._step is None:
            if not self.engine.has_work():
                return False
            self._step = self.engine.step_iter()
        with self.device.context():
            try:
                self._sync = next(self._step)
                return True
            except StopIteration:
                self._step, self._sync = None, None
        deliver(self.engine.take_events(), self.engine.stats())
        return self.engine.has_work()

    def run(self, deliver: Deliver) -> None:
        """One whole step, waiting on the device where it must."""
        while self.poll(deliver) and self._step is not None:
            self.device.wait(self._sync)


class DirectBackend:
    """The engine on the caller's thread: submit and cancel go straight in,
    and the caller's loop calls `step()` (the inline runner: simple and
    exact, but a step runs on the loop; bench/inference's "inline" baseline)."""
    runs_in: RunsIn = "inline"

    def __init__(self, engine: StepEngine, device: Device | None = None):
        self.engine = engine
        self.stepper = Stepper(engine, device)
        self._deliver: Deliver | None = None

    def attach(self, deliver: Deliver, on_dead: OnDead | None = None) -> None:
        self._deliver = deliver

    def submit(self, req: Request) -> bool:
        refused = self.engine.submit(req)
        if refused and self._deliver is not None:
            self._deliver(refused, None)
        return True

    def cancel(self, job_id: int) -> None:
        self.engine.cancel(job_id)

    def step(self) -> bool:
        assert self._deliver is not None, "attach() first"
        return self.stepper.poll(self._deliver)

    def close(self) -> None:
        release = getattr(self.engine, "release", None)
        if release is not None:
            release()
