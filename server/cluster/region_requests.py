"""In-process requests to a region (tests, `hamlet region --walkers`):
`make(world)` runs at the next tick boundary and its result comes back
once the tick is committed (if the region stops first, ConnectionError). Mixed into `RegionNode` (its `requests` queue
is drained by the `cluster_in` system)."""
from __future__ import annotations

import asyncio
from typing import Any

from server.world.inputs import Input, Join, MoveTo, Say

# In-process requests waiting for the next tick.
MAX_REQUESTS = 8192


class RegionRequests:
    def submit(self, make: Any) -> asyncio.Future:
        """`make(world)` returns an Input (or a Rejection) at the next tick;
        the future gets its result once the tick is committed."""
        fut = asyncio.get_running_loop().create_future()
        if len(self.requests) >= MAX_REQUESTS or not self.running:
            fut.set_exception(ConnectionError("region busy or stopped"))
        else:
            self.requests.append((make, fut))
            self.awaiting.add(fut)  # at most MAX_REQUESTS plus one tick's worth awaiting a commit
            fut.add_done_callback(self.awaiting.discard)
        return fut

    def fail_requests(self, why: str) -> None:
        """The region stopped: every request not answered yet fails (queued,
        or applied in a tick whose commit will not come)."""
        self.requests.clear()
        for fut in list(self.awaiting):
            if not fut.done():
                fut.set_exception(ConnectionError(why))

    def join(self, name: str, x: int, y: int) -> asyncio.Future:
        def make(world) -> Input:
            return Join(world.allocate_entity_id(), name, x, y)
        return self.submit(make)

    def move(self, eid: int, x: int, y: int) -> asyncio.Future:
        return self.submit(lambda world: MoveTo(eid, x, y))

    def say(self, eid: int, text: str) -> asyncio.Future:
        return self.submit(lambda world: Say(eid, text))
