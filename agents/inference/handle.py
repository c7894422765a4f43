"""The handle a caller holds for one submitted job: `JobHandle`, the
concrete `Handle` (api.py) of both the engine client and the remote backend.

Owns: completion state shared between the thread that produces a result
(an engine thread, a receiver thread, or the event loop itself) and the
callers that consume it, either by polling from a synchronous tick loop
(`done()`, `result()`) or from asyncio (`await handle`, `handle.stream()`).
Nothing here blocks.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

_END = object()
R = TypeVar("R")


class JobHandle(Generic[R]):
    def __init__(self, job_id: int, kind: str, cancel: Callable[[int], object] | None = None):
        self.job_id = job_id
        self.kind = kind                       # "generate" or "score"
        self._cancel_fn = cancel
        self._lock = threading.Lock()
        self._result: R | None = None
        self._pieces: list[str] = []           # bounded by the job's max_new_tokens
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._streams: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self._callbacks: list[Callable[[JobHandle[R]], None]] = []

    # -- polling side -------------------------------------------------------
    def done(self) -> bool:
        return self._result is not None

    def result(self) -> R:
        if self._result is None:
            raise asyncio.InvalidStateError(f"job {self.job_id} is not done")
        return self._result

    def cancel(self) -> bool:
        """Ask for cancellation; the handle completes with status "cancelled"."""
        if self._result is not None:
            return False
        if self._cancel_fn is not None:
            self._cancel_fn(self.job_id)
        return True

    def add_done_callback(self, fn: Callable[[JobHandle[R]], None]) -> None:
        """Call `fn(handle)` on completion, from whichever thread completes it."""
        with self._lock:
            if self._result is None:
                self._callbacks.append(fn)
                return
        fn(self)

    @property
    def text_so_far(self) -> str:
        return "".join(self._pieces)

    # -- asyncio side -------------------------------------------------------
    def __await__(self):
        if self._result is not None:
            return self._result
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            if self._result is None:
                self._waiters.append((loop, fut))
            else:
                fut.set_result(self._result)
        return (yield from fut.__await__())

    async def stream(self) -> AsyncIterator[str]:
        """Yield text pieces of a generation as they are produced."""
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()   # unbounded but holds at most max_new_tokens pieces
        with self._lock:
            for p in self._pieces:
                q.put_nowait(p)
            if self._result is None:
                self._streams.append((loop, q))
            else:
                q.put_nowait(_END)
        while True:
            item = await q.get()
            if item is _END:
                return
            yield item

    # -- producer side (any thread) ----------------------------------------
    def _push(self, piece: str) -> None:
        if not piece or self._result is not None:
            return
        with self._lock:
            self._pieces.append(piece)
            streams = list(self._streams)
        for loop, q in streams:
            _call_soon(loop, q.put_nowait, piece)

    def _finish(self, result: R) -> bool:
        with self._lock:
            if self._result is not None:
                return False
            self._result = result
            waiters, self._waiters = self._waiters, []
            streams, self._streams = self._streams, []
            callbacks, self._callbacks = self._callbacks, []
        for loop, fut in waiters:
            _call_soon(loop, _set_result, fut, result)
        for loop, q in streams:
            _call_soon(loop, q.put_nowait, _END)
        for fn in callbacks:
            fn(self)
        return True


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _call_soon(loop: asyncio.AbstractEventLoop, fn, *args) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass  # that loop is closed; its waiter is gone
