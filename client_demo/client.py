"""An asyncio client for Hamlet: connect, join, move, say, and an async
iterator over what the server sends. The terminal client, the bots and the
tests are built on it. What it knows of the world (the entity mirror, the
purse, offers) is kept by its base, `ClientMirror` (client_mirror.py).

    async with await HamletClient.connect("ws://127.0.0.1:8765") as c:
        await c.join("ann")
        await c.say("hello")
        async for msg in c.messages():
            ...
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from client_demo.client_mirror import ClientMirror, ClientStats, EntityView, decode_frame
from protocol.codec import Message, encode
from protocol.entities import ROWS
from protocol.limits import PROTOCOL_VERSION, SUBPROTOCOL

__all__ = ["ClientStats", "EntityView", "HamletClient", "MAX_QUEUED_MESSAGES", "ServerError"]

# Messages kept for `messages()` when the application reads slower than the
# server sends: a few seconds of a busy view at 20 updates/s. Past it the
# oldest are dropped (and counted): the entity mirror stays exact regardless.
MAX_QUEUED_MESSAGES = 2048


class ServerError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HamletClient(ClientMirror):
    def __init__(self, ws: ClientConnection, url: str, keep_messages: bool = True) -> None:
        self.ws = ws
        self.url = url
        self.keep_messages = keep_messages  # False: only the mirror and replies (load-test bots)
        super().__init__()
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._seq = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._pings: dict[int, tuple[float, asyncio.Future]] = {}
        # unread messages, oldest first (bounded: MAX_QUEUED_MESSAGES), and
        # an event set whenever one arrives or the connection ends
        self._unread: deque[Message] = deque()
        self._arrived = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    # -- connecting ----------------------------------------------------------
    @classmethod
    async def connect(cls, url: str, *, open_timeout: float = 10.0, keep_messages: bool = True) -> HamletClient:
        ws = await connect(url, subprotocols=[SUBPROTOCOL], open_timeout=open_timeout,
                           compression=None, max_size=1 << 22, ping_interval=20, ping_timeout=20)
        return cls(ws, url, keep_messages)

    async def __aenter__(self) -> HamletClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, Exception):
            pass

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    # -- actions -------------------------------------------------------------
    async def _send(self, type_: str, **fields: Any) -> None:
        frame = encode(type_, **fields)
        self.stats.bytes_out += len(frame)
        self.stats.frames_out += 1
        await self.ws.send(frame)

    async def request(self, type_: str, *, timeout: float = 10.0, **fields: Any) -> Message:
        """Send a message with a fresh `seq` and wait for its ack (or welcome);
        an `error` for it raises ServerError."""
        seq = next(self._seq)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[seq] = fut
        try:
            await self._send(type_, seq=seq, **fields)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiting.pop(seq, None)
            if not fut.done():
                fut.cancel()  # no one waits for it now

    async def join(self, name: str, token: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        msg = await self.request("hello", v=PROTOCOL_VERSION, name=name, token=token, timeout=timeout)
        return msg.data

    async def resume(self, timeout: float = 10.0) -> HamletClient:
        """Open a new connection and resume this client's session with its token."""
        if self.token is None or self.name is None:
            raise RuntimeError("nothing to resume: join first")
        new = await HamletClient.connect(self.url)
        await new.join(self.name, token=self.token, timeout=timeout)
        await self.close()
        return new

    async def move(self, to: tuple[int, int] | None = None, *, dir: str | None = None,
                   place: str | None = None, stop: bool | None = None, wait: bool = True) -> None:
        fields = {"to": list(to) if to is not None else None, "dir": dir, "place": place, "stop": stop}
        if wait:
            await self.request("move", **fields)
        else:
            await self._send("move", **fields)

    async def say(self, text: str, to: int | None = None, wait: bool = True) -> int | None:
        """Say something; returns the stored chat id once the server has
        committed it (when `wait`)."""
        if not wait:
            await self._send("say", text=text, to=to)
            return None
        msg = await self.request("say", text=text, to=to)
        return msg.get("chat")

    # -- the economy (see PROTOCOL.md, *Economy*) --------------------------------
    async def give(self, to: int, item: str, n: int = 1) -> None:
        """Hand `n` of `item` (or coins: item "coins") to someone within reach."""
        await self.request("give", to=to, item=item, n=n)

    async def buy(self, shop: int, item: str, n: int = 1, max_price: int = 100_000) -> None:
        """Buy from a shopkeeper within reach; `max_price` bounds the price for one."""
        await self.request("buy", **{"from": shop}, item=item, n=n, max_price=max_price)

    async def sell(self, shop: int, item: str, n: int = 1, min_price: int = 0) -> None:
        await self.request("sell", to=shop, item=item, n=n, min_price=min_price)

    async def shop(self, at: int, timeout: float = 10.0) -> dict[str, Any]:
        """A shop's price list: {"at", "name", "goods": {item: {price, offer, stock}}}."""
        msg = await self.request("shop", at=at, timeout=timeout)
        goods = {row[0]: dict(zip(ROWS["shop"][1:], row[1:])) for row in msg.data["goods"]}
        return {"at": msg.data["at"], "name": msg.data["name"], "goods": goods}

    async def offer(self, to: int, give: dict[str, int] | None = None, coins: int = 0,
                    want: dict[str, int] | None = None, want_coins: int = 0) -> int:
        """Offer a trade to a player within reach; returns the offer's id."""
        msg = await self.request("offer", to=to, give=[[k, v] for k, v in (give or {}).items()] or None,
                                 coins=coins or None, want=[[k, v] for k, v in (want or {}).items()] or None,
                                 want_coins=want_coins or None)
        return msg.data["offer"]

    async def accept(self, offer: int) -> None:
        await self.request("accept", offer=offer)

    async def decline(self, offer: int) -> None:
        await self.request("decline", offer=offer)

    # -- the notice board (see PROTOCOL.md, *Notice board*) -------------------------
    async def board(self, timeout: float = 10.0) -> dict[str, list[dict[str, Any]]]:
        """The board: {"quests": [{id, from, from_name, item, n, reward, expires, text}],
        "notices": [{id, author, writer, text, tick}]} (rows as dicts)."""
        msg = await self.request("board", timeout=timeout)
        return {"quests": [dict(zip(ROWS["quest"], r)) for r in msg.data["quests"]],
                "notices": [dict(zip(ROWS["notice"], r)) for r in msg.data["notices"]]}

    async def turn_in(self, quest: int) -> None:
        """Bring what quest `quest` asks for, at the board or by its poster."""
        await self.request("turn_in", quest=quest)

    async def ping(self, timeout: float = 10.0) -> float:
        """Round-trip time in seconds."""
        pid = next(self._seq) & 0xFFFFFFFF
        fut = asyncio.get_running_loop().create_future()
        self._pings[pid] = (time.perf_counter(), fut)
        try:
            await self._send("ping", id=pid)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pings.pop(pid, None)

    async def send_raw(self, data: bytes | str) -> None:
        """Send an arbitrary frame (for tests and fault injection)."""
        await self.ws.send(data)

    # -- receiving -----------------------------------------------------------
    async def messages(self) -> AsyncIterator[Message]:
        """Every message from the server, in order, until the connection closes."""
        # A message leaves `_unread` only as it is yielded, so a reader
        # cancelled while waiting (a timed-out `wait_for`) loses nothing.
        while True:
            if self._unread:
                yield self._unread.popleft()
            elif self._reader.done():
                return
            else:
                self._arrived.clear()
                await self._arrived.wait()

    def peek(self) -> list[Message]:
        """The unread messages, oldest first, left unread."""
        return list(self._unread)

    def drain(self) -> list[Message]:
        """Take every message received so far without waiting."""
        out = list(self._unread)
        self._unread.clear()
        return out

    async def wait_for(self, predicate, timeout: float = 10.0) -> Message:
        """Wait for the first unread message matching `predicate`: messages
        are kept from their arrival until read (by this, `messages()` or
        `drain()`), so one that came before the call is found too. Those
        read past on the way are consumed."""
        async def scan() -> Message:
            async for msg in self.messages():
                if predicate(msg):
                    return msg
            raise ConnectionError(f"connection closed ({self.close_code} {self.close_reason})")
        return await asyncio.wait_for(scan(), timeout)

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                self.stats.frames_in += 1
                self.stats.bytes_in += len(data)
                msg = decode_frame(data)
                if msg is None:
                    continue
                try:
                    self._on_message(msg)
                except (TypeError, ValueError, KeyError):  # a malformed message: skip it
                    continue
                if not self.keep_messages:
                    continue
                if len(self._unread) >= MAX_QUEUED_MESSAGES:
                    self._unread.popleft()
                    self.stats.dropped_messages += 1
                self._unread.append(msg)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code
            self.close_code = code if code is not None else 1006
            self.close_reason = self.ws.close_reason or ("" if code is not None else "connection lost")
            err = ConnectionError(f"connection closed ({self.close_code} {self.close_reason})")
            self._arrived.set()  # readers of `messages()` see the end
            for fut in list(self._waiting.values()) + [f for _, f in self._pings.values()]:
                if not fut.done():
                    fut.set_exception(err)

    def _on_message(self, msg: Message) -> None:
        self.apply(msg)
        t = msg.type
        d = msg.data
        if t in ("welcome", "shop", "board"):
            self._resolve(d.get("seq"), msg)
        elif t == "ack":
            self._resolve(d["seq"], msg)
        elif t == "error":
            fut = self._waiting.get(d.get("seq")) if d.get("seq") is not None else None
            if fut is not None and not fut.done():
                fut.set_exception(ServerError(d["code"], d["msg"]))
        elif t == "pong":
            entry = self._pings.get(d["id"])
            if entry is not None and not entry[1].done():
                entry[1].set_result(time.perf_counter() - entry[0])

    def _resolve(self, seq: int | None, msg: Message) -> None:
        fut = self._waiting.get(seq) if seq is not None else None
        if fut is not None and not fut.done():
            fut.set_result(msg)
