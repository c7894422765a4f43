"""The goods of a world, as data: item kinds and their base prices, what
newcomers and NPCs start with, who keeps a shop and what it sells and buys,
what workplaces make (recipes), the supplies NPCs order and what they use
up, all on the game clock.

Read from the goods file beside the personas (`agents/data/goods.toml`) by
the composition root; the world keeps its catalog in its snapshot, so a
world replays with the goods it was created with.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.trade import COINS, MAX_COINS, MAX_ITEM_NAME, MAX_STACK

DEFAULT_GOODS = Path(__file__).resolve().parents[2] / "agents" / "data" / "goods.toml"
_ITEM = re.compile("[a-z][a-z0-9_]*")
EVERY_NPC = "*"

Lines = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Shop:
    keeper: str
    sells: tuple[str, ...]
    buys: tuple[str, ...]
    # The stock at which a good sells at its base price; see economy.price().
    target: int = 10


@dataclass(frozen=True, slots=True)
class Recipe:
    """At minute `at` of each game day, `npc` turns `uses` into `makes`."""
    npc: str
    at: int
    makes: Lines
    uses: Lines = ()


@dataclass(frozen=True, slots=True)
class Order:
    """At minute `at`, `npc` (or every NPC) buys from `shop` enough `item`
    to hold `keep` (a delivery: NPCs need not walk to each other's shops)."""
    npc: str
    at: int
    item: str
    keep: int
    shop: str


@dataclass(frozen=True, slots=True)
class Use:
    """At minute `at`, `npc` (or every NPC) uses up `n` of `item` if it has it."""
    npc: str
    at: int
    item: str
    n: int = 1


@dataclass(frozen=True, slots=True)
class Catalog:
    prices: dict[str, int]
    start_coins: int = 20
    # NPC name (casefolded) -> (coins, goods) it starts with
    start: dict[str, tuple[int, Lines]] = field(default_factory=dict)
    shops: dict[str, Shop] = field(default_factory=dict)  # keeper name casefolded -> shop
    recipes: tuple[Recipe, ...] = ()
    orders: tuple[Order, ...] = ()
    uses: tuple[Use, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "prices": dict(sorted(self.prices.items())), "start_coins": self.start_coins,
            "start": {k: [c, [list(x) for x in g]] for k, (c, g) in sorted(self.start.items())},
            "shops": [[s.keeper, list(s.sells), list(s.buys), s.target] for _, s in sorted(self.shops.items())],
            "recipes": [[r.npc, r.at, [list(x) for x in r.makes], [list(x) for x in r.uses]] for r in self.recipes],
            "orders": [[o.npc, o.at, o.item, o.keep, o.shop] for o in self.orders],
            "uses": [[u.npc, u.at, u.item, u.n] for u in self.uses],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Catalog:
        def lines(xs: list) -> Lines:
            return tuple((str(i), int(n)) for i, n in xs)
        return cls(
            prices={str(k): int(v) for k, v in d["prices"].items()}, start_coins=int(d["start_coins"]),
            start={str(k): (int(c), lines(g)) for k, (c, g) in d["start"].items()},
            shops={str(k).casefold(): Shop(str(k), tuple(s), tuple(b), int(t)) for k, s, b, t in d["shops"]},
            recipes=tuple(Recipe(n, int(a), lines(m), lines(u)) for n, a, m, u in d["recipes"]),
            orders=tuple(Order(n, int(a), i, int(k), s) for n, a, i, k, s in d["orders"]),
            uses=tuple(Use(n, int(a), i, int(k)) for n, a, i, k in d["uses"]),
        )

    def shop_of(self, name: str) -> Shop | None:
        return self.shops.get(name.casefold())


class CatalogError(ValueError):
    pass


def _minute(value: Any, where: str) -> int:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value))
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise CatalogError(f"{where}: time {value!r} is not HH:MM")
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_goods(data: dict[str, Any], where: str = "goods file") -> Catalog:
    """A catalog from the goods file's tables, with every name and number
    checked: a bad file is a clear error at start-up, never a crash later."""
    prices = data.get("goods")
    if not isinstance(prices, dict) or not prices:
        raise CatalogError(f"{where}: needs a [goods] table of item = base price")
    for kind, base in prices.items():
        if kind == COINS or not _ITEM.fullmatch(kind) or len(kind) > MAX_ITEM_NAME:
            raise CatalogError(f"{where}: bad item name {kind!r}")
        if not isinstance(base, int) or isinstance(base, bool) or not 1 <= base <= 10_000:
            raise CatalogError(f"{where}: price of {kind} must be an integer from 1 to 10000")

    def item(name: Any, ctx: str) -> str:
        if name not in prices:
            raise CatalogError(f"{where}: {ctx} names {name!r}, which is not in [goods]")
        return name

    def count(n: Any, ctx: str, hi: int = MAX_STACK) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= hi:
            raise CatalogError(f"{where}: {ctx}: {n!r} is not a whole number from 0 to {hi}")
        return n

    def lines(table: Any, ctx: str) -> Lines:
        if not isinstance(table, dict):
            raise CatalogError(f"{where}: {ctx} must be a table of item = count")
        return tuple((item(k, ctx), count(v, ctx)) for k, v in sorted(table.items()))

    start = {}
    for h in data.get("holder", []):
        name = str(h.get("npc", ""))
        start[name.casefold()] = (count(h.get("coins", 0), f"holder {name} coins", MAX_COINS),
                                  lines(h.get("goods", {}), f"holder {name}"))
    shops = {}
    for s in data.get("shop", []):
        keeper = str(s.get("keeper", ""))
        shops[keeper.casefold()] = Shop(keeper, tuple(item(i, f"shop {keeper}") for i in s.get("sells", [])),
                                        tuple(item(i, f"shop {keeper}") for i in s.get("buys", [])),
                                        max(1, count(s.get("target", 10), f"shop {keeper} target")))
    recipes = tuple(Recipe(str(r.get("npc", "")), _minute(r.get("at"), "make"), lines(r.get("makes", {}), "make"),
                           lines(r.get("uses", {}), "make")) for r in data.get("make", []))
    orders = []
    for o in data.get("order", []):
        shop = str(o.get("from", ""))
        if shop.casefold() not in shops:
            raise CatalogError(f"{where}: order from {shop!r}, who keeps no shop")
        orders.append(Order(str(o.get("npc", "")), _minute(o.get("at"), "order"), item(o.get("item"), "order"),
                            count(o.get("keep", 1), "order keep"), shop))
    uses = tuple(Use(str(u.get("npc", "")), _minute(u.get("at"), "use"), item(u.get("item"), "use"),
                     max(1, count(u.get("n", 1), "use n"))) for u in data.get("use", []))
    return Catalog({k: int(v) for k, v in prices.items()}, count(data.get("start_coins", 20), "start_coins", MAX_COINS),
                   start, shops, recipes, tuple(orders), uses)


def load_goods(path: str | Path | None = None) -> Catalog:
    p = Path(path) if path else DEFAULT_GOODS
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"goods file {p}: {exc}") from exc
    return parse_goods(data, str(p))
