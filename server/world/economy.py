"""Goods and coins in the world: every holder's purse, shop prices and
open offers between players, and what changed in a tick for the game to
tell (`changed`, `offer_news`, `trades`). The rules of each input that
moves goods or coins are in `trade_rules.py`.

Purses live by entity id and outlast the avatar (a player who leaves finds
them again). Prices are a function of a shop's stock, in integers, so a
replay computes the same ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocol.trade import COINS, HANDOVER_RANGE, MAX_COINS, MAX_OPEN_OFFERS, MAX_STACK
from server.world.catalog import Catalog, Lines

if TYPE_CHECKING:
    from server.world.entity import Entity


@dataclass(slots=True)
class Purse:
    coins: int = 0
    goods: dict[str, int] = field(default_factory=dict)  # item -> n > 0

    def has(self, item: str, n: int) -> bool:
        return (self.coins if item == COINS else self.goods.get(item, 0)) >= n

    def room(self, item: str) -> int:
        return MAX_COINS - self.coins if item == COINS else MAX_STACK - self.goods.get(item, 0)

    def add(self, item: str, n: int) -> None:
        if item == COINS:
            self.coins += n
            return
        left = self.goods.get(item, 0) + n
        if left:
            self.goods[item] = left
        else:
            del self.goods[item]


@dataclass(frozen=True, slots=True)
class Trade:
    """One thing that changed hands: `kind` is give, buy, sell or offer; `a`
    the one who acted (the buyer, seller, giver, offer's maker), `b` the
    other; `goods` and `coins` what went from a to b, `back` and
    `back_coins` what came back."""
    kind: str
    a: int
    b: int
    goods: Lines
    coins: int
    back: Lines = ()
    back_coins: int = 0


@dataclass(slots=True)
class Offer:
    id: int
    maker: int
    to: int
    give: Lines
    coins: int
    want: Lines
    want_coins: int
    expires: int  # tick
    state: str = "open"


def within_reach(a: Entity, b: Entity) -> bool:
    """Close enough to hand things over (HANDOVER_RANGE, Chebyshev distance)."""
    return max(abs(a.x - b.x), abs(a.y - b.y)) <= HANDOVER_RANGE


def price(base: int, stock: int, target: int) -> int:
    """What a shop asks for one, given its stock: the base price at the
    target stock, up to 1.5x when it has none, down to 0.5x at twice the
    target or more; never under 1."""
    # base * (3T - stock) / 2T, the factor clamped to [0.5, 1.5], rounded half
    # up in integers (the same on every machine, and in replay)
    c = min(3 * target, max(target, 3 * target - stock))
    return max(1, (2 * base * c + 2 * target) // (4 * target))


def offer_price(base: int, stock: int, target: int) -> int:
    """What a shop pays for one: four fifths of its asking price at that
    stock, at least 1. A shop's offer is never over its price at any lower
    stock, so buying and selling back never makes coins."""
    return max(1, price(base, stock, target) * 4 // 5)


class Economy:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.purses: dict[int, Purse] = {}
        self.offers: dict[int, Offer] = {}
        self.next_offer_id = 1
        self.changed: dict[int, set[str]] = {}  # this tick: entity -> items (or coins) that changed
        self.offer_news: list[Offer] = []        # this tick: offers made or closed
        self.trades: list[Trade] = []            # this tick: what changed hands (metrics, the sim's report)

    def begin_tick(self) -> None:
        self.changed = {}
        self.offer_news = []
        self.trades = []

    def purse(self, eid: int) -> Purse:
        return self.purses.setdefault(eid, Purse())

    def open_purse(self, e: Entity) -> None:
        """A holder's first arrival: a newcomer's coins, an NPC's starting goods."""
        if e.id in self.purses:
            return
        if e.kind == "npc":
            coins, goods = self.catalog.start.get(e.name.casefold(), (0, ()))
        else:
            coins, goods = self.catalog.start_coins, ()
        p = self.purses[e.id] = Purse(coins, dict(g for g in goods if g[1] > 0))
        self._touch(e.id, COINS, *p.goods)

    def _touch(self, eid: int, *items: str) -> None:
        self.changed.setdefault(eid, set()).update(items)

    def _move(self, src: int, dst: int, item: str, n: int) -> None:
        self.purse(src).add(item, -n)
        self.purse(dst).add(item, n)
        self._touch(src, item)
        self._touch(dst, item)

    def quote(self, keeper: Entity, item: str) -> tuple[int, int, int] | None:
        """(price, offer, stock) of `item` at `keeper`'s shop: what buying one
        costs now and what selling one pays now (0 when it does not buy it)."""
        shop = self.catalog.shop_of(keeper.name)
        if shop is None or (item not in shop.sells and item not in shop.buys):
            return None
        base, stock = self.catalog.prices[item], self.purse(keeper.id).goods.get(item, 0)
        return (price(base, max(0, stock - 1), shop.target) if item in shop.sells else 0,
                offer_price(base, stock + 1, shop.target) if item in shop.buys else 0, stock)

    def may_offer(self, eid: int) -> bool:
        """Whether `eid` may make another offer (MAX_OPEN_OFFERS open at most)."""
        return sum(1 for o in self.offers.values() if o.maker == eid) < MAX_OPEN_OFFERS

    def expire(self, tick: int) -> None:
        for o in [o for o in self.offers.values() if o.expires <= tick]:
            self._close(o, "expired")

    def _close(self, o: Offer, state: str) -> None:
        o.state = state
        del self.offers[o.id]
        self.offer_news.append(o)

    def snapshot(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog.to_dict(), "next_offer_id": self.next_offer_id,
            "purses": [[eid, p.coins, sorted([k, v] for k, v in p.goods.items())]
                       for eid, p in sorted(self.purses.items())],
            "offers": [[o.id, o.maker, o.to, [list(x) for x in o.give], o.coins, [list(x) for x in o.want],
                        o.want_coins, o.expires] for o in sorted(self.offers.values(), key=lambda o: o.id)],
        }

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> Economy:
        eco = cls(Catalog.from_dict(snap["catalog"]))
        eco.next_offer_id = snap["next_offer_id"]
        for eid, coins, goods in snap["purses"]:
            eco.purses[eid] = Purse(coins, {k: v for k, v in goods})
        for oid, maker, to, give, coins, want, want_coins, expires in snap["offers"]:
            eco.offers[oid] = Offer(oid, maker, to, tuple(map(tuple, give)), coins, tuple(map(tuple, want)),
                                    want_coins, expires)
        return eco
