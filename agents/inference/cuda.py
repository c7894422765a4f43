"""The CUDA runner: the engine steps on a side stream, polled, never awaited.

Owns `CudaBackend`. Each engine step is a generator (`Engine.step_iter`)
that yields a recorded `torch.cuda.Event` wherever it would have to read
results back from the GPU. `poll()` resumes the step only once that event
reports done (`Event.query()`), so whoever calls `poll()` (the world's tick
loop between ticks, or the asyncio task `drive()`) never blocks on the GPU.
Submissions must come from the thread that polls.
"""
from __future__ import annotations

import asyncio


class CudaBackend:
    name = "cuda"

    def __init__(self, engine, poll_interval_s: float = 0.001):
        import torch
        self.torch = torch
        self.engine = engine
        self.stream = torch.cuda.Stream()
        self.poll_interval_s = poll_interval_s
        self._step = None        # the suspended step generator, if one is in flight
        self._event = None       # what it waits for
        self._deliver = None
        self._task: asyncio.Task | None = None

    def attach(self, deliver, on_dead=None) -> None:
        self._deliver = deliver

    def submit(self, req) -> bool:
        refused = self.engine.submit(req)
        if refused:
            self._deliver(refused)
        self._ensure_driver()
        return True

    def cancel(self, job_id: int) -> None:
        self.engine.cancel(job_id)

    def poll(self) -> bool:
        """Advance as far as possible without waiting; True while work remains."""
        if self._step is not None and self._event is not None and not self._event.query():
            return True
        if self._step is None:
            if not self.engine.has_work():
                return False
            self._step = self.engine.step_iter()
        with self.torch.cuda.stream(self.stream):
            try:
                self._event = next(self._step)
            except StopIteration:
                self._step, self._event = None, None
                self._deliver(self.engine.take_events(), self.engine.stats())
        return True

    step = poll

    async def drive(self) -> None:
        """Poll from the event loop until there is no work left."""
        while self.poll():
            await asyncio.sleep(self.poll_interval_s)
        self._task = None

    def _ensure_driver(self) -> None:
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return            # a synchronous tick loop calls poll() itself
        self._task = loop.create_task(self.drive())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._step is not None:
            self.torch.cuda.current_stream().wait_stream(self.stream)
