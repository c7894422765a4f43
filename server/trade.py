"""The economy at the game's edges: the messages that move goods and coins
(`give`, `buy`, `sell`, `offer`, `accept`, `decline`) as world inputs, the
price list (`shop`), telling each owner what changed in its purse (`inv`)
and in its offers (`offer`) once the tick is committed, and the economy
system that runs the workplaces, supply orders and meals on the game clock.

The rules themselves are the world's (`server/world/economy.py`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocol.codec import Message, encode
from protocol.errors import ErrorCode
from protocol.trade import COINS, MAX_PRICE
from server.world.catalog import EVERY_NPC
from server.world.economy import Offer
from server.world.inputs import Accept, Buy, Consume, Decline, Give, Input, MakeOffer, Produce, Sell
from server.world.world import World

if TYPE_CHECKING:
    from server.game_api import GameApi

TRADE_MESSAGES = ("give", "buy", "sell", "offer", "accept", "decline")


def trade_input(eid: int, msg: Message) -> Input:
    """The world input a trade message asks for (fields already validated)."""
    d = msg.data
    if msg.type == "give":
        return Give(eid, d["to"], d["item"], d["n"])
    if msg.type == "buy":
        return Buy(eid, d["from"], d["item"], d["n"], d["max_price"])
    if msg.type == "sell":
        return Sell(eid, d["to"], d["item"], d["n"], d["min_price"])
    if msg.type == "offer":
        return MakeOffer(eid, d["to"], tuple(tuple(x) for x in d.get("give", ())), d.get("coins", 0),
                         tuple(tuple(x) for x in d.get("want", ())), d.get("want_coins", 0))
    if msg.type == "accept":
        return Accept(eid, d["offer"])
    return Decline(eid, d["offer"])


def shop_reply(world: World, msg: Message) -> bytes:
    """The `shop` answer, or an error: prices are public, asked from anywhere."""
    keeper = world.entities.get(msg.data["at"])
    if keeper is None:
        seen = world.find_entity(msg.data["at"])  # in a region: just across its border (their stock is there)
        why = (f"{seen.name} is across a region border: ask again from there" if seen is not None
               else f"nobody with id {msg.data['at']} is here")
        return encode("error", code=str(ErrorCode.NO_SUCH_ENTITY), msg=why, seq=msg.seq)
    eco = world.economy
    shop = eco.catalog.shop_of(keeper.name)
    if shop is None:
        return encode("error", code=str(ErrorCode.NO_SHOP), msg=f"{keeper.name} keeps no shop", seq=msg.seq)
    rows = []
    for item in dict.fromkeys(shop.sells + shop.buys):
        q = eco.quote(keeper, item)
        if q is not None:
            rows.append([item, *q, eco.catalog.prices[item], shop.target])
    return encode("shop", at=keeper.id, name=keeper.name, goods=rows, seq=msg.seq)


def inventory(world: World, eid: int, items: set[str] | None = None) -> bytes:
    """A purse as an `inv` message: whole (`items` None) or the items named."""
    p = world.economy.purse(eid)
    if items is None:
        return encode("inv", tick=world.tick, coins=p.coins, items=dict(sorted(p.goods.items())), full=True)
    return encode("inv", tick=world.tick, coins=p.coins,
                  items={i: p.goods.get(i, 0) for i in sorted(items) if i != COINS}, full=False)


def offer_frame(world: World, o: Offer, names: dict[int, str] | None = None) -> bytes:
    """`names`: of parties no longer in the world (one that just left it)."""
    def name(eid: int) -> str:
        e = world.entities.get(eid)
        return e.name if e is not None else (names or {}).get(eid, "")
    return encode("offer", id=o.id, state=o.state, **{"from": o.maker}, from_name=name(o.maker), to=o.to,
                  to_name=name(o.to), give=[list(x) for x in o.give], coins=o.coins,
                  want=[list(x) for x in o.want], want_coins=o.want_coins, expires=o.expires)


def progress_frame(world: World, eid: int) -> bytes:
    return encode("progress", tick=world.tick, topics=world.progress.summary(eid))


def tell_owners(game: GameApi) -> None:
    """After the commit: each connected owner's purse changes, then the news
    of offers made to or by them (before the acks of what caused them), then
    learners' progress at the school."""
    world, clients = game.world, game.clients
    eco = world.economy
    for t in eco.trades:
        game.metrics.trades.labels(t.kind).inc()
        game.metrics.coins_traded.inc(t.coins + t.back_coins)
    for eid, items in eco.changed.items():
        client = clients.get(eid)
        if client is not None:
            client.send(inventory(world, eid, items))
    for o in eco.offer_news:
        frame = offer_frame(world, o)
        for eid in (o.maker, o.to):
            client = clients.get(eid)
            if client is not None:
                client.send(frame)
    for eid in world.progress.changed:
        client = clients.get(eid)
        if client is not None:
            client.send(progress_frame(world, eid))


def welcome_purse(world: World, eid: int) -> list[bytes]:
    """What a newly welcomed player is told: its whole purse, its open offers
    and its progress at the school."""
    frames = [inventory(world, eid)]
    frames += [offer_frame(world, o) for o in world.economy.offers.values() if eid in (o.maker, o.to)]
    if world.progress.of(eid):
        frames.append(progress_frame(world, eid))
    return frames


# -- the economy system -------------------------------------------------------
def _crossed(world: World, at: int) -> bool:
    """Whether the game clock passed minute `at` of the day in this tick."""
    now = world.game_minutes
    before = now - world.rules.game_seconds_per_tick / 60.0
    a, b = before % 1440, now % 1440
    return a < at <= b if a <= b else (at > a or at <= b)


def crossed_hour(world: World) -> bool:
    """Whether the game clock passed a whole hour in this tick."""
    now = world.game_minutes
    return int(now // 60) != int((now - world.rules.game_seconds_per_tick / 60.0) // 60)


def economy_system(world: World) -> list[Input]:
    """Workplaces make goods, NPCs order supplies and eat, on the game clock.
    Each is an input the game logs (so the audit sees all production); one
    that the world refuses (nothing to make it from) is not."""
    eco = world.economy
    cat = eco.catalog
    out: list[Input] = []
    npcs = None

    def who(name: str) -> list[Any]:
        nonlocal npcs
        if npcs is None:
            npcs = sorted((e for e in world.entities.values() if e.kind == "npc"), key=lambda e: e.id)
        if name == EVERY_NPC:
            return npcs
        e = world.find_by_name(name)
        return [e] if e is not None and e.kind == "npc" else []

    for i, r in enumerate(cat.recipes):
        if _crossed(world, r.at):
            out += [Produce(e.id, i) for e in who(r.npc)]
    for o in cat.orders:
        if not _crossed(world, o.at):
            continue
        shop = world.find_by_name(o.shop)
        if shop is None:
            continue
        for e in who(o.npc):
            need = o.keep - eco.purse(e.id).goods.get(o.item, 0)
            stock = eco.purse(shop.id).goods.get(o.item, 0)
            if e.id != shop.id and need > 0 and stock > 0:
                out.append(Buy(e.id, shop.id, o.item, min(need, stock), MAX_PRICE, delivery=True))
    for u in cat.uses:
        if _crossed(world, u.at):
            out += [Consume(e.id, u.item, u.n) for e in who(u.npc) if eco.purse(e.id).has(u.item, u.n)]
    return out
