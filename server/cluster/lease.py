"""Region ownership: a lease in a JetStream key-value bucket.

One key per region (`<region>`) in the bucket `hamlet_leases_<world>` holds
`{owner, expires}`. Every change is a compare-and-swap on the key's
revision: `create` when there is no key, `update(last=revision)` to renew
or to take over a lease whose `expires` has passed. So two contenders
cannot both win, and an owner that lost its lease (it stalled, a standby
took over) learns so on its next renew, which fails: it must stop ticking.

`expires` is wall-clock time: owners' clocks must agree to well within the
lease's length (NTP does). A lease's length is the longest a dead owner's
region stays unowned before a standby takes it over.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgpack
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

# Lease length: a standby takes a dead region over within this (plus its
# polling interval); short enough for a quick recovery, long enough that a
# tick stalled by a slow disk (a few hundred ms) does not lose it.
DEFAULT_TTL_S = 3.0


class LeaseLost(RuntimeError):
    """The lease is no longer ours: another process owns the region."""


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    expires: float
    revision: int


def bucket_name(world: str) -> str:
    return f"hamlet_leases_{world}"


async def lease_bucket(js, world: str):
    """The world's lease bucket, created on first use (history 1: only the
    current holder matters)."""
    return await js.create_key_value(bucket=bucket_name(world), history=1,
                                     description=f"region leases of world {world}")


class RegionLease:
    def __init__(self, kv, region: str, owner: str, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.kv = kv
        self.region = region
        self.owner = owner
        self.ttl_s = ttl_s
        self.clock = clock
        self.revision: int | None = None  # of our last write, while we hold it

    @property
    def held(self) -> bool:
        return self.revision is not None

    def _value(self) -> bytes:
        return msgpack.packb({"owner": self.owner, "expires": self.clock() + self.ttl_s})

    async def holder(self) -> Holder | None:
        try:
            entry = await self.kv.get(self.region)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if not entry.value:  # a deleted key reads as empty
            return None
        v = msgpack.unpackb(entry.value)
        return Holder(str(v["owner"]), float(v["expires"]), entry.revision)

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it or its holder let it expire.
        True when it is ours now."""
        current = await self.holder()
        try:
            if current is None:
                self.revision = await self.kv.create(self.region, self._value())
                return True
            if current.owner != self.owner and current.expires > self.clock():
                return False
            self.revision = await self.kv.update(self.region, self._value(), last=current.revision)
            return True
        except KeyWrongLastSequenceError:  # someone else wrote first
            self.revision = None
            return False

    async def renew(self) -> None:
        """Extend our lease; raises LeaseLost if someone else wrote the key
        since our last write (a standby took over while we stalled)."""
        if self.revision is None:
            raise LeaseLost(f"region {self.region}: no lease to renew")
        try:
            self.revision = await self.kv.update(self.region, self._value(), last=self.revision)
        except KeyWrongLastSequenceError:
            self.revision = None
            raise LeaseLost(f"region {self.region}: the lease was taken over") from None

    async def release(self) -> None:
        """Give the lease up at once (a clean stop): a standby need not wait
        for it to expire."""
        if self.revision is None:
            return
        try:
            await self.kv.update(self.region, msgpack.packb({"owner": "", "expires": 0.0}), last=self.revision)
        except KeyWrongLastSequenceError:
            pass
        self.revision = None
