"""What a gateway says and hears over NATS (see `wire.py`): client
messages batched per region once per event-loop turn, `gone` when a socket
closes, each region's `out` batch per tick (frames to the sockets, session
news to the routing table), heartbeats both ways, and the watch that closes
the sessions of a region gone quiet or taken over. Mixed into `Gateway`,
whose state it uses (`nc`, `routes`, `alive`, `connections`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from protocol.connection import State
from protocol.errors import CloseCode
from server.cluster import wire
from server.net import Client, ws_frame

log = logging.getLogger("hamlet.gateway")

# A region not heard for this long is dead (it beats every 0.5 s): its
# sessions are closed with 1001 and their clients resume elsewhere or later.
REGION_SILENT_S = 2.0
# A session between regions longer than this (its destination refused it,
# or died) is closed with 1001: the client resumes with its token.
MOVING_TIMEOUT_S = 10.0
CHECK_EVERY_S = 0.1
HEARTBEAT_S = 1.0
# Client messages in one `in` message: well under NATS's max payload
# (each is at most a 4 KiB frame, most are tens of bytes).
MAX_IN_ITEMS = 4096


class GatewayBus:
    # -- NATS ---------------------------------------------------------------------------
    def _queue(self, region: str, items: list[list[Any]]) -> None:
        self._forward.setdefault(region, []).extend(items)
        if not self._forward_scheduled:
            self._forward_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_forward)

    def _flush_forward(self) -> None:
        self._forward_scheduled = False
        forward, self._forward = self._forward, {}
        for region, items in forward.items():
            self.forwarded.labels(region).inc(len(items))
            for i in range(0, len(items), MAX_IN_ITEMS):
                data = wire.pack({"t": "in", "gw": self.name, "items": items[i:i + MAX_IN_ITEMS]})
                self._spawn(self.nc.publish(wire.client_subject(self.world_name, region), data))

    def _gone(self, region: str, sid: int) -> None:
        if self.nc is not None and not self.nc.is_closed:
            self._spawn(self.nc.publish(wire.client_subject(self.world_name, region),
                                        wire.pack({"t": "gone", "gw": self.name, "items": [sid]})))

    async def _on_out(self, msg) -> None:
        try:
            m = wire.unpack(msg.data, ("out",))
            region, owner, tick, items = m["region"], m["owner"], m["tick"], m["items"]
            if region not in self.regions.regions or not isinstance(items, list) or not isinstance(tick, int):
                raise wire.WireError("bad out message")
        except (wire.WireError, KeyError) as exc:
            log.warning("bad message from a region: %s", exc)
            return
        self.world.tick = max(self.world.tick, tick)
        now = time.monotonic()
        for item in items:
            route, act, resend = self.routes.report(region, str(owner), item, now)
            if route is None:
                if act:  # attached a session whose socket is gone: tell it so
                    self._gone(region, item[0])
                continue
            if resend is not None:
                self.attached.labels(region).inc()
                if resend:
                    self.resent.labels(region).inc(len(resend))
                    self._queue(region, resend)
            client = route.client
            frames = [f for f in item[2] if isinstance(f, bytes)]
            if frames:
                client.send_wire(b"".join(map(ws_frame, frames)))
            for x in act:
                self._act(client, x)

    def _act(self, client: Client, x: list[Any]) -> None:
        kind = x[0]
        if kind == "joined" and client.protocol.state is State.JOINING:
            client.entity = x[1] if len(x) > 1 and isinstance(x[1], int) else 0
            client.protocol.join_accepted()
        elif kind == "refused" and client.protocol.state is State.JOINING:
            client.protocol.join_refused()
        elif kind == "close":
            code = x[1] if len(x) > 1 and isinstance(x[1], int) and 1000 <= x[1] < 5000 else 1011
            client.close(code, str(x[2])[:120] if len(x) > 2 else "closed")

    async def _on_alive(self, msg) -> None:
        try:
            m = wire.unpack(msg.data, ("alive", "gwalive"))
        except wire.WireError:
            return
        if m["t"] == "alive" and m.get("region") in self.regions.regions:
            self.alive[m["region"]] = (str(m.get("owner")), time.monotonic())

    def _is_alive(self, region: str) -> bool:
        a = self.alive.get(region)
        return a is not None and time.monotonic() - a[1] <= REGION_SILENT_S

    async def _watch(self) -> None:
        """Heartbeats out; sessions of dead or taken-over regions closed; the
        outboxes of slow sockets flushed."""
        beat = 0.0
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            now = time.monotonic()
            if now - beat >= HEARTBEAT_S and not self.nc.is_closed:
                beat = now
                try:
                    await self.nc.publish(wire.alive_subject(self.world_name), wire.pack({"t": "gwalive", "gw": self.name}))
                except Exception:
                    log.debug("heartbeat failed", exc_info=True)
            for client in [c for c in self.connections if c.backlogged]:
                client.flush()
            for route in list(self._by_client.values()):
                r = route.where
                if r is None or route.client.closed:
                    continue
                a = self.alive.get(r)
                dead = (a is None or now - a[1] > REGION_SILENT_S
                        or (route.moving_to is None and route.owner is not None and a[0] != route.owner))
                if route.moving_to is not None and now - route.moving_since > MOVING_TIMEOUT_S:
                    dead = True
                if dead:
                    route.client.close(CloseCode.GOING_AWAY, f"region {r} restarting; resume with your token")
