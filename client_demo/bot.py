"""One load-test bot: joins with its own name and behaves like a person
(wanders between places, chats at a bounded rate, greets NPCs, trades at
shops and with other players: client_demo/bot_trade.py), measuring what it
sees (client_demo/bot_stats.py). Fault modes: churn (drop and resume with
the token), slow reader (stops reading), garbage (sends malformed frames).
With `reconnect`, a bot whose connection is lost (the server went down)
resumes its avatar with its token as soon as the server is back."""
from __future__ import annotations

import asyncio
import random
import time

import msgpack
from websockets.exceptions import ConnectionClosed

from client_demo.bot_stats import BotStats, Samples
from client_demo.bot_trade import Trader
from client_demo.client import HamletClient, ServerError

LINES = ("hello there", "lovely weather", "anyone going to the market?", "the bread smells good",
         "see you at the tavern", "on my way to the square", "has anyone seen the smith?", "good day")

# What `mixed` picks from, each as likely.
MIXED = ("wander", "chat", "talk-to-npcs", "trade")

# Malformed frames for --garbage bots: each is refused with an error code
# (or closes the connection with its documented close code).
GARBAGE = (
    b"\xc1", b"", b"\x82\xa1t\xa4ping", b"\xdd\xff\xff\xff\xff", b"\x91" * 600,
    msgpack.packb({"t": "teleport"}), msgpack.packb({"t": "say"}), msgpack.packb({"t": "say", "text": "x" * 400}),
    msgpack.packb({"t": "move", "to": [float("nan"), 1]}), msgpack.packb([1, 2, 3]), "a text frame",
    msgpack.packb({"t": "hello", "v": 1, "name": "again"}),
)


class Bot:
    def __init__(self, index: int, url: str, behaviour: str, seed: int, mode: str = "normal",
                 reconnect: bool = False) -> None:
        self.index = index
        self.url = url
        self.rng = random.Random(seed * 100_003 + index)
        self.behaviour = behaviour if behaviour != "mixed" else self.rng.choice(MIXED)
        self.mode = mode  # normal, churn, slow, garbage
        self.reconnect = reconnect and mode in ("normal", "churn")
        self.name = f"bot{seed % 1000}-{index:05d}"
        self.stats = BotStats()
        self.ping_rtt = Samples(self.rng)
        self.action_rtt = Samples(self.rng)
        self.trade_rtt = Samples(self.rng)
        self.trader = Trader(self, self.trade_rtt) if self.behaviour == "trade" else None
        self.client: HamletClient | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            self.client = await HamletClient.connect(self.url, open_timeout=15, keep_messages=False)
            await self.client.join(self.name, timeout=30)
        except Exception as exc:
            self.stats.connect_error = _reason(exc)
            return
        self.stats.connected = True
        started = time.monotonic()
        try:
            if self.mode == "slow":
                self.client.ws.transport.pause_reading()
                await stop.wait()
            elif self.mode == "garbage":
                await self._garbage(stop)
            else:
                await asyncio.gather(self._pinger(stop), self._act(stop))
                if self.trader is not None:
                    await asyncio.sleep(0.5)  # purse news of the last trades still on their way
                    self.trader.finish()
        except (ConnectionError, ServerError, OSError, asyncio.TimeoutError):
            pass
        finally:
            self.stats.connected_s = time.monotonic() - started
            c = self.client
            self._absorb(c)
            if self.mode == "slow":
                c.ws.transport.abort()
            await c.close()

    def _absorb(self, c: HamletClient) -> None:
        self.stats.bytes_in += c.stats.bytes_in
        self.stats.bytes_out += c.stats.bytes_out
        self.stats.state_updates += c.stats.state_updates
        self.stats.errors.update(c.stats.errors)
        if c.closed and c.close_code not in (1000, 1001) and self.stats.close_code is None:
            self.stats.close_code = c.close_code

    async def _pinger(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _sleep(stop, self.rng.uniform(1.5, 2.5))
            if stop.is_set():
                return
            if self.client.closed:
                if self.reconnect:
                    continue  # _act brings the connection back
                return
            try:
                self.ping_rtt.add(await self.client.ping(timeout=10))
            except (asyncio.TimeoutError, ConnectionError, ConnectionClosed):
                if self.client.closed and not self.reconnect:
                    return

    async def _act(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _sleep(stop, self.rng.uniform(1.0, 3.0) if self.trader else self.rng.uniform(2.0, 6.0))
            if stop.is_set():
                return
            c = self.client
            if c.closed:
                if self.reconnect:
                    await self._reconnect(stop)
                    continue
                if self.mode != "churn":
                    return
            if self.mode == "churn" and self.rng.random() < 0.3:
                await self._churn()
                continue
            b = self.behaviour
            if self.trader is not None:
                try:
                    await self.trader.step()
                except (ConnectionError, ConnectionClosed, OSError, asyncio.TimeoutError):
                    pass  # the connection went: the next round reconnects (or ends)
                continue
            if b == "wander" or (b == "talk-to-npcs" and self.rng.random() < 0.5):
                await self._wander()
            elif b == "chat":
                await self._say(self.rng.choice(LINES), None)
                if self.rng.random() < 0.3:
                    await self._wander()
            else:
                npcs = [e for e in c.entities.values() if e.kind == "npc"]
                me = c.me
                if npcs and me is not None:
                    npc = min(npcs, key=lambda e: (e.x - me.x) ** 2 + (e.y - me.y) ** 2)
                    if (npc.x - me.x) ** 2 + (npc.y - me.y) ** 2 <= 64:
                        await self._say(f"Hello {npc.name}, how are you?", npc.id)
                    else:
                        await self._move_to((npc.x, npc.y))
                else:
                    await self._move_place(self.rng.choice(["square", "market", "tavern", "bakery"]))

    async def _wander(self) -> None:
        c = self.client
        me, m = c.me, c.map
        if me is None or m is None:
            return
        walkable = set(m["walkable"])
        for _ in range(20):
            x = min(m["w"] - 1, max(0, me.x + self.rng.randint(-12, 12)))
            y = min(m["h"] - 1, max(0, me.y + self.rng.randint(-12, 12)))
            if m["tiles"][y * m["w"] + x] in walkable and (x, y) != (me.x, me.y):
                await self._move_to((x, y))
                return

    async def _move_to(self, target: tuple[int, int]) -> None:
        c = self.client
        me = c.me
        if me is None:
            return
        start = (me.x, me.y)
        t0 = time.perf_counter()
        self.stats.sent += 1
        try:
            await c.move(target)
        except ServerError:
            return
        # the action's effect: our avatar's tile changes in a state update
        deadline = t0 + 5.0
        while time.perf_counter() < deadline and not c.closed:
            me = c.me
            if me is not None and (me.x, me.y) != start:
                self.action_rtt.add(time.perf_counter() - t0)
                return
            await asyncio.sleep(0.005)

    async def _move_place(self, place: str) -> None:
        self.stats.sent += 1
        try:
            await self.client.move(place=place)
        except ServerError:
            pass

    async def _say(self, text: str, to: int | None) -> None:
        self.stats.sent += 1
        t0 = time.perf_counter()
        try:
            await self.client.say(text, to=to)
            self.action_rtt.add(time.perf_counter() - t0)
        except ServerError:
            pass

    async def _churn(self) -> None:
        old = self.client
        entity = old.entity
        self._absorb(old)
        await old.ws.close()  # drop without bye: the avatar waits in its grace period
        try:
            new = await HamletClient.connect(self.url, open_timeout=15, keep_messages=False)
            welcome = await new.join(self.name, token=old.token, timeout=30)
        except Exception:
            self.stats.resumes_failed += 1
            return
        if welcome["id"] == entity:
            self.stats.resumes_ok += 1
        else:
            self.stats.resumes_failed += 1
        self.client = new

    async def _reconnect(self, stop: asyncio.Event) -> None:
        """Resume our avatar with its token, retrying (0.5 s, then up to 2 s
        apart) until it works or the run ends: the server may be restarting."""
        old = self.client
        self._absorb(old)
        old.stats = type(old.stats)()  # absorbed: don't count it twice
        delay = 0.5
        while not stop.is_set():
            try:
                new = await HamletClient.connect(self.url, open_timeout=10, keep_messages=False)
            except Exception:
                await _sleep(stop, delay)
                delay = min(2.0, delay * 1.5)
                continue
            try:
                welcome = await new.join(self.name, token=old.token, timeout=15)
            except Exception:
                self.stats.reconnects_failed += 1
                await new.close()
                await _sleep(stop, delay)
                delay = min(2.0, delay * 1.5)
                continue
            if welcome["id"] == old.entity:
                self.stats.reconnects_ok += 1
            else:
                self.stats.reconnects_failed += 1
            self.client = new
            await old.close()
            return

    async def _garbage(self, stop: asyncio.Event) -> None:
        c = self.client
        for i in range(10_000):  # bounded; the server closes us long before
            if stop.is_set() or c.closed:
                return
            frame = GARBAGE[i % len(GARBAGE)]
            self.stats.sent += 1
            try:
                await c.send_raw(frame)
            except Exception:
                return
            await _sleep(stop, 0.05)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ServerError):
        return exc.code
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:80]}"
