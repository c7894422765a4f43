"""The rules of each input that moves goods or coins: give, buy, sell,
offer, accept, decline, produce and consume (the state they act on is in
`economy.py`).

Each rule checks everything first and changes nothing when it refuses, so
an input applies whole or not at all; the tick applies inputs one at a
time, so two racing requests for the same goods are served in order and
the second one finds them gone.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from protocol.errors import ErrorCode as E
from protocol.trade import COINS, HANDOVER_RANGE, MAX_COINS, MAX_OPEN_OFFERS, MAX_STACK, OFFER_TTL_TICKS
from server.world.catalog import Lines, Shop
from server.world.economy import Economy, Offer, Purse, Trade, offer_price, price, within_reach
from server.world.entity import Entity
from server.world.inputs import Accept, Buy, Consume, Decline, Give, MakeOffer, Produce, Rejection, Sell


class World(Protocol):
    """What the rules use of the world (server/world/world.py)."""
    entities: dict[int, Entity]
    economy: Economy
    events: list[dict[str, Any]]
    tick: int

    def find_entity(self, eid: int) -> Any: ...


def _missing(world: World, eid: int, what: str) -> Rejection:
    """Nobody `eid` in this world: in a region, someone seen just across
    its border is named (they are in the next region's world, where goods
    change hands; the player walks over), else the plain refusal."""
    seen = world.find_entity(eid)
    if seen is not None:
        return Rejection(E.NO_SUCH_ENTITY, f"{seen.name} is across a region border: walk over to {what} them")
    return Rejection(E.NO_SUCH_ENTITY, f"nobody with id {eid} is here")


def _other(world: World, me: Entity, other: int, what: str) -> Entity | Rejection:
    e = world.entities.get(other)
    if e is None:
        return _missing(world, other, what)
    if e.id == me.id:
        return Rejection(E.BAD_VALUE, f"you cannot {what} yourself")
    if not within_reach(me, e):
        return Rejection(E.OUT_OF_RANGE, f"{e.name} is too far away (within {HANDOVER_RANGE} tiles, please)")
    return e


def _known(world: World, item: str, coins_ok: bool = False) -> Rejection | None:
    if item in world.economy.catalog.prices or (coins_ok and item == COINS):
        return None
    return Rejection(E.NO_SUCH_ITEM, f"there is no such thing as {item!r} here")


def _event(world: World, a: Entity, b: Entity, text: str, trade: Trade) -> None:
    world.economy.trades.append(trade)
    world.events.append({"kind": "trade", "tick": world.tick, "from": a.id, "name": a.name, "to": b.id,
                         "to_name": b.name, "text": text, "x": a.x, "y": a.y})


def _things(lines: Lines, coins: int) -> str:
    parts = [f"{n} {item}" for item, n in lines] + ([f"{coins} coins"] if coins else [])
    return ", ".join(parts) or "nothing"


def apply_give(world: World, inp: Give) -> Rejection | None:
    eco, me = world.economy, world.entities[inp.entity]
    other = _other(world, me, inp.to, "give to")
    if isinstance(other, Rejection):
        return other
    if (bad := _known(world, inp.item, coins_ok=True)) is not None:
        return bad
    if not eco.purse(me.id).has(inp.item, inp.n):
        return Rejection(E.NOT_ENOUGH, f"you do not have {inp.n} {inp.item}")
    if eco.purse(other.id).room(inp.item) < inp.n:
        return Rejection(E.FULL, f"{other.name} cannot hold {inp.n} more {inp.item}")
    eco._move(me.id, other.id, inp.item, inp.n)
    goods, coins = ((), inp.n) if inp.item == COINS else (((inp.item, inp.n),), 0)
    _event(world, me, other, f"{me.name} gave {other.name} {inp.n} {inp.item}", Trade("give", me.id, other.id,
                                                                                     goods, coins))
    return None


def _shop(world: World, me: Entity, keeper_id: int, item: str, sell: bool, delivery: bool = False
          ) -> tuple[Entity, Shop, tuple[int, int, int]] | Rejection:
    keeper = world.entities.get(keeper_id)
    if keeper is None:
        return _missing(world, keeper_id, "trade with")
    if keeper.id == me.id:
        return Rejection(E.BAD_VALUE, "you cannot trade with yourself")
    if (bad := _known(world, item)) is not None:
        return bad
    q = world.economy.quote(keeper, item)
    shop = world.economy.catalog.shop_of(keeper.name)
    if q is None or shop is None or (q[1] if sell else q[0]) == 0:
        return Rejection(E.NO_SHOP, f"{keeper.name} does not {'buy' if sell else 'sell'} {item}")
    if not (delivery and me.kind == "npc") and not within_reach(me, keeper):
        return Rejection(E.OUT_OF_RANGE, f"{keeper.name} is too far away (within {HANDOVER_RANGE} tiles, please)")
    return keeper, shop, q


def apply_buy(world: World, inp: Buy) -> Rejection | None:
    """n at the shop's price for one at the stock the purchase leaves (a lot
    costs at least as much as buying one at a time)."""
    eco, me = world.economy, world.entities[inp.entity]
    got = _shop(world, me, inp.shop, inp.item, sell=False, delivery=inp.delivery)
    if isinstance(got, Rejection):
        return got
    keeper, shop, (_, _, stock) = got
    if stock < inp.n:
        return Rejection(E.NOT_ENOUGH, f"{keeper.name} has only {stock} {inp.item}")
    unit = price(eco.catalog.prices[inp.item], stock - inp.n, shop.target)
    if unit > inp.max_price:
        return Rejection(E.PRICE_CHANGED, f"{inp.item} costs {unit} each now, over your {inp.max_price}")
    total = unit * inp.n
    if not eco.purse(me.id).has(COINS, total):
        return Rejection(E.NOT_ENOUGH, f"{inp.n} {inp.item} cost {total} coins; you have {eco.purse(me.id).coins}")
    if eco.purse(me.id).room(inp.item) < inp.n or eco.purse(keeper.id).room(COINS) < total:
        return Rejection(E.FULL, f"you cannot hold {inp.n} more {inp.item}")
    eco._move(keeper.id, me.id, inp.item, inp.n)
    eco._move(me.id, keeper.id, COINS, total)
    _event(world, me, keeper, f"{me.name} bought {inp.n} {inp.item} from {keeper.name} for {total} coins",
           Trade("buy", me.id, keeper.id, (), total, ((inp.item, inp.n),), 0))
    return None


def apply_sell(world: World, inp: Sell) -> Rejection | None:
    """n at the shop's offer for one at the stock the sale leaves."""
    eco, me = world.economy, world.entities[inp.entity]
    got = _shop(world, me, inp.shop, inp.item, sell=True)
    if isinstance(got, Rejection):
        return got
    keeper, shop, (_, _, stock) = got
    if not eco.purse(me.id).has(inp.item, inp.n):
        return Rejection(E.NOT_ENOUGH, f"you do not have {inp.n} {inp.item}")
    unit = offer_price(eco.catalog.prices[inp.item], stock + inp.n, shop.target)
    if unit < inp.min_price:
        return Rejection(E.PRICE_CHANGED, f"{keeper.name} pays {unit} each now, under your {inp.min_price}")
    total = unit * inp.n
    if not eco.purse(keeper.id).has(COINS, total):
        return Rejection(E.NOT_ENOUGH, f"{keeper.name} has not got {total} coins to pay for them")
    if eco.purse(keeper.id).room(inp.item) < inp.n or eco.purse(me.id).room(COINS) < total:
        return Rejection(E.FULL, f"{keeper.name} cannot take {inp.n} more {inp.item}")
    eco._move(me.id, keeper.id, inp.item, inp.n)
    eco._move(keeper.id, me.id, COINS, total)
    _event(world, me, keeper, f"{me.name} sold {inp.n} {inp.item} to {keeper.name} for {total} coins",
           Trade("sell", me.id, keeper.id, ((inp.item, inp.n),), 0, (), total))
    return None


def _lines_ok(world: World, lines: Lines) -> Rejection | None:
    items = [item for item, _ in lines]
    if len(set(items)) != len(items):
        return Rejection(E.BAD_VALUE, "an offer names each item once per side")
    for item in items:
        if (bad := _known(world, item)) is not None:
            return bad
    return None


def _can_pay(p: Purse, lines: Lines, coins: int) -> str | None:
    for item, n in lines:
        if not p.has(item, n):
            return f"{n} {item}"
    return None if p.has(COINS, coins) else f"{coins} coins"


def _can_take(p: Purse, lines: Lines, coins: int, less: Lines = (), less_coins: int = 0) -> bool:
    """Whether `p` can hold `lines` and `coins` once `less` and `less_coins` have left it."""
    out = dict(less)
    return (all(p.goods.get(item, 0) - out.get(item, 0) + n <= MAX_STACK for item, n in lines)
            and p.coins - less_coins + coins <= MAX_COINS)


def apply_offer(world: World, inp: MakeOffer) -> Rejection | int:
    eco, me = world.economy, world.entities[inp.entity]
    other = _other(world, me, inp.to, "trade with")
    if isinstance(other, Rejection):
        return other
    if other.kind != "player":
        return Rejection(E.BAD_VALUE, f"{other.name} trades at a shop, not by offers")
    give, want = tuple(map(tuple, inp.give)), tuple(map(tuple, inp.want))
    if not (give or want or inp.coins or inp.want_coins):
        return Rejection(E.BAD_VALUE, "an offer must give or want something")
    for lines in (give, want):
        if (bad := _lines_ok(world, lines)) is not None:
            return bad
    if (lack := _can_pay(eco.purse(me.id), give, inp.coins)) is not None:
        return Rejection(E.NOT_ENOUGH, f"you do not have {lack}")
    if not eco.may_offer(me.id):
        return Rejection(E.FULL, f"you have {MAX_OPEN_OFFERS} open offers; wait for answers or withdraw one")
    o = Offer(eco.next_offer_id, me.id, other.id, give, inp.coins, want, inp.want_coins,
              world.tick + OFFER_TTL_TICKS)
    eco.next_offer_id += 1
    eco.offers[o.id] = o
    eco.offer_news.append(o)
    return o.id


def apply_accept(world: World, inp: Accept) -> Rejection | None:
    """Both sides change hands now, or neither: everything is checked again
    (nothing was set aside when the offer was made)."""
    eco, me = world.economy, world.entities[inp.entity]
    o = eco.offers.get(inp.offer)
    if o is None or o.to != me.id:
        return Rejection(E.OFFER_EXPIRED, f"no open offer {inp.offer} for you")
    maker = world.entities.get(o.maker)
    if maker is None:
        return Rejection(E.NO_SUCH_ENTITY, "whoever made that offer has left")
    if not within_reach(me, maker):
        return Rejection(E.OUT_OF_RANGE, f"{maker.name} is too far away (within {HANDOVER_RANGE} tiles, please)")
    mp, yp = eco.purse(maker.id), eco.purse(me.id)
    if (lack := _can_pay(yp, o.want, o.want_coins)) is not None:
        return Rejection(E.NOT_ENOUGH, f"you do not have {lack}")
    if (lack := _can_pay(mp, o.give, o.coins)) is not None:
        return Rejection(E.NOT_ENOUGH, f"{maker.name} no longer has {lack}")
    # after the swap each side must fit: check against purses as they will be
    if not (_can_take(yp, o.give, o.coins, o.want, o.want_coins)
            and _can_take(mp, o.want, o.want_coins, o.give, o.coins)):
        return Rejection(E.FULL, "one of you cannot hold that much")
    for item, n in o.give:
        eco._move(maker.id, me.id, item, n)
    for item, n in o.want:
        eco._move(me.id, maker.id, item, n)
    if o.coins:
        eco._move(maker.id, me.id, COINS, o.coins)
    if o.want_coins:
        eco._move(me.id, maker.id, COINS, o.want_coins)
    eco._close(o, "accepted")
    _event(world, maker, me, f"{maker.name} and {me.name} traded: {_things(o.give, o.coins)} for "
                             f"{_things(o.want, o.want_coins)}",
           Trade("offer", maker.id, me.id, o.give, o.coins, o.want, o.want_coins))
    return None


def apply_decline(world: World, inp: Decline) -> Rejection | None:
    eco = world.economy
    o = eco.offers.get(inp.offer)
    if o is None or inp.entity not in (o.to, o.maker):
        return Rejection(E.OFFER_EXPIRED, f"no open offer {inp.offer} for you")
    eco._close(o, "declined" if inp.entity == o.to else "withdrawn")
    return None


def apply_produce(world: World, inp: Produce) -> Rejection | None:
    eco, me = world.economy, world.entities[inp.entity]
    if not 0 <= inp.recipe < len(eco.catalog.recipes):
        return Rejection(E.BAD_VALUE, f"no recipe {inp.recipe}")
    r = eco.catalog.recipes[inp.recipe]
    p = eco.purse(me.id)
    if r.npc.casefold() != me.name.casefold():
        return Rejection(E.FORBIDDEN, f"{me.name} does not work that recipe")
    if _can_pay(p, r.uses, 0) is not None:
        return Rejection(E.NOT_ENOUGH, f"{me.name} lacks what the recipe uses")
    if not _can_take(p, r.makes, 0):
        return Rejection(E.FULL, f"{me.name} has no room for what the recipe makes")
    for item, n in r.uses:
        p.add(item, -n)
    for item, n in r.makes:
        p.add(item, n)
    eco._touch(me.id, *(i for i, _ in r.uses), *(i for i, _ in r.makes))
    return None


def apply_consume(world: World, inp: Consume) -> Rejection | None:
    eco = world.economy
    if (bad := _known(world, inp.item)) is not None:
        return bad
    if inp.n < 1 or not eco.purse(inp.entity).has(inp.item, inp.n):
        return Rejection(E.NOT_ENOUGH, f"not {inp.n} {inp.item} to use")
    eco.purse(inp.entity).add(inp.item, -inp.n)
    eco._touch(inp.entity, inp.item)
    return None


# input type -> the rule that applies it
HANDLERS: dict[type, Callable[[Any, Any], Rejection | int | None]] = {Give: apply_give, Buy: apply_buy, Sell: apply_sell, MakeOffer: apply_offer, Accept: apply_accept,
            Decline: apply_decline, Produce: apply_produce, Consume: apply_consume}
