"""The terminal client's connection: join, resume with the session token
after a drop, reconnect with backoff, and say in words what the server
refused. Built on `client_demo.client.HamletClient`; knows nothing about
the screen (the app gives it callbacks), so it is tested on its own too.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from client_demo.client import HamletClient, ServerError
from protocol.codec import Message, encode

# Reconnection: 0.5 s doubling to 8 s with up to 30 % jitter (so clients
# dropped together by a restart do not return together); 12 attempts are a
# little over a minute, the server's default grace period for resuming the
# same avatar. The browser client uses the same numbers.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
MAX_ATTEMPTS = 12
# After `bye`, how long to wait for the server to close the connection.
BYE_WAIT_S = 2.0
# Close codes after which reconnecting would be wrong.
FINAL_CLOSE = {
    1000: "the connection was closed",
    4002: "this avatar was opened in another window",
    4003: "an administrator removed you from the world",
}

# What each refusal means, in words (PROTOCOL.md, "Error codes").
ERROR_WORDS = {
    "bad_move": "that spot can't be reached",
    "too_long": "it is too long",
    "bad_value": "it was not accepted",
    "rate_limited": "slow down, you are sending too fast",
    "overloaded": "the server is busy, try again in a moment",
    "no_such_entity": "they are not here any more",
    "name_taken": "that name is already taken, pick another",
    "bad_token": "your session has expired",
    "not_joined": "you have not joined yet",
    "already_joined": "you have already joined",
    "bad_version": "this client is too old for the server",
    "forbidden": "that is not allowed",
    "internal": "the server had a problem with it",
    "out_of_range": "that is out of reach",
    "not_enough": "there is not enough of it",
    "no_such_item": "there is no such thing here",
    "no_shop": "no shop trades that there",
    "price_changed": "the price has moved past your limit (see /shop)",
    "offer_expired": "that offer is no longer open",
    "full": "there is no room for more",
    "quest_closed": "that quest is no longer open (see /board)",
}
ACTION_WORDS = {"say": "Your message was not sent", "move": "You can't go there", "hello": "Could not join",
                "give": "Nothing was given", "buy": "Nothing was bought", "sell": "Nothing was sold",
                "shop": "No price list", "offer": "No offer was made", "accept": "The trade did not happen",
                "decline": "The offer is unchanged", "board": "Could not read the board",
                "turn_in": "Nothing was turned in"}


def describe_error(code: str, message: str, action: str | None = None) -> str:
    """A sentence for a refusal: what failed, why, and the server's details."""
    reason = ERROR_WORDS.get(code, "the server refused it")
    head = f"{ACTION_WORDS[action]}: {reason}" if action in ACTION_WORDS else reason[:1].upper() + reason[1:]
    detail = (message or "").strip()[:200]
    if detail:
        detail = detail[:1].upper() + detail[1:] + ("" if detail[-1] in ".!?" else ".")
        return f"{head}. {detail}"
    return f"{head}."


class Session:
    """Keeps one avatar connected. `status` is connecting, connected,
    reconnecting, lost or closed; callbacks report changes and messages."""

    def __init__(self, url: str, name: str, token: str | None = None, *,
                 on_status: Callable[[str, str], None] = lambda s, d: None,
                 on_message: Callable[[Message], None] = lambda m: None,
                 on_error: Callable[[str], None] = lambda text: None) -> None:
        self.url = url
        self.name = name
        self.token = token
        self.on_status = on_status
        self.on_message = on_message
        self.on_error = on_error
        self.status = "idle"
        self.detail = ""
        self.client: HamletClient | None = None
        self.entity: int | None = None
        self.attempts = 0
        self.stopped = False
        self.history: list[str] = []  # recent statuses, bounded below

    def _set(self, status: str, detail: str = "") -> None:
        self.status, self.detail = status, detail
        self.history = (self.history + [status])[-20:]
        self.on_status(status, detail)

    async def run(self) -> None:
        """Connect, join and read until stopped; reconnect when the connection drops."""
        while not self.stopped:
            self._set("reconnecting" if self.attempts or self.entity is not None else "connecting",
                      self.detail if self.attempts else "")
            why = await self._one_connection()
            if self.stopped or self.status in ("lost", "closed"):
                return
            self.attempts += 1
            if self.attempts > MAX_ATTEMPTS:
                self._set("lost", why)
                return
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self.attempts - 1)) * (1 + 0.3 * random.random())
            self._set("reconnecting", why)
            await asyncio.sleep(delay)

    async def _one_connection(self) -> str:
        """One connection's life; returns why it ended."""
        try:
            client = await HamletClient.connect(self.url, open_timeout=5.0)
        except Exception as exc:  # refused, unreachable, a failed handshake, a timeout
            return f"cannot connect ({exc.__class__.__name__}: {exc})"[:200]
        try:
            try:
                await client.join(self.name, token=self.token)
            except ServerError as exc:
                if exc.code == "bad_token" and self.token:
                    self.token = None  # the server forgot this session: join afresh
                    await client.join(self.name)
                else:
                    raise
        except ServerError as exc:
            await client.close()
            self._set("lost", describe_error(exc.code, exc.message, "hello"))
            return self.detail
        except (ConnectionError, asyncio.TimeoutError) as exc:
            await client.close()
            return f"join failed ({exc})"
        self.client = client
        self.token = client.token
        self.entity = client.entity
        self.attempts = 0
        self._set("connected")
        async for msg in client.messages():
            if msg.type == "error" and msg.seq is None:
                self.on_error(describe_error(msg.data.get("code", ""), msg.data.get("msg", "")))
            self.on_message(msg)
        if self.stopped:
            return "closed"
        code = client.close_code
        if code in FINAL_CLOSE:
            self._set("lost", FINAL_CLOSE[code])
        return f"connection closed ({code} {client.close_reason})".strip()

    async def act(self, action: str, coro: Awaitable[Any]) -> Any:
        """Run an action (move, say); a refusal is reported in words."""
        try:
            return await coro
        except ServerError as exc:
            self.on_error(describe_error(exc.code, exc.message, action))
        except (ConnectionError, asyncio.TimeoutError):
            self.on_error("Not connected: that was not sent.")
        return None

    async def move(self, **target: Any) -> None:
        if self.client is None or self.status != "connected":
            self.on_error("Not connected: you can't move right now.")
            return
        to = target.pop("to", None)
        await self.act("move", self.client.move(to, **target))

    async def say(self, text: str, to: int | None = None) -> None:
        if self.client is None or self.status != "connected":
            self.on_error("Not connected: your message was not sent.")
            return
        await self.act("say", self.client.say(text, to=to))

    async def close(self) -> None:
        """Leave: `bye`, then close."""
        self.stopped = True
        client = self.client
        if client is not None and not client.closed:
            try:
                await client.send_raw(encode("bye"))
                # the server removes the avatar, then closes with 1000; closing
                # first would race the bye and leave the avatar "away" instead
                await asyncio.wait_for(client.ws.wait_closed(), BYE_WAIT_S)
            except Exception:
                pass
            await client.close()
        self._set("closed")
