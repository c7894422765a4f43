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
may be there more often than it was sent. Where the shops are, and the walk
to one, are client_demo/bot_shops.py's.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from client_demo.bot_shops import HANDOVER_RANGE, KNOWN_SHOPS, ShopWalk, chebyshev
from client_demo.client import ServerError

# The messages that change purses (or offers), each answered by an `ack`.
TRADE_KINDS = ("give", "buy", "sell", "offer", "accept", "decline")
# Those whose ack means goods or coins changed hands.
MOVING_KINDS = ("give", "buy", "sell", "accept")

# Records kept per bot (a few minutes of trading is a few hundred).
MAX_RECORDS = 5000


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


class Trader:
    """One bot's trading: `step()` does one thing (answer an offer, deal at
    a shop, a gift or an offer to a neighbour, or a walk towards a shop)."""

    def __init__(self, bot: Any, rtt: Any) -> None:
        """`bot`: the client_demo.bot.Bot this trades for (its client, rng
        and stats); `rtt`: where request-to-ack times go (a bot_stats.Samples)."""
        self.bot = bot
        self.rng: random.Random = bot.rng
        self.rtt = rtt
        self.stats = TradeStats()
        self.walk = ShopWalk(bot)            # to the shopkeeper this bot is heading for
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
                self.walk.target = None  # on to another shop
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
        await self.walk.go(me)

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
        mine = [e for e in keepers if e.name == self.walk.target]
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

    def finish(self) -> None:
        """Note the purse as our mirror shows it now (the run is over)."""
        c = self.client
        if c is not None and c.entity is not None:
            self.stats.final = {"e": c.entity, "name": self.bot.name, "coins": c.coins, "items": dict(c.items),
                                "connected": not c.closed}
