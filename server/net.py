"""The network layer: WebSocket connections and HTTP on one port.

It only moves bytes. Frames from the socket go through the sans-I/O
`protocol.connection.ServerConnection`; accepted messages go to the game's
inbox. Frames the game produces are written straight to the transport as
complete WebSocket frames, framed once per payload (a state update shared
by a whole cell is framed once for all its clients), from the event loop's
thread, so they interleave safely with websockets' own control frames.
When a client's transport buffer is above its bound, frames wait in a
bounded outbox and a latest-state-wins slot, flushed each tick. A close
takes the connection out of the counts at once and ends the socket within
a bound: the close frame if the transport can take it, then a hard cut.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection as WsConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State as WsState

from protocol.codec import encode
from protocol.connection import Accepted, CloseRequired, Rejected, ServerConnection
from protocol.errors import CloseCode, ErrorCode

if TYPE_CHECKING:
    from server.hosting import Host as HamletServer

log = logging.getLogger("hamlet.net")

# websockets buffers a whole message before handing it to us; the protocol
# layer refuses anything over 4 KiB with 1009, and this hard cap keeps a
# hostile peer from making us buffer more than 64 KiB first.
WS_MAX_SIZE = 64 * 1024
# Frames received but not yet read by our reader task (per connection).
# Both are given to websockets' `serve` by `hamlet serve` and the gateway alike.
WS_MAX_QUEUE = 16
# Bytes we let sit in a client's transport buffer before holding frames
# back: a few ticks of a busy view. Past it the client is reading slower
# than we write, and newer states replace older ones instead of queueing.
TRANSPORT_HIGH_WATER = 64 * 1024
# Closing: frames queued before a close (the error that explains it) get
# this long to leave; then the close handshake gets CLOSE_HANDSHAKE_S (the
# server's websockets close_timeout, 2 s, plus a margin) when the close
# frame can leave at once, or CLOSE_BLOCKED_S when the transport is still
# over its high water mark (a peer that stopped reading: it has that long
# to resume before the TCP connection is cut without a close frame).
OUTBOX_FLUSH_S = 1.0
CLOSE_HANDSHAKE_S = 2.5
CLOSE_BLOCKED_S = 0.5


def ws_frame(payload: bytes) -> bytes:
    """A complete, unmasked, unfragmented binary WebSocket frame (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n) + payload
    return struct.pack("!BBQ", 0x82, 127, n) + payload


class Client:
    """One WebSocket connection and what the game needs to know about it."""

    def __init__(self, ws: WsConnection, server: HamletServer) -> None:
        self.ws = ws
        self.server = server
        cfg = server.config
        self.protocol = ServerConnection(now=time.monotonic())
        self.entity: int | None = None
        self.known: tuple = ()  # the view last sent (see server/replication.py)
        self.known_cell: tuple[int, int] | None = None
        self.pending = 0  # inputs in the game's inbox
        self.closed = False
        self.close_code: int | None = None
        self.closing: asyncio.Task | None = None  # the close handshake under way
        self.state_frame: bytes | None = None  # framed, waiting for the transport
        self.state_since: float | None = None
        self.outbox: deque[bytes] = deque()  # framed, waiting for the transport
        self.outbox_bytes = 0
        self._batch: list[bytes] = []  # this tick's frames, written together at its end
        self._batch_state: bytes | None = None
        self.max_frames = cfg.max_outbox_frames
        self.max_bytes = cfg.max_outbox_bytes
        self.peer = ws.remote_address[0] if ws.remote_address else "?"
        self.guard = None  # a socket_writer.GuardedTransport once the server hands writes to its thread

    def __repr__(self) -> str:
        return f"<Client {self.peer} entity={self.entity}>"

    @property
    def backlogged(self) -> bool:
        return bool(self.outbox) or self.state_frame is not None

    # -- called by the game, never blocks ------------------------------------
    def _write(self, wire: bytes) -> bool:
        """Write a framed message now if the transport has room."""
        t = self.ws.transport
        if t is None or t.is_closing() or self.ws.protocol.state is not WsState.OPEN:
            return False
        if t.get_write_buffer_size() > TRANSPORT_HIGH_WATER:
            return False
        t.write(wire)
        self.server.metrics.bytes_out.inc(len(wire))
        return True

    def send(self, payload: bytes) -> None:
        self.send_wire(ws_frame(payload))

    def send_wire(self, wire: bytes) -> None:
        if self.closed:
            return
        if not self.outbox and self.state_frame is None:
            if self.server.batching:  # during a tick: one write per client at its end
                if not self._batch and self._batch_state is None:
                    self.server.batched.append(self)
                self._batch.append(wire)
                return
            if self._write(wire):
                return
        self._queue(wire)

    def _queue(self, wire: bytes) -> None:
        if self.closed:  # e.g. the rest of a batch after its first frame overflowed the outbox
            return
        if len(self.outbox) >= self.max_frames or self.outbox_bytes + len(wire) > self.max_bytes:
            self.close(CloseCode.SLOW_READER, "not reading: outbox full")
            return
        self.outbox.append(wire)
        self.outbox_bytes += len(wire)

    def state_slot_free(self) -> bool:
        return self.state_frame is None

    def put_state(self, payload: bytes) -> None:
        if self.closed:
            return
        wire = self.server.framed(payload)
        if not self.outbox and self.server.batching:
            if not self._batch and self._batch_state is None:
                self.server.batched.append(self)
            self._batch_state = wire
            return
        if not self.outbox and self._write(wire):
            return
        self.state_frame = wire
        self.state_since = time.monotonic()

    def write_batch(self, handoff: list | None = None) -> int:
        """End of tick: this tick's frames (events, acks, then the state) in
        one write, or, if the transport is full, into the outbox and the
        state slot. With `handoff`, a connection the writer thread may take
        (see server/socket_writer.py) is appended to it instead of written
        here. Returns the bytes written (the caller counts them once a tick:
        a metrics update per client was ~4% of a 1,000-client tick)."""
        batch, state = self._batch, self._batch_state
        self._batch, self._batch_state = [], None
        if self.closed:
            return 0
        t = self.ws.transport
        if (t is not None and not t.is_closing() and self.ws.protocol.state is WsState.OPEN
                and t.get_write_buffer_size() <= TRANSPORT_HIGH_WATER):
            parts = batch + [state] if state is not None else batch
            g = self.guard
            if handoff is not None and g is not None and g.idle():
                handoff.append((g, parts))
            else:
                t.writelines(parts)
            return sum(map(len, parts))
        for wire in batch:
            self._queue(wire)
        if state is not None and not self.closed:
            self.state_frame = state
            self.state_since = time.monotonic()
        return 0

    def flush(self) -> None:
        """Write what waits, in order, while the transport has room."""
        while self.outbox and not self.closed:
            if not self._write(self.outbox[0]):
                return
            wire = self.outbox.popleft()
            self.outbox_bytes -= len(wire)
        if self.state_frame is not None and not self.closed and self._write(self.state_frame):
            self.state_frame = None
            self.state_since = None

    def close(self, code: CloseCode, reason: str) -> None:
        """Close with `code`: the connection stops counting at once (the
        server's connection count, /healthz, the game's players soon after
        this tick) and the socket is closed within a bounded time."""
        if self.closed:
            return
        self.closed = True
        self.close_code = int(code)
        if code == CloseCode.SLOW_READER:  # it reads nothing: what waits for it is dropped
            self._batch, self._batch_state = [], None
            self.outbox.clear()
            self.outbox_bytes = 0
            self.state_frame = self.state_since = None
        else:
            self.outbox.extend(self._batch)  # this tick's frames (say, the error that explains the close) go first
            self._batch = []
        self.protocol.close()
        server = self.server
        server.metrics.closes.labels(str(int(code))).inc()
        server.connections.discard(self)
        server.metrics.clients.set(len(server.connections))
        loop = asyncio.get_running_loop()
        # The game forgets the connection after the current tick (never while
        # it walks its clients); the handler's own call later does nothing.
        loop.call_soon(server.game.disconnected, self)
        self.closing = loop.create_task(self._close(code, reason))

    async def _close(self, code: CloseCode, reason: str) -> None:
        # Frames already queued (the errors that explain this close) go out
        # first, for at most a second: a peer that does not read gets none.
        deadline = time.monotonic() + OUTBOX_FLUSH_S
        while self.outbox and time.monotonic() < deadline:
            if self._write(self.outbox[0]):
                self.outbox_bytes -= len(self.outbox.popleft())
            else:
                await asyncio.sleep(0.02)
        t = self.ws.transport
        room = t is not None and t.get_write_buffer_size() <= TRANSPORT_HIGH_WATER
        try:
            # websockets writes the close frame, then waits for the transport
            # to drain without a deadline: a peer that never reads would hold
            # the socket until the keepalive gave up. Hence the bound.
            await asyncio.wait_for(self.ws.close(int(code), reason[:120]),
                                   CLOSE_HANDSHAKE_S if room else CLOSE_BLOCKED_S)
        except Exception:  # the peer may be gone already, or never answered
            pass
        t = self.ws.transport
        if t is not None and not t.is_closing():
            t.abort()  # cut: the close frame could not be delivered in time

    # -- reading -------------------------------------------------------------
    async def reader(self) -> None:
        game = self.server.game
        metrics = self.server.metrics
        try:
            async for data in self.ws:
                if not self._on_frame(data, game, metrics):
                    return
        except ConnectionClosed:
            return

    def _on_frame(self, data: bytes | str, game, metrics) -> bool:
        """Handle one frame; False when the connection must stop reading."""
        metrics.bytes_in.inc(len(data))
        event = self.protocol.receive(data, time.monotonic())
        if isinstance(event, Accepted):
            msg = event.message
            if msg.type == "ping":
                self.send(encode("pong", id=msg.data["id"], tick=game.world.tick, seq=msg.seq))
                metrics.messages_in.labels("ping").inc()
                return True
            refused = game.submit(self, msg)
            if refused is not None:
                if msg.type == "hello":
                    self.protocol.join_refused()
                metrics.rejected.labels(str(refused)).inc()
                self.send(encode("error", code=str(refused), seq=msg.seq,
                                 msg="server busy, try again" if refused is ErrorCode.OVERLOADED
                                 else "too many messages waiting"))
        elif isinstance(event, Rejected):
            metrics.rejected.labels(str(event.error.code)).inc()
            self.send(event.reply)
        elif isinstance(event, CloseRequired):
            if event.error is not None:
                metrics.rejected.labels(str(event.error.code)).inc()
            self.close(event.code, event.reason)
            return False
        return True

    async def join_deadline(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.entity is None and not self.closed:
            self.close(CloseCode.JOIN_TIMEOUT, f"no hello within {seconds:g} s")
