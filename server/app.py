"""The server process: opens the database, rebuilds the world, serves
WebSockets and HTTP on one port, and runs the tick on a drift-free schedule
(`next = start + k * dt`). SIGINT/SIGTERM write a final snapshot, close every
connection with 1001 and a reason, and exit."""
from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections import Counter, deque
from typing import Any

from websockets.asyncio.server import Server, ServerConnection as WsConnection, serve

from protocol.errors import CloseCode
from protocol.limits import SUBPROTOCOL
from server.config import ServerConfig
from server.game import Game
from server.http import handle_http
from server.metrics import ServerMetrics
from server.net import WS_MAX_QUEUE, WS_MAX_SIZE, Client, ws_frame
from server.socket_writer import SocketWriter, guard
from server.npcs import install_npcs, load_model
from server.persistence import Database
from server.restore import open_world
from server.world.catalog import load_goods
from server.world.village import village
from server.world.world import WorldRules

log = logging.getLogger("hamlet.server")

# Ticks we may fall behind before skipping ahead rather than running a burst.
MAX_TICKS_BEHIND = 5


class HamletServer:
    def __init__(self, config: ServerConfig, llm: Any = None) -> None:
        """`llm`: a language model already loaded (tests share one); by
        default the server loads the one `config.model` names, and closes
        only a model it loaded."""
        self.config = config
        self.metrics = ServerMetrics()
        catalog = load_goods(config.goods or None)  # a bad goods file stops us before the database opens
        self.db = Database(config.db)
        tilemap = village()
        rules = WorldRules(ticks_per_tile=config.ticks_per_tile)
        world = open_world(self.db, tilemap, config.seed, rules, catalog=catalog)
        self.game = Game(config, world, self.db, self.metrics)
        self.llm = None
        self.minds = None
        self._owns_llm = llm is None
        if config.npcs:
            self.llm = llm if llm is not None else load_model(config, self.metrics.registry)
            self.minds = install_npcs(self.game, config, self.llm)
        self.game.adopt_orphans()
        self.connections: set[Client] = set()
        self._per_ip: Counter[str] = Counter()
        self._ws_server: Server | None = None
        self._tick_task: asyncio.Task | None = None
        self._stopping = False
        # Recent (duration, lateness) per tick for /stats: exact percentiles
        # over the last ~3 minutes at 20 Hz, in a few hundred KB.
        self.tick_stats: deque[tuple[float, float]] = deque(maxlen=4096)
        # payload id -> (payload, frame) for this tick; holding the payload
        # keeps its id from being reused while the entry lives.
        self._framed: dict[int, tuple[bytes, bytes]] = {}
        # While a tick runs, frames for a client are gathered and written in
        # one system call at the end of the tick (see Client.write_batch).
        self.batching = False
        self.batched: list[Client] = []
        self.writer: SocketWriter | None = None

    def framed(self, payload: bytes) -> bytes:
        """The WebSocket frame of a payload, framed once per tick however many
        clients it goes to (shared state updates)."""
        hit = self._framed.get(id(payload))
        if hit is not None and hit[0] is payload:
            return hit[1]
        wire = ws_frame(payload)
        if len(self._framed) > 4096:  # a safety bound; cleared every tick anyway
            self._framed.clear()
        self._framed[id(payload)] = (payload, wire)
        return wire

    @property
    def port(self) -> int:
        assert self._ws_server is not None
        return self._ws_server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    async def start(self) -> None:
        cfg = self.config
        # The world, map and model structures live for the whole run: move
        # them out of the collector's sight, and collect young objects less
        # often, so a full collection does not land in the middle of a tick.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 50)
        self._ws_server = await serve(
            self._handle, cfg.host, cfg.port,
            process_request=lambda conn, req: handle_http(self, req),
            subprotocols=[SUBPROTOCOL], compression=None, max_size=WS_MAX_SIZE, max_queue=WS_MAX_QUEUE,
            ping_interval=cfg.ping_interval_s, ping_timeout=cfg.ping_timeout_s, close_timeout=2,
            server_header="hamlet",
        )
        if cfg.write_thread:
            self.writer = SocketWriter(asyncio.get_running_loop())
        self._tick_task = asyncio.get_running_loop().create_task(self._tick_loop())

    async def _handle(self, ws: WsConnection) -> None:
        client = Client(ws, self)
        cfg = self.config
        if self._stopping:
            await ws.close(CloseCode.GOING_AWAY, "server shutting down")
            return
        if len(self.connections) >= cfg.max_clients:
            self.metrics.connections_refused.labels("server_full").inc()
            await ws.close(CloseCode.TRY_AGAIN_LATER, "server full")
            return
        if self._per_ip[client.peer] >= cfg.max_clients_per_ip:
            self.metrics.connections_refused.labels("per_ip").inc()
            await ws.close(CloseCode.POLICY_VIOLATION, "too many connections from your address")
            return
        sock = ws.transport.get_extra_info("socket") if ws.transport else None
        if sock is not None and cfg.socket_sndbuf > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, cfg.socket_sndbuf)
        if self.writer is not None:
            client.guard = guard(ws)
        self.connections.add(client)
        self._per_ip[client.peer] += 1
        self.metrics.clients.set(len(self.connections))
        deadline = asyncio.create_task(client.join_deadline(cfg.join_timeout_s))
        try:
            await client.reader()
        except Exception:  # a bug in one connection's handling closes that connection only
            log.exception("connection %s failed", client)
            client.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            if client.closing is not None:  # finish our close (code and reason) before returning
                try:
                    await asyncio.wait_for(asyncio.shield(client.closing), 5.0)
                except (asyncio.TimeoutError, Exception):
                    pass
            client.closed = True
            if client.guard is not None:
                client.guard.drop()
            deadline.cancel()
            self.game.disconnected(client)
            self.connections.discard(client)
            self._per_ip[client.peer] -= 1
            if self._per_ip[client.peer] <= 0:
                del self._per_ip[client.peer]
            self.metrics.clients.set(len(self.connections))

    async def _tick_loop(self) -> None:
        dt = 1.0 / self.config.tick_rate
        start = time.monotonic()
        k = 0
        m = self.metrics
        while True:
            k += 1
            due = start + k * dt
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            began = time.monotonic()
            lateness = began - due
            if lateness > MAX_TICKS_BEHIND * dt:  # far behind: skip ahead, don't burst
                skipped = int(lateness / dt)
                k += skipped
                m.ticks_skipped.inc(skipped)
            m.tick_lateness.observe(max(0.0, lateness))
            self._framed.clear()
            self.batching = True
            try:
                self.game.run_tick()
            except Exception:
                log.exception("tick %d failed", self.game.world.tick)
                raise
            finally:
                self.batching = False
                batched, self.batched = self.batched, []
                writer = self.writer if self.writer is not None and not self.writer.broken else None
                handoff: list | None = [] if writer is not None else None
                m.bytes_out.inc(sum(client.write_batch(handoff) for client in batched))
                if handoff and writer is not None and not writer.submit(handoff):
                    for g, parts in handoff:  # the writer went out of service: the loop writes
                        g.writelines(parts)
            took = time.monotonic() - began
            m.tick_duration.observe(took)
            self.tick_stats.append((took, max(0.0, lateness)))

    async def stop(self, reason: str = "server shutting down") -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            try:
                await self._tick_task
            except (asyncio.CancelledError, Exception):
                pass
        self.game.snapshot()
        for client in list(self.connections):
            client.close(CloseCode.GOING_AWAY, reason)
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
            try:
                await asyncio.wait_for(self._ws_server.wait_closed(), 5.0)
            except asyncio.TimeoutError:
                log.warning("some connections did not close in time")
        if self.writer is not None:
            self.writer.close()
        self.db.close()
        if self.minds is not None:
            self.minds.close()
        if self.llm is not None and self._owns_llm:
            self.llm.close()

    async def serve_forever(self, stop: asyncio.Event) -> None:
        await self.start()
        done = asyncio.create_task(stop.wait())
        await asyncio.wait({done, self._tick_task}, return_when=asyncio.FIRST_COMPLETED)
        await self.stop()
