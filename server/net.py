"""The network layer: WebSocket connections and HTTP on one port.

It only moves bytes: frames from the socket go through the sans-I/O
`protocol.connection.ServerConnection`, accepted messages go to the game's
inbox, and frames the game produces go out through a per-client writer task
with a bounded outbox and a latest-state-wins slot.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection as WsConnection
from websockets.exceptions import ConnectionClosed

from protocol.codec import encode
from protocol.connection import Accepted, CloseRequired, Rejected, ServerConnection
from protocol.errors import CloseCode, ErrorCode

if TYPE_CHECKING:
    from server.app import HamletServer

log = logging.getLogger("hamlet.net")


class Client:
    """One WebSocket connection and what the game needs to know about it."""

    def __init__(self, ws: WsConnection, server: HamletServer) -> None:
        self.ws = ws
        self.server = server
        cfg = server.config
        self.protocol = ServerConnection(now=time.monotonic())
        self.entity: int | None = None
        self.known: dict = {}
        self.known_cell: tuple[int, int] | None = None
        self.pending = 0  # inputs in the game's inbox
        self.closed = False
        self.close_code: int | None = None
        self.closing: asyncio.Task | None = None  # the close handshake under way
        self.state_frame: bytes | None = None
        self.state_since: float | None = None
        self.outbox: deque[bytes] = deque()
        self.outbox_bytes = 0
        self.max_frames = cfg.max_outbox_frames
        self.max_bytes = cfg.max_outbox_bytes
        self.wakeup = asyncio.Event()
        self.peer = ws.remote_address[0] if ws.remote_address else "?"

    def __repr__(self) -> str:
        return f"<Client {self.peer} entity={self.entity}>"

    # -- called by the game, never blocks ------------------------------------
    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        if len(self.outbox) >= self.max_frames or self.outbox_bytes + len(frame) > self.max_bytes:
            self.close(CloseCode.SLOW_READER, "not reading: outbox full")
            return
        self.outbox.append(frame)
        self.outbox_bytes += len(frame)
        self.wakeup.set()

    def state_slot_free(self) -> bool:
        return self.state_frame is None

    def put_state(self, frame: bytes) -> None:
        if self.closed:
            return
        self.state_frame = frame
        self.state_since = time.monotonic()
        self.wakeup.set()

    def close(self, code: CloseCode, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = int(code)
        self.protocol.close()
        self.server.metrics.closes.labels(str(int(code))).inc()
        self.wakeup.set()
        self.closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: CloseCode, reason: str) -> None:
        # Frames already queued (the errors that explain this close) go out
        # first, for at most a second: a peer that does not read gets none.
        try:
            await asyncio.wait_for(self._flush(), 1.0)
        except Exception:
            pass
        try:
            await self.ws.close(int(code), reason[:120])
        except Exception:  # the peer may be gone already
            pass

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the writer notice `closed` and stop
        while self.outbox:
            frame = self.outbox.popleft()
            self.outbox_bytes -= len(frame)
            await self.ws.send(frame)

    # -- tasks ---------------------------------------------------------------
    async def writer(self) -> None:
        ws = self.ws
        metrics = self.server.metrics
        try:
            while not self.closed:
                await self.wakeup.wait()
                self.wakeup.clear()
                # The outbox first: a `welcome` must precede the first state.
                while not self.closed and (self.state_frame is not None or self.outbox):
                    if self.outbox:
                        frame = self.outbox.popleft()
                        self.outbox_bytes -= len(frame)
                        await ws.send(frame)
                    else:
                        frame = self.state_frame
                        await ws.send(frame)
                        self.state_frame = None
                        self.state_since = None
                    metrics.bytes_out.inc(len(frame))
        except ConnectionClosed:
            pass

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
                self.send(encode("pong", id=msg.data["id"], tick=game.world.tick))
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
