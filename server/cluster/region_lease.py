"""Keeping a region's lease (lease.py), mixed into `RegionNode`: renewed
every third of its length while the region ticks (a lost lease stops the
region without writing more), while a standby takes over from its copy
(region_replication.py), and once right after the world is opened, before
the first tick: opening (a replay, a first snapshot) runs on the event loop,
and one that outlasts the lease may have let a standby take the region.
"""
from __future__ import annotations

import asyncio
import logging

from server.cluster.lease import LeaseLost

log = logging.getLogger("hamlet.region")


class RegionLeaseKeeping:
    async def _renew(self) -> None:
        """While the region ticks."""
        while self.running:
            await asyncio.sleep(self.lease_ttl_s / 3)
            try:
                await self.lease.renew()
            except LeaseLost:
                log.error("region %s: lease lost; stopping without writing more", self.region.name)
                self.lost_lease = True
                self.running = False
                if self._tick_task is not None:
                    self._tick_task.cancel()
                return
            except Exception:  # NATS unreachable for a moment: retry; expiry decides
                log.warning("region %s: lease renewal failed", self.region.name, exc_info=True)

    async def _keep_lease(self) -> None:
        """Renew the lease while taking over (the region's own renewal
        starts with its ticks); a lost lease ends it with LeaseLost."""
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            try:
                await self.lease.renew()
            except LeaseLost:
                raise
            except Exception:  # NATS unreachable for a moment: retried; expiry decides
                log.warning("region %s: lease renewal failed", self.region.name, exc_info=True)

    async def _still_ours(self) -> None:
        """The lease renewed before the first tick: opening (a replay, a
        first snapshot) runs on the loop, and a long one can outlast the
        lease and let a standby take the region; then we must not tick."""
        try:
            await self.lease.renew()
        except LeaseLost:
            self.db.close()
            if self.npcs is not None:
                self.npcs.close()
            await self.nc.close()
            raise
        except Exception:  # NATS away a moment: the renewal task tries again, expiry decides
            log.warning("region %s: lease renewal failed", self.region.name, exc_info=True)
