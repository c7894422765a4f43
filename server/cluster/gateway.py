"""`hamlet gateway`: the socket side of a world split into regions.

Clients connect here exactly as to `hamlet serve` (PROTOCOL.md, unchanged).
Each WebSocket is a `server.net.Client` (the same sans-I/O protocol
checks, rate limits, bounded outboxes, close codes); its accepted messages
go over NATS to the region that holds the avatar (`gateway_routes.py`
keeps the table), and the frames that region produces come back once per
tick and go to the socket. A handoff moves the route: the region that took
the avatar reports `attached`, and the gateway sends it whatever the old
region had not applied. `ping` is answered here. A region that goes quiet
(killed) or changes owner closes its sessions with 1001: their clients
resume with their token, and find their avatar wherever it is.

Its port answers plain HTTP as `hamlet serve`'s does (server/http.py):
/protocol.json and the browser client's files, so a browser opened at the
gateway plays through it; plus the gateway's own /healthz and /metrics.

Not through a gateway yet: `admin` (answered `forbidden`; operators talk
to a region's own tools).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections import Counter
from typing import Any

from prometheus_client import Counter as PromCounter
from websockets.asyncio.server import Server, ServerConnection as WsConnection, serve
from websockets.http11 import Request, Response

from protocol.codec import Message, encode
from protocol.connection import State
from protocol.errors import CloseCode, ErrorCode
from protocol.limits import SUBPROTOCOL
from agents.inference.nats_log import connection_callbacks
from server.cluster import wire
from server.cluster.gateway_bus import REGION_SILENT_S, GatewayBus
from server.cluster.gateway_routes import MAX_UNCONFIRMED, Route, Routes
from server.cluster.regions import RegionMap
from server.config import ServerConfig
from server.http import client_files, reachable_host, response
from server.metrics import ServerMetrics
from server.net import WS_MAX_QUEUE, WS_MAX_SIZE, Client, ws_frame
from server.sessions import hash_token

log = logging.getLogger("hamlet.gateway")

# Messages waiting to be published to one region (one event-loop turn's
# worth; every client is rate-limited): past it, `overloaded`.
MAX_FORWARD = 16384
# A token's avatar may be in transit (about a tick): ask the regions again
# this many times, this far apart, before answering `overloaded`.
FIND_TRIES, FIND_WAIT_S = 10, 0.1


class _Clock:
    tick = 0  # the latest tick any region reported: what `pong` carries


class Gateway(GatewayBus):
    """Duck-types what `server.net.Client` needs of its host (server/hosting.py)
    and of the game (`submit`, `disconnected`, `world.tick`)."""

    def __init__(self, world_name: str, nats_url: str, regions: RegionMap, config: ServerConfig,
                 spawn: tuple[int, int], name: str | None = None) -> None:
        self.world_name = wire.check_world_name(world_name)
        self.nats_url = nats_url
        self.regions = regions
        self.config = config
        self.name = name or f"gw-{os.getpid()}-{secrets.token_hex(4)}"
        self.spawn_region = regions.owner_of(*spawn)
        self.metrics = ServerMetrics()
        r = self.metrics.registry
        self.forwarded = PromCounter("hamlet_gateway_forwarded_total", "Client messages sent to a region",
                                     ["region"], registry=r)
        self.resent = PromCounter("hamlet_gateway_resent_total", "Client messages sent again to the region that "
                                  "took an avatar over (not applied by the one it left)", ["region"], registry=r)
        self.attached = PromCounter("hamlet_gateway_routes_moved_total", "Sessions whose route moved to a region "
                                    "with their avatar", ["region"], registry=r)
        self.game = self
        self.world = _Clock()
        self.connections: set[Client] = set()
        self.batching = False
        self.batched: list[Client] = []
        self.routes = Routes()
        self._by_client: dict[Client, Route] = {}
        self.alive: dict[str, tuple[str, float]] = {}  # region -> (owner, last heard)
        self._forward: dict[str, list[list[Any]]] = {}
        self._forward_scheduled = False
        self._per_ip: Counter[str] = Counter()
        self._tasks: set[asyncio.Task] = set()
        self._ws_server: Server | None = None
        self.nc = None

    def framed(self, payload: bytes) -> bytes:
        return ws_frame(payload)

    @property
    def port(self) -> int:
        assert self._ws_server is not None
        return self._ws_server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """Where a client connects (not ws://0.0.0.0 for a gateway on every address)."""
        return f"ws://{reachable_host(self.config.host)}:{self.port}"

    # -- start and stop -------------------------------------------------------------
    async def start(self) -> None:
        import nats

        cfg = self.config
        self.nc = await nats.connect(self.nats_url, name=f"hamlet-{self.world_name}-{self.name}", connect_timeout=2,
                                     max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                     **connection_callbacks(log, self.nats_url))
        await self.nc.subscribe(wire.gateway_subject(self.world_name, self.name), cb=self._on_out)
        await self.nc.subscribe(wire.alive_subject(self.world_name), cb=self._on_alive)
        self._ws_server = await serve(
            self._handle, cfg.host, cfg.port, process_request=lambda conn, req: self._http(req),
            subprotocols=[SUBPROTOCOL], compression=None, max_size=WS_MAX_SIZE, max_queue=WS_MAX_QUEUE,
            ping_interval=cfg.ping_interval_s, ping_timeout=cfg.ping_timeout_s, close_timeout=2,
            server_header="hamlet-gateway")
        self._spawn(self._watch())

    async def stop(self) -> None:
        for client in list(self.connections):
            client.close(CloseCode.GOING_AWAY, "gateway shutting down")
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
            try:
                await asyncio.wait_for(self._ws_server.wait_closed(), 5.0)
            except asyncio.TimeoutError:
                pass
        for task in list(self._tasks):
            task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:  # bounded: a nats-server that died with `hamlet cluster` must not hold the stop
                await asyncio.wait_for(self.nc.drain(), 2.0)
            except Exception as exc:
                log.warning("gateway: NATS did not drain (%s: %s)", type(exc).__name__, exc)
                try:
                    await self.nc.close()
                except Exception:  # the connection is gone already: nothing to close
                    pass

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sockets ----------------------------------------------------------------------
    async def _handle(self, ws: WsConnection) -> None:
        client = Client(ws, self)
        cfg = self.config
        if len(self.connections) >= cfg.max_clients:
            await ws.close(CloseCode.TRY_AGAIN_LATER, "server full")
            return
        if self._per_ip[client.peer] >= cfg.max_clients_per_ip:
            await ws.close(CloseCode.POLICY_VIOLATION, "too many connections from your address")
            return
        self.connections.add(client)
        self._per_ip[client.peer] += 1
        self.metrics.clients.set(len(self.connections))
        self._by_client[client] = self.routes.open(client)
        deadline = asyncio.create_task(client.join_deadline(cfg.join_timeout_s))
        try:
            await client.reader()
        except Exception:  # a bug in one connection's handling closes that connection only
            log.exception("connection %s failed", client)
            client.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            if client.closing is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(client.closing), 5.0)
                except (asyncio.TimeoutError, Exception):
                    pass
            client.closed = True
            deadline.cancel()
            self.disconnected(client)
            self.connections.discard(client)
            self._per_ip[client.peer] -= 1
            if self._per_ip[client.peer] <= 0:
                del self._per_ip[client.peer]
            self.metrics.clients.set(len(self.connections))

    def submit(self, client: Client, msg: Message) -> ErrorCode | None:
        """An accepted message of a client (server.net.Client calls this)."""
        route = self._by_client.get(client)
        if route is None:
            return ErrorCode.OVERLOADED
        if msg.type == "admin":
            client.send(encode("error", code=str(ErrorCode.FORBIDDEN), seq=msg.seq,
                               msg="admin actions are not taken through a gateway; use a region's own tools"))
            return None
        if len(route.unconfirmed) >= MAX_UNCONFIRMED:
            return ErrorCode.RATE_LIMITED
        if msg.type == "hello":
            self._spawn(self._route_hello(route, msg))
            return None
        return self._send(route, msg)

    def _send(self, route: Route, msg: Message) -> ErrorCode | None:
        if route.region is not None and len(self._forward.get(route.region, ())) >= MAX_FORWARD:
            return ErrorCode.OVERLOADED
        item = self.routes.message(route, encode(msg.type, **msg.data))
        if item is not None:
            self._queue(route.region, [item])
        self.metrics.messages_in.labels(msg.type).inc()
        return None

    async def _route_hello(self, route: Route, msg: Message) -> None:
        client = route.client
        token = msg.get("token")
        region = self.spawn_region if token is None else await self._find(token)
        if client.closed:
            return
        if region is None or not self._is_alive(region):
            if client.protocol.state is State.JOINING:
                client.protocol.join_refused()
            client.send(encode("error", code=str(ErrorCode.OVERLOADED), seq=msg.seq,
                               msg="that part of the world is restarting; try again in a few seconds"))
            return
        route.region, route.owner = region, self.alive[region][0]
        self._send(route, msg)

    async def _find(self, token: str) -> str | None:
        """The region holding the token's avatar (or where it rests); the
        spawn region for a token no region knows (it answers bad_token);
        None while the avatar is between regions or a region is down."""
        body = wire.pack({"t": "find", "h": hash_token(token)})
        names = self.regions.names()
        for _ in range(FIND_TRIES):
            answers = await asyncio.gather(*(self.nc.request(wire.find_subject(self.world_name, r), body, timeout=1.0)
                                             for r in names), return_exceptions=True)
            where: dict[str, str] = {}
            for r, a in zip(names, answers):
                try:
                    where[r] = wire.unpack(a.data, ("found",)).get("where", "none") if not isinstance(a, BaseException) else "down"
                except wire.WireError:
                    where[r] = "down"
            for kind in ("live", "rest"):
                found = [r for r, w in where.items() if w == kind]
                if found:
                    return found[0]
            if all(w == "none" for w in where.values()):
                return self.spawn_region
            await asyncio.sleep(FIND_WAIT_S)
        return None

    def disconnected(self, client: Client) -> None:
        """The socket closed (server.net.Client calls this)."""
        route = self._by_client.pop(client, None)
        if route is None:
            return
        self.routes.close(route)
        for region in {route.region, route.moving_to} - {None}:
            self._gone(region, route.sid)

    # -- HTTP ---------------------------------------------------------------------------
    def _http(self, request: Request) -> Response | None:
        """/healthz and /metrics of this gateway; /protocol.json and the
        browser client's files exactly as `hamlet serve` answers them
        (server/http.py), so the page opened here plays through the gateway."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            now = time.monotonic()
            body = {"status": "ok", "gateway": self.name, "clients": len(self.connections),
                    "regions": {r: (r in self.alive and now - self.alive[r][1] <= REGION_SILENT_S)
                                for r in self.regions.names()}}
            return response(200, "OK", json.dumps(body).encode(), "application/json")
        if path == "/metrics":
            return response(200, "OK", self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        return client_files(self.config.web_root, path)
