"""A region's database replicated through JetStream (`hamlet region
--replicate`), mixed into `RegionNode`: so a standby on another machine
keeps its own copy and takes over from it, with no disk shared.

Owns the region's side: while a standby waits for the lease it follows the
region's subject into its own database (db_follow.py); once the lease is
its, it catches up, fences the subject and opens the world from its copy
as a restarted region does, recording its writes (db_replica.py) for its
publisher (db_publish.py). And what waits for the records: with
replication on, nothing a commit decided is told to anyone (a client's
frames, a neighbour's confirmation or handoff, speech and border cells, an
in-process request) before JetStream acknowledged that commit's records;
a record not acknowledged within the lease's length stops the region
(`halt_on_error`): it can no longer show its writes are kept.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from server.cluster.db_follow import Follower
from server.cluster.db_publish import part_size
from server.cluster.db_replica import Recording, ReplicaError

log = logging.getLogger("hamlet.region")

# A clean stop's wait for its last records (the final snapshot): ms when
# JetStream is there; when it is gone the stop must not hang on it (nothing
# acknowledged is at stake: every tick was, and the snapshot stays in the
# outbox, published at the next start if no other owner wrote since).
FLUSH_ON_STOP_S = 2.0


class RegionReplication:
    def _init_replication(self, replicate: bool, part_bytes: int | None, stream_max_bytes: int | None) -> None:
        self.replicate = replicate
        self.replica_part_bytes = part_bytes  # None: the connection's max_payload, less room for headers
        self.stream_max_bytes = stream_max_bytes
        self.publisher = None  # db_publish.Publisher, once we own the region
        self._publish_task: asyncio.Task | None = None
        # told once this tick's records are acknowledged: one tick's callbacks
        # (its speech, border cells, in-process answers), emptied every tick
        self._held: list[Callable[[], None]] = []

    async def wait_for_lease(self, wait_s: float) -> None:
        """Take the region's lease, waiting up to `wait_s` for it as a
        standby; with replication, keeping our own copy of the region's
        database meanwhile, and taking over from it (our publisher)."""
        follower = None
        if self.replicate:
            follower = Follower(self.nc.jetstream(), self.world_name, self.region.name, self.config.db,
                                part_size(self.nc, self.replica_part_bytes))
            await (follower.open(self.stream_max_bytes) if self.stream_max_bytes else follower.open())
        try:
            deadline = time.monotonic() + wait_s
            while not await self.lease.try_acquire():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"region {self.region.name} is owned by another process")
                if follower is not None:
                    await follower.follow()
                await asyncio.sleep(min(0.5, self.lease_ttl_s / 4))
            if follower is not None:  # a long catch-up must not let the lease run out meanwhile
                keep = asyncio.get_running_loop().create_task(self._keep_lease())
                try:
                    self.publisher = await follower.take_over(self.owner, self._replica_failed)
                finally:
                    keep.cancel()
                if keep.done() and not keep.cancelled() and keep.exception() is not None:
                    raise ReplicaError(f"region {self.region.name}: lost the lease while taking over "
                                       f"({keep.exception()})")
        finally:
            if follower is not None:
                follower.close()

    def recording(self) -> Recording | None:
        """What the region's `Database` records its writes with (None: off)."""
        return Recording(self.publisher.add) if self.publisher is not None else None

    def start_publishing(self) -> None:
        if self.publisher is None:
            return
        self.publisher.on_acked = self.db.conn.acked
        self._publish_task = asyncio.get_running_loop().create_task(self.publisher.run())

    def _replica_failed(self, why: str) -> None:
        if self.running:
            self.halt_on_error()

    async def replica_synced(self, n: int | None = None) -> bool:
        """Wait until our records up to n (default: all so far) are
        acknowledged; False (and the region stopped) if they are not
        within the lease's length or cannot be."""
        if self.publisher is None:
            return True
        ok = await self.publisher.synced(self.db.conn.n if n is None else n, self.lease_ttl_s)
        if not ok and not self.failed:
            log.error("region %s: records not acknowledged by JetStream within %.1f s (%s); stopping without "
                      "telling anyone more", self.region.name, self.lease_ttl_s, self.publisher.failed or "no answer")
            self.halt_on_error()
        return ok

    def after_replicated(self, fn: Callable[[], None]) -> None:
        """Run `fn` once this tick's commit is kept: after the commit, and
        with replication after JetStream acknowledged its records."""
        if self.publisher is None:
            self.game.after_commit(fn)
        else:
            self.game.after_commit(lambda: self._held.append(fn))

    def run_held(self) -> None:
        held, self._held = self._held, []
        for fn in held:
            fn()

    async def answer_when_replicated(self, reply: Any, answer: dict[str, Any], eid: int | None, n: int) -> None:
        """An arrival committed between ticks (record n): confirmed to its
        source (and its session's news sent) once n is acknowledged."""
        if not await self.replica_synced(n):
            return  # stopped: the source sends it again, to whoever owns the region next
        self._answer(reply, answer)
        if eid is not None:
            self.flush_arrived(eid)

    async def stop_publishing(self, flush: bool) -> None:
        """A clean stop's last records (its final snapshot) acknowledged
        first, within FLUSH_ON_STOP_S; then the publisher stops."""
        if self.publisher is None or self._publish_task is None:
            return
        connected = self.nc is not None and self.nc.is_connected  # NATS gone: no wait for what cannot come
        wait_s = min(self.lease_ttl_s, FLUSH_ON_STOP_S)
        if flush and (not connected or not await self.publisher.synced(self.db.conn.n, wait_s)):
            log.warning("region %s: the last records were not acknowledged; a standby takes over from before "
                        "them", self.region.name)
        self._publish_task.cancel()
        try:
            await self._publish_task
        except (asyncio.CancelledError, Exception):
            pass
