"""A region's side of the gateways: players' sessions whose sockets a
gateway holds (`RemoteClient`s), mixed into `RegionNode`.

- `in`: numbered, validated client messages from a gateway; each number is
  applied once (a gateway sends a message again after a handoff when the
  old region may not have seen it), then the message goes to the game's
  inbox like any connection's. `gone`: the socket closed.
- `find`: which region holds a session token's avatar (`live`: in our
  world; `rest`: its account last left it here; `stale`: we knew it, it
  went on; `none`).
- After each tick (its commit included), one `out` message per gateway:
  per session `[sid, n, frames, news]`, `n` the highest message number
  received so far (every one of them answered or applied by now).

The table of sessions is kept here; session_handoffs.py moves a session
out of it with its avatar and into the next region's. One that left lately
(`_departed`) has its late messages dropped quietly: the gateway sends
them on to the region that took it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from typing import Any

from protocol.codec import Message, decode_client, encode
from protocol.connection import error_frame
from protocol.errors import ErrorCode, ProtocolError
from server.cluster import wire
from server.cluster.remote_client import RemoteClient
from server.sessions import hash_token

log = logging.getLogger("hamlet.region")

# Items in one `in` message: a gateway batches one event-loop turn of its
# clients' messages (each client is rate-limited to 40 in a burst).
MAX_IN_ITEMS = 8192
# A published `out` batch is split past this: NATS refuses payloads over
# its max_payload (1 MiB by default).
MAX_OUT_BYTES = 512 * 1024
# Gateways whose heartbeat we track: a few per world; the bound keeps a
# faulty peer from growing the table.
MAX_GATEWAYS = 256
# A gateway not heard for this long is gone: its sessions are disconnected
# (their avatars wait out the grace period like any dropped connection).
GATEWAY_SILENT_S = 5.0
HEARTBEAT_S = 0.5
# Resumes (a hello with a token) waiting for the next tick: a crowd of
# clients coming back after a region restarted; past it, `overloaded`.
MAX_RESUMES = 4096


class RegionSessions:
    def _init_sessions(self) -> None:
        self.remote: dict[tuple[str, int], RemoteClient] = {}
        self._dirty: set[RemoteClient] = set()
        self._moved_away: list[RemoteClient] = []
        self._departed: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._orphans: list[tuple[str, list[Any]]] = []  # news for sessions not here
        self._gateways: dict[str, float] = {}
        self._resumes: deque[tuple[RemoteClient, Message]] = deque()

    # -- what RemoteClient calls -------------------------------------------------
    def dirty(self, client: RemoteClient) -> None:
        self._dirty.add(client)

    def closed(self, client: RemoteClient) -> None:
        self.remote.pop((client.gw, client.sid), None)
        asyncio.get_running_loop().call_soon(self.game.disconnected, client)

    # -- from gateways --------------------------------------------------------------
    async def _on_client(self, msg) -> None:
        try:
            m = wire.unpack(msg.data, ("in", "gone"))
            gw, items = m["gw"], m["items"]
            if not isinstance(gw, str) or not 0 < len(gw) <= 64 or not isinstance(items, list):
                raise wire.WireError("bad gateway or items")
        except (wire.WireError, KeyError) as exc:
            log.warning("region %s: bad message from a gateway: %s", self.region.name, exc)
            return
        if not self.running:
            return  # the gateway sees us go quiet and closes the sessions
        self._heard(gw)
        if m["t"] == "gone":
            for sid in items[:MAX_IN_ITEMS]:
                client = self.remote.pop((gw, sid), None) if isinstance(sid, int) else None
                if client is not None and not client.closed:
                    client.closed = True
                    self.game.disconnected(client)
            return
        for item in items[:MAX_IN_ITEMS]:
            if (not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], int)
                    or not isinstance(item[1], int) or not isinstance(item[2], bytes)):
                continue  # not from a gateway of ours
            self._client_message(gw, *item)

    def _client_message(self, gw: str, sid: int, n: int, raw: bytes) -> None:
        decoded = decode_client(raw)
        client = self.remote.get((gw, sid))
        if client is None:
            if (gw, sid) in self._departed:
                return  # it left with its avatar: the gateway sends this on
            if not (isinstance(decoded, Message) and decoded.type == "hello"):
                self._orphans.append((gw, [sid, 0, [], [["unknown"]]]))
                return
            client = self.remote[(gw, sid)] = RemoteClient(self, gw, sid)
        if n <= client.n_in:
            return  # applied before
        client.n_in = n
        self.dirty(client)
        if isinstance(decoded, ProtocolError):  # the gateway checked it: cannot happen, answered anyway
            client.send(error_frame(decoded))
            return
        if decoded.type == "ping":
            client.send(encode("pong", id=decoded.data["id"], tick=self.game.world.tick, seq=decoded.seq))
            return
        if decoded.type == "hello" and decoded.get("token") is not None:
            if len(self._resumes) >= MAX_RESUMES:
                client.protocol.join_refused()
                client.send(encode("error", code=str(ErrorCode.OVERLOADED), seq=decoded.seq,
                                   msg="region busy, try again"))
            else:
                self._resumes.append((client, decoded))  # checked at the next tick boundary
            return
        self._submit(client, decoded)

    def _submit(self, client: RemoteClient, decoded: Message) -> None:
        refused = self.game.submit(client, decoded)
        if refused is not None:
            if decoded.type == "hello":
                client.protocol.join_refused()
            client.send(encode("error", code=str(refused), seq=decoded.seq,
                               msg="region busy, try again" if refused is ErrorCode.OVERLOADED
                               else "too many messages waiting"))

    async def _on_find(self, msg) -> None:
        try:
            h = wire.unpack(msg.data, ("find",))["h"]
            if not isinstance(h, str) or len(h) != 64:
                raise wire.WireError("bad token hash")
        except (wire.WireError, KeyError) as exc:
            await msg.respond(wire.pack({"t": "found", "where": "none", "why": str(exc)[:100]}))
            return
        where = "none"
        account = self.db.account_by_token_hash(h) if self.running else None
        if account is not None:
            if account.entity in self.game.world.entities:
                where = "live"
            elif self.regions.owner_of(account.x, account.y) == self.region.name:
                where = "rest"
            else:
                where = "stale"
        await msg.respond(wire.pack({"t": "found", "where": where}))

    def _heard(self, gw: str) -> None:
        if gw in self._gateways or len(self._gateways) < MAX_GATEWAYS:
            self._gateways[gw] = time.monotonic()

    async def _on_alive(self, msg) -> None:
        try:
            m = wire.unpack(msg.data, ("gwalive", "alive"))
        except wire.WireError:
            return
        if m["t"] == "gwalive" and isinstance(m.get("gw"), str) and 0 < len(m["gw"]) <= 64:
            self._heard(m["gw"])

    async def _heartbeat(self) -> None:
        subject = wire.alive_subject(self.world_name)
        while self.running:
            try:
                await self.nc.publish(subject, wire.pack({"t": "alive", "region": self.region.name,
                                                          "owner": self.owner, "tick": self.game.world.tick}))
            except Exception:  # NATS away for a moment: the next beat tries again
                log.debug("heartbeat failed", exc_info=True)
            now = time.monotonic()
            for gw in [g for g, t in self._gateways.items() if now - t > GATEWAY_SILENT_S]:
                del self._gateways[gw]
                for key in [k for k in self.remote if k[0] == gw]:
                    client = self.remote.pop(key)
                    client.closed = True
                    self.game.disconnected(client)
                log.warning("region %s: gateway %s went quiet; its sessions are away", self.region.name, gw)
            await asyncio.sleep(HEARTBEAT_S)

    def admit_resumes(self) -> None:
        """At the tick boundary, before the inputs: a resume goes on to the
        game (joins.py) unless its avatar is not here and not resting here
        (it is on its way to another region, or there already): rejoining it
        here would put it in two worlds."""
        world = self.game.world
        transit = self.in_transit() if self._resumes else set()
        while self._resumes:
            client, msg = self._resumes.popleft()
            if client.closed:
                continue
            account = self.db.account_by_token_hash(hash_token(msg.data["token"]))
            if account is not None and account.entity not in world.entities and (
                    account.entity in transit or self.regions.owner_of(account.x, account.y) != self.region.name):
                client.protocol.join_refused()
                client.send(encode("error", code=str(ErrorCode.OVERLOADED), seq=msg.seq,
                                   msg="your avatar is on its way to another part of the world; try again"))
                continue
            self._submit(client, msg)

    # -- after each tick --------------------------------------------------------------
    def flush_gateways(self) -> None:
        by_gw: dict[str, list[list[Any]]] = {}
        for client in self._dirty:
            by_gw.setdefault(client.gw, []).append(client.take())
        self._dirty = set()
        for client in self._moved_away:
            client.live = False
        self._moved_away.clear()
        for gw, item in self._orphans:
            by_gw.setdefault(gw, []).append(item)
        self._orphans.clear()
        tick = self.game.world.tick
        for gw, items in by_gw.items():
            batch: list[list[Any]] = []
            size = 0
            for item in items:
                batch.append(item)
                size += 32 + sum(map(len, item[2]))
                if size > MAX_OUT_BYTES:
                    self._publish_out(gw, tick, batch)
                    batch, size = [], 0
            if batch:
                self._publish_out(gw, tick, batch)

    def flush_arrived(self, eid: int) -> None:
        """Between ticks, right after an arrival is committed: its session's
        news (`attached`) to its gateway now, not with the next tick's
        frames, so the gateway sends on the client's messages half a tick
        sooner. Nothing of ours is in it but that news and the number the
        old region received (no message of this session reached us yet)."""
        client = self.game.clients.get(eid)
        if isinstance(client, RemoteClient) and client in self._dirty:
            self._dirty.discard(client)
            self._publish_out(client.gw, self.game.world.tick, [client.take()])

    def _publish_out(self, gw: str, tick: int, items: list[list[Any]]) -> None:
        data = wire.pack({"t": "out", "region": self.region.name, "owner": self.owner, "tick": tick, "items": items})
        self._spawn(self.nc.publish(wire.gateway_subject(self.world_name, gw), data))
