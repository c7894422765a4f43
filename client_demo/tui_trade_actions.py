"""The terminal client's trade commands carried out: names in view become
entity ids, a shop is chosen when none is named (the nearest that sells,
or buys, the item: asked with `shop` and remembered), and the request goes
through the session, which says a refusal in words. Knows nothing about
the screen: it reports through two callbacks, `info` and `error`."""
from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from client_demo.client import EntityView, HamletClient, ServerError
from client_demo.tui_session import Session
from client_demo.tui_trade import TradeCommand, inv_text, offers_text, shop_text
from protocol.trade import MAX_PRICE

# Shopkeepers asked for their price lists when no shop is named: the
# nearest few NPCs in view (each is one small request, within the rate limit).
SHOP_SCAN = 8
SHOP_TIMEOUT_S = 5.0


class Trader:
    def __init__(self, session: Session, info: Callable[[str], None], error: Callable[[str], None]) -> None:
        self.session = session
        self.info = info
        self.error = error
        # what each shopkeeper sells and buys (fixed per world), by entity id,
        # for the current connection; None: keeps no shop
        self._shops: dict[int, tuple[frozenset[str], frozenset[str]] | None] = {}
        self._for: HamletClient | None = None

    async def run(self, cmd: TradeCommand) -> None:
        """Carry out one command; whatever goes wrong becomes a line, never a traceback."""
        client = self.session.client
        if client is None or self.session.status != "connected":
            self.error("Not connected: that was not sent.")
            return
        if self._for is not client:
            self._shops, self._for = {}, client
        try:
            await getattr(self, "_" + cmd.name)(client, cmd)
        except (ConnectionError, asyncio.TimeoutError):
            self.error("Not connected: that was not sent.")
        except Exception as exc:  # a bug here must not take the screen down
            self.error(f"/{cmd.name} failed: {exc.__class__.__name__}: {exc}"[:200])

    # -- looking things up -------------------------------------------------------
    def _person(self, client: HamletClient, name: str) -> EntityView | None:
        e = client.find(name)
        if e is None or e.id == client.entity:
            self.error(f"Nobody called {name} is in sight (try /who)." if e is None
                       else "That is you.")
            return None
        return e

    async def _remember(self, client: HamletClient, e: EntityView) -> dict[str, Any] | None:
        try:
            shop = await client.shop(e.id, timeout=SHOP_TIMEOUT_S)
        except ServerError as exc:
            if exc.code == "no_shop":
                self._shops[e.id] = None
            return None
        except (asyncio.TimeoutError, ConnectionError):
            return None
        goods = shop["goods"]
        self._shops[e.id] = (frozenset(i for i, q in goods.items() if q["price"]),
                             frozenset(i for i, q in goods.items() if q["offer"]))
        return shop

    async def _nearest_shop(self, client: HamletClient, item: str | None, selling: bool) -> EntityView | None:
        """The nearest NPC in view whose shop sells (buys) `item`, or any shop."""
        me = client.me
        if me is None:
            return None
        npcs = sorted((e for e in client.entities.values() if e.kind == "npc"),
                      key=lambda e: (math.hypot(e.x - me.x, e.y - me.y), e.id))[:SHOP_SCAN]
        unknown = [e for e in npcs if e.id not in self._shops]
        await asyncio.gather(*(self._remember(client, e) for e in unknown))
        for e in npcs:
            kinds = self._shops.get(e.id)
            if kinds is not None and (item is None or item in kinds[0 if selling else 1]):
                return e
        return None

    # -- the commands --------------------------------------------------------------
    async def _inv(self, client: HamletClient, cmd: TradeCommand) -> None:
        self.info(inv_text(client.coins, client.items))

    async def _offers(self, client: HamletClient, cmd: TradeCommand) -> None:
        self.info(offers_text(client.offers, client.entity))

    async def _shop(self, client: HamletClient, cmd: TradeCommand) -> None:
        if cmd.who:
            keeper = self._person(client, cmd.who)
        else:
            keeper = await self._nearest_shop(client, None, True)
            if keeper is None:
                self.error("No shopkeeper in sight. /shop NAME asks a shopkeeper by name.")
        if keeper is not None:
            shop = await self.session.act("shop", client.shop(keeper.id))
            if shop is not None:
                self.info(shop_text(shop))

    async def _keeper(self, client: HamletClient, cmd: TradeCommand) -> EntityView | None:
        if cmd.who:
            return self._person(client, cmd.who)
        selling = cmd.name == "buy"
        keeper = await self._nearest_shop(client, cmd.item, selling)
        if keeper is None:
            verb, link = ("sells", "from") if selling else ("buys", "to")
            self.error(f"Nobody in sight {verb} {cmd.item}: name the shop, /{cmd.name} {cmd.item} {link} NAME "
                       f"(/shop NAME shows what a shop trades).")
        return keeper

    async def _buy(self, client: HamletClient, cmd: TradeCommand) -> None:
        keeper = await self._keeper(client, cmd)
        if keeper is not None:
            top = MAX_PRICE if cmd.limit is None else cmd.limit
            await self.session.act("buy", client.buy(keeper.id, cmd.item, cmd.n, max_price=top))

    async def _sell(self, client: HamletClient, cmd: TradeCommand) -> None:
        keeper = await self._keeper(client, cmd)
        if keeper is not None:
            await self.session.act("sell", client.sell(keeper.id, cmd.item, cmd.n, min_price=cmd.limit or 0))

    async def _give(self, client: HamletClient, cmd: TradeCommand) -> None:
        to = self._person(client, cmd.who)
        if to is not None:
            await self.session.act("give", client.give(to.id, cmd.item, cmd.n))

    async def _offer(self, client: HamletClient, cmd: TradeCommand) -> None:
        to = self._person(client, cmd.who)
        if to is not None:
            await self.session.act("offer", client.offer(to.id, dict(cmd.give), cmd.coins, dict(cmd.want),
                                                         cmd.want_coins))

    def _newest_to_me(self, client: HamletClient, cmd: TradeCommand) -> int | None:
        if cmd.offer is not None:
            return cmd.offer
        mine = [oid for oid, d in client.offers.items() if d["to"] == client.entity]
        if not mine:
            self.error(f"No open offer to you. {'/decline ID withdraws one of yours; ' if cmd.name == 'decline' else ''}"
                       f"/offers lists them.")
            return None
        return max(mine)

    async def _accept(self, client: HamletClient, cmd: TradeCommand) -> None:
        oid = self._newest_to_me(client, cmd)
        if oid is not None:
            await self.session.act("accept", client.accept(oid))

    async def _decline(self, client: HamletClient, cmd: TradeCommand) -> None:
        oid = self._newest_to_me(client, cmd)
        if oid is not None:
            await self.session.act("decline", client.decline(oid))
