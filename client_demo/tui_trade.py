"""The terminal client's trade commands as plain functions: parsing `/buy`,
`/sell`, `/give`, `/offer`, `/accept`... into a TradeCommand (or a usage
line), and putting purses, price lists, offers and trades into words.
Sending them is tui_trade_actions' job."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protocol.trade import COINS, MAX_COUNT, MAX_OFFER_LINES, MAX_PRICE

Lines = tuple[tuple[str, int], ...]

USAGE = {
    "inv": "Usage: /inv",
    "offers": "Usage: /offers",
    "shop": "Usage: /shop [NAME]",
    "buy": "Usage: /buy ITEM [N] [from NAME] [max PRICE]",
    "sell": "Usage: /sell ITEM [N] [to NAME] [min PRICE]",
    "give": "Usage: /give NAME ITEM [N]  (ITEM may be coins)",
    "offer": "Usage: /offer NAME give ITEM N[, ITEM N...] [coins C] want ITEM N[, ...] [coins C]"
             "  (either side may be left out; 'for' works as 'want')",
    "accept": "Usage: /accept [ID]",
    "decline": "Usage: /decline [ID]",
}
ALIASES = {"inventory": "inv", "i": "inv", "prices": "shop", "trade": "offer", "withdraw": "decline"}
TRADE_HEADS = frozenset(USAGE) | frozenset(ALIASES)

HELP_TRADE = ("Trade: /inv · /shop [NAME] · /buy ITEM [N] [from NAME] · /sell ITEM [N] [to NAME] ·"
              " /give NAME ITEM|coins [N] · /offer NAME give ITEM N want ITEM N · /offers ·"
              " /accept [ID] · /decline [ID]  (/help trade: details)")
HELP_TRADE_LONG = "\n".join([
    "Trading (things change hands within 3 tiles; prices move with a shop's stock):",
    "  /inv                          your coins and goods (the status line shows your coins)",
    "  /shop [NAME]                  a shopkeeper's price list (default: the nearest shop)",
    "  /buy ITEM [N] [from NAME] [max PRICE]   default N 1; default shop: the nearest that sells it;",
    "                                max PRICE: refuse if one costs more than PRICE",
    "  /sell ITEM [N] [to NAME] [min PRICE]    likewise, to the nearest shop that buys it",
    "  /give NAME ITEM [N]           hand goods, or coins (/give ann coins 5)",
    "  /offer NAME give ITEM N[, ITEM N] [coins C] want ITEM N[, ...] [coins C]",
    "                                propose a trade to a player, e.g. /offer bob give bread 2 want coins 7",
    "  /offers                       open offers made by or to you",
    "  /accept [ID] · /decline [ID]  answer an offer (default: the newest one made to you);",
    "                                /decline ID on your own offer withdraws it",
])

_ITEM = re.compile("[a-z][a-z0-9_]{0,23}")


@dataclass(frozen=True, slots=True)
class TradeCommand:
    name: str                 # inv, offers, shop, buy, sell, give, offer, accept, decline
    who: str = ""             # shopkeeper, receiver or other party ('' = choose one)
    item: str = ""
    n: int = 1
    limit: int | None = None  # buy: most to pay for one; sell: least to take for one
    give: Lines = ()
    coins: int = 0
    want: Lines = ()
    want_coins: int = 0
    offer: int | None = None  # accept/decline: the offer's id (None: the newest made to you)


def _count(tok: str, top: int = MAX_COUNT, low: int = 1) -> int | None:
    return int(tok) if tok.isdigit() and low <= int(tok) <= top else None


def _lines(tokens: list[str]) -> tuple[Lines, int] | str:
    """`ITEM N`, `N ITEM` or a bare `ITEM` (one), any number of times;
    coins count apart. Returns (goods, coins) or what is wrong."""
    goods: dict[str, int] = {}
    coins, i = 0, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.isdigit():
            if i + 1 >= len(tokens):
                return f"{tok} of what?"
            num, item, i = tok, tokens[i + 1], i + 2
        elif i + 1 < len(tokens) and tokens[i + 1].isdigit():
            num, item, i = tokens[i + 1], tok, i + 2
        else:
            num, item, i = "1", tok, i + 1
        if item == COINS:
            if _count(num, MAX_PRICE, 0) is None or coins:
                return f"coins must be given once, as a whole number up to {MAX_PRICE}"
            coins = int(num)
            continue
        if not _ITEM.fullmatch(item):
            return f"{item!r} is not an item name"
        if item in goods:
            return f"{item} is named twice"
        if _count(num) is None:
            return f"the count of {item} must be a whole number from 1 to {MAX_COUNT}"
        goods[item] = int(num)
    return tuple(goods.items()), coins


def _bad(why: str, name: str) -> str:
    return f"{why[:1].upper()}{why[1:]}. {USAGE[name]}"


def _split_name(rest: str, known_names: list[str]) -> tuple[str, str]:
    """NAME and the rest; a known name with spaces wins over the first word."""
    folded = rest.casefold()
    for name in sorted(known_names, key=len, reverse=True):
        if folded == name.casefold() or folded.startswith(name.casefold() + " "):
            return name, rest[len(name):].strip()
    name, _, tail = rest.partition(" ")
    return name, tail.strip()


def _one_line(tokens: list[str], name: str) -> tuple[str, int] | str:
    got = _lines(tokens)
    if isinstance(got, str):
        return _bad(got, name)
    goods, coins = got
    if name == "give" and coins and not goods:
        return (COINS, coins) if coins <= MAX_COUNT else _bad(f"give 1 to {MAX_COUNT} coins at a time", name)
    if len(goods) != 1 or coins:
        return USAGE[name]
    return goods[0]


def _shop_deal(name: str, rest: str) -> TradeCommand | str:
    words = rest.split()
    limit = None
    bound = "max" if name == "buy" else "min"
    if len(words) >= 2 and words[-2].lower() == bound:
        limit = _count(words[-1], MAX_PRICE, 0)
        if limit is None:
            return _bad(f"{bound} PRICE must be a whole number of coins up to {MAX_PRICE}", name)
        words = words[:-2]
    who = ""
    link = "from" if name == "buy" else "to"
    lowered = [w.lower() for w in words]
    if link in lowered[1:]:
        at = lowered.index(link, 1)
        who, words = " ".join(words[at + 1:]), words[:at]
        if not who:
            return USAGE[name]
    if not words:
        return USAGE[name]
    line = _one_line([w.lower() for w in words], name)
    if isinstance(line, str):
        return line
    return TradeCommand(name, who=who, item=line[0], n=line[1], limit=limit)


def _offer(rest: str, known_names: list[str]) -> TradeCommand | str:
    who, tail = _split_name(rest, known_names)
    words = tail.replace(",", " ").lower().split()
    if not who or not words or words[0] not in ("give", "want", "for"):
        return USAGE["offer"]
    sides: dict[str, list[str]] = {"give": [], "want": []}
    side = "give"  # words[0] names the first side
    for w in words:
        if w in ("give", "want", "for"):
            side = "give" if w == "give" else "want"
            continue
        sides[side].append(w)
    got = {}
    for key, tokens in sides.items():
        parsed = _lines(tokens)
        if isinstance(parsed, str):
            return _bad(parsed, "offer")
        if len(parsed[0]) > MAX_OFFER_LINES:
            return _bad(f"at most {MAX_OFFER_LINES} kinds of goods on each side", "offer")
        got[key] = parsed
    (give, coins), (want, want_coins) = got["give"], got["want"]
    if not (give or coins or want or want_coins):
        return _bad("an offer must give or want something", "offer")
    return TradeCommand("offer", who=who, give=give, coins=coins, want=want, want_coins=want_coins)


def parse_trade(head: str, rest: str, known_names: list[str]) -> TradeCommand | str:
    """One trade command (`head` without the slash, lower case); a string
    is the usage line to show instead."""
    name = ALIASES.get(head, head)
    if name in ("inv", "offers"):
        return TradeCommand(name) if not rest else USAGE[name]
    if name == "shop":
        return TradeCommand("shop", who=rest)
    if name in ("accept", "decline"):
        if not rest:
            return TradeCommand(name)
        oid = _count(rest.lstrip("#"), 2 ** 53)
        return TradeCommand(name, offer=oid) if oid is not None else USAGE[name]
    if name in ("buy", "sell"):
        return _shop_deal(name, rest)
    if name == "give":
        who, tail = _split_name(rest, known_names)
        if not who or not tail:
            return USAGE["give"]
        line = _one_line(tail.lower().split(), "give")
        return line if isinstance(line, str) else TradeCommand("give", who=who, item=line[0], n=line[1])
    return _offer(rest, known_names)


# -- words ----------------------------------------------------------------------
def things(lines: Any, coins: int = 0) -> str:
    parts = [f"{n} {item}" for item, n in lines] + ([f"{coins} coins"] if coins else [])
    if not parts:
        return "nothing"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def inv_text(coins: int, items: dict[str, int]) -> str:
    goods = things(sorted(items.items()))
    return f"You have {coins} coins" + ("" if not items else f", and {goods}") + "."


def shop_text(shop: dict[str, Any]) -> str:
    """A price list: {"name", "goods": {item: {price, offer, stock}}}."""
    rows = [f"{shop['name']}'s shop:  item · price · pays · stock"]
    for item, q in shop["goods"].items():
        price = f"{q['price']} coins" if q["price"] else "not sold"
        pays = f"pays {q['offer']}" if q["offer"] else "does not buy"
        rows.append(f"  {item:<12} {price:<9} · {pays:<12} · {q['stock']} in stock")
    if len(rows) == 1:
        rows.append("  (nothing)")
    return "\n".join(rows)


def deal(d: dict[str, Any]) -> str:
    """What an offer trades: '2 bread for 5 coins', 'a gift of 2 bread', 'a request for 1 bread'."""
    give, want = things(d["give"], d["coins"]), things(d["want"], d["want_coins"])
    if want == "nothing":
        return f"a gift of {give}"
    return f"a request for {want}" if give == "nothing" else f"{give} for {want}"


def offer_text(d: dict[str, Any], me: int | None) -> str:
    """An `offer` message in words, from `me`'s side."""
    oid, state, mine = d["id"], d["state"], d["from"] == me
    if state == "open":
        if mine:
            return f"You offered {d['to_name']} {deal(d)} (offer #{oid}; /decline {oid} withdraws it)."
        return f"{d['from_name']} offers you {deal(d)}: /accept {oid} or /decline {oid}."
    if state == "accepted":
        return f"{d['to_name']} accepted your offer #{oid}." if mine else f"You accepted {d['from_name']}'s offer #{oid}."
    if state == "declined":
        return f"{d['to_name']} declined your offer #{oid}." if mine else f"You declined {d['from_name']}'s offer #{oid}."
    if state == "withdrawn":
        return f"You withdrew offer #{oid} to {d['to_name']}." if mine else f"{d['from_name']} withdrew offer #{oid}."
    return f"Offer #{oid} {'to ' + d['to_name'] if mine else 'from ' + d['from_name']} expired."


def offers_text(offers: dict[int, dict[str, Any]], me: int | None) -> str:
    if not offers:
        return "No open offers."
    rows = [f"#{oid} {'to ' + d['to_name'] if d['from'] == me else 'from ' + d['from_name']}: {deal(d)}"
            for oid, d in sorted(offers.items())]
    return "Open offers: " + "; ".join(rows)
