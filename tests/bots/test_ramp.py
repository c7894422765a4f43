"""`hamlet bots` starts its bots on schedule even when its event loop is
busy (client_demo/bots.py: start_on_schedule): a thousand bots decoding
their state updates make every sleep return late, and one sleep per bot
stretched a 5 s ramp to ~80 s (the cluster bench's 1,000-bot runs never
finished)."""
from __future__ import annotations

import asyncio
import time

from client_demo.bots import start_on_schedule


async def hog(stop: asyncio.Event) -> None:
    while not stop.is_set():
        time.sleep(0.01)          # 10 ms of work per turn of the loop, as busy bots' callbacks take
        await asyncio.sleep(0)


async def test_bots_due_start_together_on_a_busy_loop():
    stop = asyncio.Event()
    busy = asyncio.create_task(hog(stop))
    started_at: list[float] = []
    t0 = time.monotonic()
    try:
        await start_on_schedule([lambda: started_at.append(time.monotonic()) for _ in range(300)], 0.5, t0)
    finally:
        stop.set()
        await busy
    assert len(started_at) == 300
    assert started_at == sorted(started_at)
    # one sleep per bot on this loop: >= 300 turns of 10 ms, 3 s; on schedule: the ramp and a few turns
    assert started_at[-1] - t0 < 1.0, started_at[-1] - t0
    assert started_at[150] - t0 >= 0.2                    # still a ramp, not all at once


async def test_no_ramp_starts_everyone_at_once():
    started: list[int] = []
    await start_on_schedule([lambda i=i: started.append(i) for i in range(5)], 0.0, time.monotonic())
    assert started == [0, 1, 2, 3, 4]
