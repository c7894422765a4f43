"""The trading behaviour of load-test bots (`hamlet bots --behaviour trade`,
and some of `mixed`): walk to a shopkeeper (its workplace, then its tile),
ask its `shop` price list, buy and sell within one's coins, hand small gifts
to other players nearby, make offers to them and answer the offers made to
oneself.

Every trade request is timed from its send to its `ack` (or error) and
recorded with its outcome: the ack's tick for an acknowledged one, the error
code for a refused one, `lost` when no answer came (the connection dropped,
say the server was killed). `bench/economy.py` checks these records against
the server's event log: an acknowledged trade must be there, and nothing
may be there more often than it was sent.
"""
from __future__ import annotations

import asyncio
import random
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from client_demo.client import ServerError

# The messages that change purses (or offers), each answered by an `ack`.
TRADE_KINDS = ("give", "buy", "sell", "offer", "accept", "decline")
# Those whose ack means goods or coins changed hands.
MOVING_KINDS = ("give", "buy", "sell", "accept")

HANDOVER_RANGE = 3  # protocol.trade.HANDOVER_RANGE: things change hands within 3 tiles
# Records kept per bot (a few minutes of trading is a few hundred).
MAX_RECORDS = 5000

# Where the default village's shopkeepers work, when the data files are not
# there to say (the bots then still find any shop they see by asking it).
DEFAULT_WORKPLACES = {"Sanne": "bakery", "Oda": "fields", "Pell": "market", "Bram": "smithy",
                      "Tomas": "tavern", "Elena": "school"}
_DATA = Path(__file__).resolve().parent.parent / "agents" / "data"
_workplaces: dict[str, str] | None = None

# What bots of this process learnt by asking `shop`: NPC name -> keeps a shop.
# Shared knowledge (a shop stays a shop), so a crowd does not ask each NPC
# hundreds of times.
KNOWN_SHOPS: dict[str, bool] = {}


def shop_workplaces() -> dict[str, str]:
    """Shopkeeper name -> the place it works at: the keepers of the goods
    file's shops and their workplaces in the persona file, as hints for
    where to walk."""
    global _workplaces
    if _workplaces is None:
        try:
            goods = tomllib.loads((_DATA / "goods.toml").read_text(encoding="utf-8"))
            people = tomllib.loads((_DATA / "village.toml").read_text(encoding="utf-8"))
            work = {p["name"]: p.get("workplace") for p in people.get("npc", [])}
            found = {s["keeper"]: work[s["keeper"]] for s in goods.get("shop", []) if work.get(s.get("keeper"))}
            _workplaces = found or dict(DEFAULT_WORKPLACES)
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
            _workplaces = dict(DEFAULT_WORKPLACES)
    return _workplaces


@dataclass
class TradeStats:
    requests: Counter = field(default_factory=Counter)   # kind -> sent
    acked: Counter = field(default_factory=Counter)      # kind -> acknowledged
    refused: Counter = field(default_factory=Counter)    # code -> refusals
    lost: Counter = field(default_factory=Counter)       # kind -> no answer
    shop_asks: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    # the purse as this bot's mirror last showed it, at the end of the run
    final: dict[str, Any] | None = None


def chebyshev(a: Any, b: Any) -> int:
    return max(abs(a.x - b.x), abs(a.y - b.y))


class Trader:
    """One bot's trading: `step()` does one thing (answer an offer, deal at
    a shop, a gift or an offer to a neighbour, or a walk towards a shop)."""

    def __init__(self, bot: Any, rtt: Any) -> None:
        """`bot`: the client_demo.bot.Bot this trades for (its client, rng
        and stats); `rtt`: where request-to-ack times go (a bot.Samples)."""
        self.bot = bot
        self.rng: random.Random = bot.rng
        self.rtt = rtt
        self.stats = TradeStats()
        self.target: str | None = None       # the shopkeeper this bot is heading for
        self.dest: tuple[int, int] | str | None = None
        self.last_pos: tuple[int, int] | None = None
        self.answered: set[int] = set()      # offers to us already answered
        self.items_seen: set[str] = set()    # item kinds seen in price lists

    @property
    def client(self):
        return self.bot.client

    # -- requests ------------------------------------------------------------
    async def request(self, kind: str, **fields: Any) -> Any:
        """Send a trade message and wait for its answer; the ack's message,
        or None (refused or lost). Recorded either way."""
        c = self.client
        rec: dict[str, Any] = {"k": kind, "f": fields, "e": c.entity}
        self.stats.requests[kind] += 1
        self.bot.stats.sent += 1
        t0 = time.perf_counter()
        try:
            msg = await c.request(kind, timeout=10.0, **fields)
        except ServerError as exc:
            rec["o"] = "err:" + exc.code
            self.stats.refused[exc.code] += 1
            self._keep(rec)
            return None
        except (ConnectionError, ConnectionClosed, OSError, asyncio.TimeoutError):
            rec["o"] = "lost"
            self.stats.lost[kind] += 1
            self._keep(rec)
            return None
        took = time.perf_counter() - t0
        self.rtt.add(took)
        rec.update(o="ack", t=msg.data.get("tick"), ms=round(took * 1000, 2))
        if kind == "offer":
            rec["id"] = msg.data.get("offer")
        self.stats.acked[kind] += 1
        self._keep(rec)
        return msg

    def _keep(self, rec: dict[str, Any]) -> None:
        if len(self.stats.records) < MAX_RECORDS:
            self.stats.records.append(rec)

    async def ask_shop(self, keeper: int) -> dict[str, tuple[int, int, int]] | None:
        """The price list: item -> (price, offer, stock), or None."""
        self.stats.shop_asks += 1
        self.bot.stats.sent += 1
        try:
            msg = await self.client.request("shop", at=keeper, timeout=10.0)
        except (ServerError, ConnectionError, ConnectionClosed, OSError, asyncio.TimeoutError):
            return None
        goods = {row[0]: (row[1], row[2], row[3]) for row in msg.data["goods"]}
        self.items_seen.update(goods)
        return goods

    # -- one step ------------------------------------------------------------
    async def step(self) -> None:
        c = self.client
        me = c.me
        if me is None or c.closed:
            return
        await self._probe()  # a quick question, not the step's action
        if await self._answer_offers():
            return
        if await self._withdraw():
            return
        keeper = self._keeper_in_reach(me)
        if keeper is not None and self.rng.random() < 0.7:
            await self._deal(keeper)
            if self.rng.random() < 0.3:
                self.target = None  # on to another shop
            return
        near = [e for e in c.entities.values()
                if e.kind == "player" and e.id != c.entity and chebyshev(e, me) <= HANDOVER_RANGE]
        if near and self.rng.random() < 0.6:
            other = self.rng.choice(near)
            if self.rng.random() < 0.4:
                await self._gift(other)
            else:
                await self._offer(other)
            return
        await self._go_shopping(me)

    async def _probe(self) -> bool:
        """Ask one NPC in view that nobody here has asked yet whether it keeps a shop."""
        for e in list(self.client.entities.values()):
            if e.kind == "npc" and e.name not in KNOWN_SHOPS:
                KNOWN_SHOPS[e.name] = False  # being asked: nobody else asks meanwhile
                self.stats.shop_asks += 1
                self.bot.stats.sent += 1
                try:
                    msg = await self.client.request("shop", at=e.id, timeout=10.0)
                except ServerError as exc:
                    if exc.code != "no_shop":
                        del KNOWN_SHOPS[e.name]  # gone from view, say: ask again later
                    return True
                except (ConnectionError, ConnectionClosed, OSError, asyncio.TimeoutError):
                    del KNOWN_SHOPS[e.name]
                    return True
                KNOWN_SHOPS[e.name] = True
                self.items_seen.update(row[0] for row in msg.data["goods"])
                return True
        return False

    async def _answer_offers(self) -> bool:
        c = self.client
        for o in list(c.offers.values()):
            if o.get("to") != c.entity or o.get("state") != "open" or o["id"] in self.answered:
                continue
            if len(self.answered) > 1000:
                self.answered.clear()
            self.answered.add(o["id"])
            if self._holds(o.get("want") or [], o.get("want_coins") or 0) and self.rng.random() < 0.85:
                await self.request("accept", offer=o["id"])
            else:
                await self.request("decline", offer=o["id"])
            return True
        return False

    async def _withdraw(self) -> bool:
        """Keep a free slot for new offers: withdraw the oldest of ours past two."""
        c = self.client
        mine = sorted(o["id"] for o in c.offers.values() if o.get("from") == c.entity)
        if len(mine) > 2:
            await self.request("decline", offer=mine[0])
            return True
        return False

    def _holds(self, lines: list, coins: int) -> bool:
        c = self.client
        return c.coins >= coins and all(c.items.get(item, 0) >= n for item, n in lines)

    def _keeper_in_reach(self, me: Any) -> Any:
        c = self.client
        keepers = [e for e in c.entities.values()
                   if e.kind == "npc" and KNOWN_SHOPS.get(e.name) and chebyshev(e, me) <= HANDOVER_RANGE]
        if not keepers:
            return None
        mine = [e for e in keepers if e.name == self.target]
        return mine[0] if mine else self.rng.choice(keepers)

    async def _deal(self, keeper: Any) -> None:
        """Ask the prices, then sell something the shop buys or buy something
        it sells, within our coins."""
        goods = await self.ask_shop(keeper.id)
        if goods is None:
            return
        c = self.client
        sellable = [(item, offer) for item, (_, offer, _) in goods.items() if offer > 0 and c.items.get(item, 0) > 0]
        buyable = [(item, price, stock) for item, (price, _, stock) in goods.items()
                   if price > 0 and stock > 0 and price + 1 <= c.coins]
        if sellable and (not buyable or self.rng.random() < 0.5):
            item, offer = self.rng.choice(sellable)
            n = 1 if self.rng.random() < 0.7 else min(2, c.items.get(item, 1))
            # mostly a little room under the quote: a lot is priced at the stock
            # it leaves, and others trade meanwhile (a refusal says price_changed)
            min_price = max(0, offer - self.rng.choice((0, 1, 2, 2, 3)))
            await self.request("sell", to=keeper.id, item=item, n=n, min_price=min_price)
        elif buyable:
            item, price, stock = self.rng.choice(buyable)
            max_price = min(c.coins, price + self.rng.choice((0, 1, 2, 2, 3)))
            n = max(1, min(1 if self.rng.random() < 0.7 else self.rng.randint(2, 3), stock, c.coins // max_price))
            await self.request("buy", **{"from": keeper.id}, item=item, n=n, max_price=max_price)

    async def _gift(self, other: Any) -> None:
        c = self.client
        held = [item for item, n in c.items.items() if n > 0]
        if held and self.rng.random() < 0.7:
            await self.request("give", to=other.id, item=self.rng.choice(held), n=1)
        elif c.coins >= 2:
            await self.request("give", to=other.id, item="coins", n=1)

    async def _offer(self, other: Any) -> None:
        """One of our goods for a few coins, or a few coins for a good."""
        c = self.client
        held = [item for item, n in c.items.items() if n > 0]
        if held and (self.rng.random() < 0.6 or c.coins < 2):
            await self.request("offer", to=other.id, give=[[self.rng.choice(held), 1]],
                               want_coins=self.rng.randint(1, 4))
        elif self.items_seen and c.coins >= 2:
            item = self.rng.choice(sorted(self.items_seen))
            await self.request("offer", to=other.id, coins=self.rng.randint(1, min(4, c.coins)), want=[[item, 1]])

    # -- walking -------------------------------------------------------------
    async def _go_shopping(self, me: Any) -> None:
        c = self.client
        places = shop_workplaces()
        if self.target is None or self.rng.random() < 0.05:
            seen = [e.name for e in c.entities.values() if e.kind == "npc" and KNOWN_SHOPS.get(e.name)]
            choices = seen if seen and self.rng.random() < 0.7 else [k for k in places if KNOWN_SHOPS.get(k, True)]
            if not choices:
                return
            self.target = self.rng.choice(choices)
        keeper = c.find(self.target)
        if keeper is not None and keeper.kind == "npc":
            if chebyshev(keeper, me) <= HANDOVER_RANGE - 1:
                return
            await self._walk(self._tile_near(keeper.x, keeper.y, me))
            return
        place = places.get(self.target)
        row = c.place(place) if place else None
        if row is None or (row["x"] <= me.x < row["x"] + row["w"] and row["y"] <= me.y < row["y"] + row["h"]):
            self.target = None  # not where we looked: choose again
            return
        await self._walk(place)

    def _tile_near(self, x: int, y: int, me: Any) -> tuple[int, int]:
        m = self.client.map
        walkable = set(m["walkable"])
        spots = [(x + dx, y + dy) for dx in (-2, -1, 0, 1, 2) for dy in (-2, -1, 0, 1, 2)
                 if (dx or dy) and 0 <= x + dx < m["w"] and 0 <= y + dy < m["h"]
                 and m["tiles"][(y + dy) * m["w"] + x + dx] in walkable]
        return self.rng.choice(spots) if spots else (x, y)

    async def _walk(self, dest: tuple[int, int] | str) -> None:
        """Head for a tile or a place; not again while already walking there."""
        me = self.client.me
        pos = (me.x, me.y) if me is not None else None
        if dest == self.dest and pos != self.last_pos:
            self.last_pos = pos
            return
        self.dest, self.last_pos = dest, pos
        self.bot.stats.sent += 1
        try:
            if isinstance(dest, str):
                await self.client.move(place=dest)
            else:
                await self.client.move(to=dest)
        except ServerError:
            self.dest = None

    def finish(self) -> None:
        """Note the purse as our mirror shows it now (the run is over)."""
        c = self.client
        if c is not None and c.entity is not None:
            self.stats.final = {"e": c.entity, "name": self.bot.name, "coins": c.coins, "items": dict(c.items),
                                "connected": not c.closed}
