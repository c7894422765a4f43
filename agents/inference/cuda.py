"""The CUDA runner: the engine steps on a side stream, polled, never awaited.

Owns `CudaDevice` (the step loop's hooks for a GPU: a side
`torch.cuda.Stream` around each resumption of a step; a sync point is a
recorded `torch.cuda.Event`, ready when `Event.query()` says so) and
`CudaBackend`, the direct backend (backend.py) with those hooks plus an
asyncio task that polls while there is work. Whoever polls (the world's tick
loop between ticks, or that task) never blocks on the GPU. Submissions
must come from the thread that polls. Importable without a GPU.
"""
from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from typing import Any

from .backend import DirectBackend, Device, StepEngine
from .jobs import Request


class CudaDevice(Device):
    def __init__(self) -> None:
        import torch
        self.torch = torch
        self.stream = torch.cuda.Stream()

    def context(self) -> AbstractContextManager:
        return self.torch.cuda.stream(self.stream)

    def ready(self, sync: Any) -> bool:
        return sync is None or sync.query()

    def wait(self, sync: Any) -> None:
        if sync is not None:
            sync.synchronize()


class CudaBackend(DirectBackend):
    runs_in = "cuda"

    def __init__(self, engine: StepEngine, poll_interval_s: float = 0.001):
        self.device = CudaDevice()
        super().__init__(engine, self.device)
        self.poll_interval_s = poll_interval_s
        self._task: asyncio.Task | None = None

    def submit(self, req: Request) -> bool:
        super().submit(req)
        self._ensure_driver()
        return True

    poll = DirectBackend.step

    async def drive(self) -> None:
        """Poll from the event loop until there is no work left."""
        while self.step():
            await asyncio.sleep(self.poll_interval_s)
        self._task = None

    def _ensure_driver(self) -> None:
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return            # a synchronous tick loop calls step() itself
        self._task = loop.create_task(self.drive())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.stepper.in_flight:
            self.device.torch.cuda.current_stream().wait_stream(self.device.stream)
