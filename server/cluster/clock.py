"""One clock for every region of a world: tick k of every region is due at
the same moment, `epoch + k / rate` (plus the region's phase), where the
epoch is the world's first start, kept in the lease bucket. So a player
handed from one region to the next sees tick numbers (and the game's time
of day) run on, not jump; and a region that was down (kill -9, restart)
runs the ticks it missed back to back until it is in step again.

Neighbouring columns tick half a tick apart (`phase`): an entity that
leaves one region just after its tick reaches the next one's tick about
half a tick later, instead of a whole tick (the handoff's latency).
Clocks of the machines must agree (NTP) to well within a tick.
"""
from __future__ import annotations

import time

import msgpack
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

# The key of the epoch in the world's lease bucket (region names have no dots).
EPOCH_KEY = "world.epoch"
# A region further behind than this (down for long) does not run every
# missed tick: it starts again from now, its tick numbers behind the
# others' (logged). Catching up 30 s at a few ms a tick takes a second or two.
MAX_CATCH_UP_S = 30.0


async def world_epoch(kv, now: float | None = None) -> float:
    """The world's epoch (wall-clock seconds), set by the first region to ask."""
    for _ in range(3):
        try:
            entry = await kv.get(EPOCH_KEY)
            if entry.value:
                return float(msgpack.unpackb(entry.value))
        except (KeyNotFoundError, KeyDeletedError):
            pass
        try:
            await kv.create(EPOCH_KEY, msgpack.packb(time.time() if now is None else now))
        except KeyWrongLastSequenceError:
            pass  # another region set it first: read it
    raise RuntimeError("could not read or set the world's epoch")


class TickSchedule:
    """When each tick is due, on this process's monotonic clock."""

    def __init__(self, epoch: float, rate: float, phase: float = 0.0) -> None:
        self.dt = 1.0 / rate
        self.origin = time.monotonic() - (time.time() - epoch) + phase * self.dt

    def due(self, tick: int) -> float:
        return self.origin + tick * self.dt

    def current(self) -> int:
        """The tick due now (the last one whose time has come)."""
        return max(0, int((time.monotonic() - self.origin) / self.dt))

    def reanchor(self, tick: int) -> None:
        """Make `tick` due now: after falling more than MAX_CATCH_UP_S behind."""
        self.origin = time.monotonic() - tick * self.dt
