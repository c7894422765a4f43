"""A shopkeeper answering someone who asks to buy or sell.

The candidate actions come from the world's state: the shop's stock and
prices, whether the person stands within reach of the counter, what the
shop buys. Each action carries the line that goes with it, so what the NPC
says always matches what it does. When there is more than one, the model's
`score` picks among short descriptions of them (never parsed from
generated text); without a model, or when scoring fails, the first
candidate (the most helpful) is taken.

A sale is an offer to the person (give the goods, want the coins): their
words alone never move goods or coins; their `accept` does, under the
world's rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from server.world.catalog import Shop
from server.world.economy import offer_price, price, within_reach
from server.world.entity import Entity
from server.world.world import World

# Words that make a line to a shopkeeper a question about its trade.
_TRADE_WORDS = re.compile(r"\b(buy|sell|selling|price|prices|cost|costs|how much|wares|for sale|shop|trade)\b", re.I)
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "a dozen": 12, "dozen": 12, "some": 1, "a few": 3}
# A person asks for at most this many at once in words; more is a bulk
# order, named by number (and bounded by the shop's stock anyway).
MAX_ASKED = 20


@dataclass(frozen=True)
class ShopAction:
    kind: str    # offer (a sale, as an offer to accept), price, none_left, buy_offer (buying, as an offer),
                 # buys (what it pays), decline, wares, elsewhere
    label: str   # what the model scores: "<name> decides to" + label
    line: str    # what the NPC says when it does this
    item: str | None = None
    n: int = 0
    coins: int = 0


def _forms(item: str) -> tuple[str, ...]:
    """The ways a person names an item: eggs/egg, nails/nail, bread, loaf."""
    base = item[:-1] if item.endswith("s") else item
    extra = ("loaf", "loaves") if item == "bread" else ()
    return tuple({item, base, base + "s", base + "es"}) + extra


def items_named(text: str, items: tuple[str, ...]) -> list[str]:
    low = text.lower()
    return [i for i in items if any(re.search(rf"\b{re.escape(f)}\b", low) for f in _forms(i))]


def count_asked(text: str, item: str) -> int:
    """How many of `item` the line asks for: a number or a number word just
    before the item's name, else one."""
    low = text.lower()
    names = "|".join(re.escape(f) for f in _forms(item))
    m = re.search(rf"\b(\d{{1,3}}|a dozen|a few|{'|'.join(_NUMBER_WORDS)})\s+(?:\w+\s+)?(?:{names})\b", low)
    if m is None:
        return 1
    word = m.group(1)
    n = int(word) if word.isdigit() else _NUMBER_WORDS.get(word, 1)
    return max(1, min(MAX_ASKED, n))


# Goods counted by the piece; the others (bread, flour, wheat, iron, ale)
# read the same for one or many.
_PIECES = {"eggs": "egg", "nails": "nail", "horseshoes": "horseshoe", "feathers": "feather", "books": "book",
           "flowers": "flower"}


def _named(item: str, n: int) -> str:
    if item == "bread" and n == 1:
        return "loaf of bread"
    if item == "bread":
        return "loaves of bread"
    return _PIECES.get(item, item) if n == 1 else item


def shop_actions(world: World, keeper: Entity, person: Entity | None, name: str, text: str) -> list[ShopAction]:
    """The candidate actions of `keeper` answering `text` from `name`, most
    helpful first; empty when `keeper` keeps no shop or the line is not
    about buying or selling."""
    eco = world.economy
    shop: Shop | None = eco.catalog.shop_of(keeper.name)
    if shop is None:
        return []
    wanted = items_named(text, tuple(dict.fromkeys(shop.sells + shop.buys)))
    elsewhere = [i for i in items_named(text, tuple(eco.catalog.prices)) if i not in wanted]
    if not wanted and not _TRADE_WORDS.search(text):
        return []
    if not wanted and elsewhere:  # "have you got nails?" at the bakery
        item = elsewhere[0]
        sellers = [s.keeper for s in eco.catalog.shops.values() if item in s.sells]
        where = f"; {sellers[0]} sells them" if sellers else ""
        return [ShopAction("elsewhere", f"say it does not sell {item}", f"I don't sell {item}, {name}{where}.")]
    stock_of = eco.purse(keeper.id).goods
    if not wanted:  # "what do you sell?"
        listed = [f"{i} at {price(eco.catalog.prices[i], max(0, stock_of.get(i, 0) - 1), shop.target)} coins"
                  for i in shop.sells if stock_of.get(i, 0) > 0]
        if not listed:
            return [ShopAction("wares", "say the shelves are empty", f"My shelves are empty today, {name}.")]
        return [ShopAction("wares", "tell them what it sells", f"I sell {', '.join(listed)}, {name}.")]
    item = wanted[0]
    base, stock = eco.catalog.prices[item], stock_of.get(item, 0)
    out: list[ShopAction] = []
    selling_words = re.search(r"\b(sell|selling|take)\b.*\b(you|to you)\b|\bwant (some|my)\b|\bbuy (my|these|this)\b"
                              r"|\b(take|have) (these|this|my|some)\b|\bhere,? take\b", text, re.I)
    if item in shop.sells and not selling_words:
        n = min(count_asked(text, item), stock) if stock else count_asked(text, item)
        if stock == 0:
            out.append(ShopAction("none_left", f"say it has no {item} left", f"I'm sorry, {name}, I've no {item} "
                                  "left today."))
        else:
            total = price(base, stock - n, shop.target) * n
            near = person is not None and within_reach(keeper, person)
            if near and eco.may_offer(keeper.id):
                out.append(ShopAction("offer", f"sell {name} {n} {_named(item, n)} for {total} coins",
                                      f"{n} {_named(item, n)} for {total} coins, {name}: accept my offer and "
                                      f"{'it is' if n == 1 else 'they are'} yours.", item, n, total))
            tail = "" if near else " Come up to the counter and I'll sell you some."
            verb = "costs" if n == 1 else "cost"
            out.append(ShopAction("price", f"tell {name} the price",
                                  f"{n} {_named(item, n)} {verb} {total} coins, {name}.{tail}", item, n, total))
    if item in shop.buys:
        pays = offer_price(base, stock + 1, shop.target)
        n = count_asked(text, item)
        total = offer_price(base, stock + n, shop.target) * n
        near = person is not None and within_reach(keeper, person)
        if selling_words and near and eco.may_offer(keeper.id) and eco.purse(keeper.id).coins >= total:
            # "here, take these eggs": take them, paying, by an offer the person accepts
            out.append(ShopAction("buy_offer", f"buy {n} {_named(item, n)} from {name} for {total} coins",
                                  f"I'll gladly take {n} {_named(item, n)} for {total} coins, {name}: accept my "
                                  "offer.", item, n, total))
        out.append(ShopAction("buys", f"tell {name} what it pays for {item}",
                              f"I'd pay {pays} coins for each {_named(item, 1)}, {name}.", item, 0, pays))
        if selling_words and stock >= 2 * shop.target:
            out.append(ShopAction("decline", f"decline {name}'s {item}",
                                  f"No thank you, {name}, I have plenty of {item}."))
    if not out:  # it buys this but was asked to sell it, or the reverse
        out.append(ShopAction("elsewhere", f"say it does not sell {item}", f"I don't sell {item}, {name}."))
    return out


def situation(world: World, keeper: Entity, name: str, text: str, actions: list[ShopAction]) -> str:
    """What the model reads before the candidates: the line and the facts."""
    eco = world.economy
    item = next((a.item for a in actions if a.item), None)
    fact = ""
    if item is not None:
        stock = eco.purse(keeper.id).goods.get(item, 0)
        fact = f" {keeper.name} has {stock} {item}."
    return f'{name} says to {keeper.name}: "{text}".{fact}'
