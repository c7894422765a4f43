"""Goods and coins in the world: the rules of give, buy, sell and offers,
prices that move with stock, refusals that change nothing, and (with
hypothesis) that no sequence of inputs creates or loses an item or a coin
outside production and consumption, and that a replay reaches the same state."""
from __future__ import annotations

import copy

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from protocol.errors import ErrorCode
from protocol.trade import MAX_OPEN_OFFERS, MAX_STACK, OFFER_TTL_TICKS
from server.persistence import Database
from server.restore import open_world, world_catalog
from server.world.catalog import CatalogError, load_goods, parse_goods
from server.world.economy import offer_price, price
from server.world.inputs import (Accept, Buy, Consume, Decline, Give, Join, Leave, MakeOffer, MoveTo, Produce,
                                 Rejection, Sell, from_record, to_record)
from server.world.village import village
from server.world.world import World

MAP = village()
CATALOG = load_goods()
# a walkable spot in the square and its neighbours
SQ = MAP.places["square"].entry


def spot(dx: int, dy: int = 0) -> tuple[int, int]:
    x, y = SQ[0] + dx, SQ[1] + dy
    assert MAP.walkable(x, y)
    return x, y


def village_world() -> World:
    """Ann and Bob (players), Sanne (the baker's shop) next to each other, Pell far off."""
    w = World(MAP, seed=3, catalog=CATALOG)
    w.begin_tick()
    for inp in (Join(1, "Ann", *spot(0)), Join(2, "Bob", *spot(1)), Join(3, "Sanne", *spot(2), npc=True),
                Join(4, "Pell", *MAP.places["market"].entry, npc=True)):
        assert w.apply(inp) is None
    return w


def holdings(w: World) -> dict[int, tuple[int, dict[str, int]]]:
    return {eid: (p.coins, dict(p.goods)) for eid, p in w.economy.purses.items()}


def totals(w: World) -> dict[str, int]:
    out: dict[str, int] = {"coins": 0}
    for p in w.economy.purses.values():
        out["coins"] += p.coins
        for item, n in p.goods.items():
            out[item] = out.get(item, 0) + n
    return {k: v for k, v in out.items() if v}


def test_newcomers_and_npcs_open_their_purses_from_the_goods_file():
    w = village_world()
    assert holdings(w)[1] == (CATALOG.start_coins, {})
    coins, goods = CATALOG.start["sanne"]
    assert holdings(w)[3] == (coins, dict(goods))
    # leaving and coming back keeps the purse; it is not opened again
    w.economy.purse(1).add("bread", 2)
    assert w.apply(Leave(1)) is None and w.apply(Join(1, "Ann", *spot(0))) is None
    assert holdings(w)[1] == (CATALOG.start_coins, {"bread": 2})


def test_give_moves_goods_and_coins_and_tells_both_owners():
    w = village_world()
    w.begin_tick()
    assert w.apply(Give(1, 2, "coins", 5)) is None
    assert w.economy.purse(1).coins == CATALOG.start_coins - 5 and w.economy.purse(2).coins == CATALOG.start_coins + 5
    assert w.economy.changed == {1: {"coins"}, 2: {"coins"}}
    ev = w.events[-1]
    assert ev["kind"] == "trade" and ev["from"] == 1 and ev["to"] == 2 and "gave Bob 5 coins" in ev["text"]


@pytest.mark.parametrize("inp, code", [
    (Give(1, 2, "coins", 21), ErrorCode.NOT_ENOUGH),
    (Give(1, 2, "bread", 1), ErrorCode.NOT_ENOUGH),
    (Give(1, 2, "gold", 1), ErrorCode.NO_SUCH_ITEM),
    (Give(1, 1, "coins", 1), ErrorCode.BAD_VALUE),
    (Give(1, 99, "coins", 1), ErrorCode.NO_SUCH_ENTITY),
    (Give(1, 4, "coins", 1), ErrorCode.OUT_OF_RANGE),            # Pell is at the market
    (Buy(1, 3, "bread", 1, 1), ErrorCode.PRICE_CHANGED),          # bread costs more than 1
    (Buy(1, 3, "bread", 9, 100), ErrorCode.NOT_ENOUGH),           # Sanne has 8
    (Buy(1, 3, "bread", 6, 100), ErrorCode.NOT_ENOUGH),           # 6 loaves cost more than 20 coins
    (Buy(1, 3, "flour", 1, 100), ErrorCode.NO_SHOP),              # she buys flour, she does not sell it
    (Buy(1, 2, "bread", 1, 100), ErrorCode.NO_SHOP),              # Bob keeps no shop
    (Buy(1, 4, "flour", 1, 100), ErrorCode.OUT_OF_RANGE),
    (Buy(1, 4, "flour", 1, 100, delivery=True), ErrorCode.OUT_OF_RANGE),  # deliveries are for NPCs
    (Sell(1, 3, "eggs", 1, 0), ErrorCode.NOT_ENOUGH),
    (Sell(1, 3, "bread", 1, 0), ErrorCode.NO_SHOP),               # she sells bread, does not buy it
    (MakeOffer(1, 2), ErrorCode.BAD_VALUE),                       # an empty offer
    (MakeOffer(1, 2, give=(("bread", 1),)), ErrorCode.NOT_ENOUGH),
    (MakeOffer(1, 2, want=(("eggs", 1), ("eggs", 2))), ErrorCode.BAD_VALUE),
    (MakeOffer(1, 3, coins=1), ErrorCode.BAD_VALUE),              # NPCs trade at their shops
    (MakeOffer(1, 2, want=(("gold", 1),)), ErrorCode.NO_SUCH_ITEM),
    (Accept(2, 77), ErrorCode.OFFER_EXPIRED),
    (Decline(2, 77), ErrorCode.OFFER_EXPIRED),
])
def test_a_refused_trade_changes_nothing(inp, code):
    w = village_world()
    before, snap = holdings(w), w.snapshot()
    result = w.apply(inp)
    assert isinstance(result, Rejection) and result.code == code, result
    assert holdings(w) == before and w.snapshot() == snap


def test_the_quoted_price_is_what_one_costs_and_one_pays():
    w = village_world()
    w.economy.purse(1).add("eggs", 1)
    for _ in range(3):
        p, o, _ = w.economy.quote(w.entities[3], "bread")
        coins = w.economy.purse(1).coins
        assert w.apply(Buy(1, 3, "bread", 1, p)) is None and w.economy.purse(1).coins == coins - p
    _, o, _ = w.economy.quote(w.entities[3], "eggs")
    coins = w.economy.purse(1).coins
    assert w.apply(Sell(1, 3, "eggs", 1, o)) is None and w.economy.purse(1).coins == coins + o


def test_buying_pays_the_price_at_the_stock_left_and_the_price_rises():
    w = village_world()
    shop = CATALOG.shop_of("Sanne")
    stock = w.economy.purse(3).goods["bread"]
    quoted = w.economy.quote(w.entities[3], "bread")
    assert quoted == (price(4, stock - 1, shop.target), 0, stock)  # what buying one costs now
    unit = price(4, stock - 2, shop.target)
    assert w.apply(Buy(1, 3, "bread", 2, unit)) is None
    assert holdings(w)[1] == (CATALOG.start_coins - 2 * unit, {"bread": 2})
    assert w.economy.purse(3).goods["bread"] == stock - 2
    assert w.economy.quote(w.entities[3], "bread")[0] >= quoted[0]


def test_selling_to_a_shop_that_buys_it():
    w = village_world()
    w.economy.purse(1).add("eggs", 3)
    stock = w.economy.purse(3).goods.get("eggs", 0)
    assert w.economy.quote(w.entities[3], "eggs")[1] == offer_price(2, stock + 1, CATALOG.shop_of("Sanne").target)
    unit = offer_price(2, stock + 3, CATALOG.shop_of("Sanne").target)
    assert w.apply(Sell(1, 3, "eggs", 3, unit + 1)).code == ErrorCode.PRICE_CHANGED
    assert w.apply(Sell(1, 3, "eggs", 3, unit)) is None
    assert holdings(w)[1] == (CATALOG.start_coins + 3 * unit, {})


@pytest.mark.parametrize("base, target", [(1, 1), (2, 8), (4, 8), (20, 4), (12, 10)])
def test_prices_are_bounded_and_buying_then_selling_back_never_makes_coins(base, target):
    for s in range(0, 4 * target):
        assert max(1, base // 2) <= price(base, s, target) <= (3 * base + 1) // 2 + 1
        assert price(base, s + 1, target) <= price(base, s, target)
        assert offer_price(base, s, target) <= price(base, s, target)
        for n in range(1, s + 1):  # buy n (price at stock s - n), sell them back (offer at stock s)
            assert n * offer_price(base, s, target) <= n * price(base, s - n, target)


def test_an_accepted_offer_swaps_both_sides_in_one_tick():
    w = village_world()
    w.economy.purse(1).add("eggs", 4)
    oid = w.apply(MakeOffer(1, 2, give=(("eggs", 3),), want_coins=5))
    assert isinstance(oid, int)
    assert w.apply(MakeOffer(1, 2, give=(("eggs", 1),))) == oid + 1  # nothing is set aside
    w.begin_tick()
    assert w.apply(Accept(2, oid)) is None
    assert holdings(w)[1] == (CATALOG.start_coins + 5, {"eggs": 1})
    assert holdings(w)[2] == (CATALOG.start_coins - 5, {"eggs": 3})
    assert [o.state for o in w.economy.offer_news] == ["accepted"]
    # accepting twice, or the maker's own offer, is refused
    assert w.apply(Accept(2, oid)).code == ErrorCode.OFFER_EXPIRED
    assert w.apply(Accept(1, oid + 1)).code == ErrorCode.OFFER_EXPIRED


def test_an_offer_whose_goods_are_gone_is_refused_and_stays_open():
    w = village_world()
    w.economy.purse(1).add("eggs", 1)
    oid = w.apply(MakeOffer(1, 2, give=(("eggs", 1),)))
    assert w.apply(Give(1, 2, "eggs", 1)) is None
    before = holdings(w)
    assert w.apply(Accept(2, oid)).code == ErrorCode.NOT_ENOUGH
    assert holdings(w) == before and oid in w.economy.offers


def test_offers_lapse_are_declined_withdrawn_and_bounded():
    w = village_world()
    ids = [w.apply(MakeOffer(1, 2, want_coins=1)) for _ in range(MAX_OPEN_OFFERS)]
    assert w.apply(MakeOffer(1, 2, want_coins=1)).code == ErrorCode.FULL
    w.begin_tick()
    assert w.apply(Decline(2, ids[0])) is None and w.apply(Decline(1, ids[1])) is None
    assert [o.state for o in w.economy.offer_news] == ["declined", "withdrawn"]
    for _ in range(OFFER_TTL_TICKS):
        w.begin_tick()
        w.simulate()
    assert w.economy.offers == {} and {o.state for o in w.economy.offer_news} <= {"expired"}
    assert w.apply(Accept(2, ids[2])).code == ErrorCode.OFFER_EXPIRED


def test_nobody_holds_more_than_a_stack():
    w = village_world()
    w.economy.purse(2).add("eggs", MAX_STACK)
    w.economy.purse(1).add("eggs", 1)
    assert w.apply(Give(1, 2, "eggs", 1)).code == ErrorCode.FULL


def test_production_and_meals_follow_the_recipes():
    w = village_world()
    i = next(i for i, r in enumerate(CATALOG.recipes) if r.npc == "Sanne" and dict(r.uses) == {"flour": 3})
    before = dict(w.economy.purse(3).goods)
    assert w.apply(Produce(3, i)) is None
    after = w.economy.purse(3).goods
    assert after["flour"] == before["flour"] - 3 and after["bread"] == before["bread"] + 6
    assert w.apply(Produce(1, i)).code == ErrorCode.FORBIDDEN  # Ann is not the baker
    w.economy.purse(3).goods["flour"] = 1
    assert w.apply(Produce(3, i)).code == ErrorCode.NOT_ENOUGH
    assert w.apply(Consume(3, "bread", 1)) is None
    assert w.apply(Consume(1, "bread", 1)).code == ErrorCode.NOT_ENOUGH


def test_npc_supply_orders_are_delivered_across_the_village():
    w = village_world()
    flour = w.economy.purse(3).goods["flour"]
    assert w.apply(Buy(3, 4, "flour", 2, 100, delivery=True)) is None
    assert w.economy.purse(3).goods["flour"] == flour + 2


def test_the_goods_file_is_checked():
    for bad, why in [({}, "[goods]"), ({"goods": {"Bread": 2}}, "bad item"), ({"goods": {"bread": 0}}, "price"),
                     ({"goods": {"bread": 2}, "shop": [{"keeper": "S", "sells": ["cake"]}]}, "cake"),
                     ({"goods": {"bread": 2}, "make": [{"npc": "S", "at": "25:00", "makes": {"bread": 1}}]}, "HH:MM"),
                     ({"goods": {"bread": 2}, "order": [{"npc": "S", "at": "05:00", "item": "bread", "from": "X"}]},
                      "keeps no shop")]:
        with pytest.raises(CatalogError, match=why):
            parse_goods(bad)
    assert parse_goods({"goods": {"bread": 2}}).to_dict() == parse_goods({"goods": {"bread": 2}}).to_dict()


def test_the_catalog_round_trips_and_a_world_keeps_its_own(tmp_path):
    assert type(CATALOG).from_dict(CATALOG.to_dict()) == CATALOG
    db = Database(str(tmp_path / "w.db"))
    other = parse_goods({"goods": {"bread": 2}})
    w = open_world(db, MAP, 1, catalog=CATALOG)
    assert w.economy.catalog == CATALOG
    assert world_catalog(db, other) == CATALOG  # the stored one wins
    db.close()


# -- properties ----------------------------------------------------------------
PEOPLE = (1, 2, 3, 4)
ids = st.sampled_from(PEOPLE)
players = st.sampled_from((1, 2))
shops = st.sampled_from((3, 3, 3, 4, 2))  # mostly Sanne, within reach; sometimes far, or no shop
items = st.sampled_from(("bread", "eggs", "flour", "bread", "eggs", "coins", "gold"))
counts = st.integers(1, 4)
lines = st.lists(st.tuples(st.sampled_from(("bread", "eggs", "flour")), counts), max_size=2)
inputs = st.one_of(
    st.builds(Give, players, ids, items, counts),
    st.builds(Buy, players, shops, items, counts, st.integers(0, 12), st.booleans()),
    st.builds(Sell, players, shops, items, counts, st.integers(0, 3)),
    st.builds(MakeOffer, players, players, lines.map(tuple), st.integers(0, 6), lines.map(tuple), st.integers(0, 6)),
    st.builds(Accept, players, st.integers(0, 4)),  # 0: the newest offer (see below)
    st.builds(Decline, players, st.integers(1, 4)),
    st.builds(MoveTo, ids, st.sampled_from([spot(0)[0], spot(3)[0]]), st.just(SQ[1])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(inputs, max_size=6), min_size=1, max_size=8))
def test_no_sequence_of_trades_creates_or_loses_anything_and_replay_agrees(ticks):
    w = village_world()
    w.economy.purse(1).add("eggs", 5)
    w.economy.purse(2).add("bread", 5)
    start_totals, start = totals(w), copy.deepcopy(w.snapshot())
    log = []
    for inps in ticks:
        w.begin_tick()
        for inp in inps:
            if isinstance(inp, Accept) and inp.offer == 0:  # the newest offer made to this player
                inp = Accept(inp.entity, max((o.id for o in w.economy.offers.values() if o.to == inp.entity),
                                             default=w.economy.next_offer_id))
            before = holdings(w)
            result = w.apply(inp)
            if isinstance(result, Rejection):
                assert holdings(w) == before  # a refusal changes nothing
            else:
                log.append((w.tick, inp))
            for p in w.economy.purses.values():
                assert p.coins >= 0 and all(0 < n <= MAX_STACK for n in p.goods.values())
        w.simulate()
        assert totals(w) == start_totals  # trades only move things
    # the replay reads the inputs back as the log stores them (MessagePack)
    again = World.restore(MAP, start)
    for tick in range(start["tick"] + 1, w.tick + 1):
        again.begin_tick()
        for _, inp in [x for x in log if x[0] == tick]:
            kind, data = to_record(inp)
            assert not isinstance(again.apply(from_record(kind, msgpack.unpackb(msgpack.packb(data)))), Rejection)
        again.simulate()
    assert again.state_hash() == w.state_hash()
