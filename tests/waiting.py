"""Waiting in tests: poll a condition until it holds or a deadline passes,
instead of sleeping a fixed time and hoping. The deadlines are generous
(this machine is shared and slow); a test that meets its condition early
goes on at once.

`until` (async) and `until_sync` poll a predicate. To show that something
did NOT happen, wait for the server to have run a few more ticks and for
the client to have read everything sent before (`settled`): a pong comes
after every frame the server wrote before it.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

# How often a condition is checked: short against a 20-50 Hz tick.
POLL_S = 0.01


async def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
                poll: float = POLL_S) -> None:
    """Return as soon as `predicate()` is true; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(poll)


def until_sync(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               poll: float = POLL_S) -> None:
    """`until` for code without an event loop (a thread does the work)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(poll)


async def settled(server: Any, *clients: Any, ticks: int = 3) -> None:
    """The server has run `ticks` more ticks and each client has read all it
    was sent before: what was going to arrive has arrived."""
    tick = server.game.world.tick
    await until(lambda: server.game.world.tick >= tick + ticks, what=f"{ticks} more ticks")
    for c in clients:
        await c.ping()
