"""The sim's economy record: the village's workplaces, orders and meals
run on the game clock (server/trade.py's economy system, no model), and
the record counts the trades, samples prices and coins, and plots them."""
from __future__ import annotations

from agents.sim_economy import EconomyRecord
from server.trade import economy_system
from server.world.catalog import load_goods
from server.world.inputs import Join, Rejection
from server.world.village import village
from server.world.world import World


def test_a_morning_in_the_village_trades_produces_and_is_recorded(tmp_path):
    world = World(village(), seed=1, catalog=load_goods())
    world.begin_tick()
    for i, (name, place) in enumerate([("Oda", "fields"), ("Pell", "market"), ("Sanne", "bakery"),
                                       ("Bram", "smithy")], start=1):
        assert world.apply(Join(i, name, *world.map.places[place].entry, npc=True)) is None
    record = EconomyRecord()
    applied: dict[str, int] = {}
    totals_before = world.economy.purse(2).goods.get("flour", 0)
    while world.game_minutes < 11 * 60 + 40:  # 08:00 to 11:40: Pell's wheat, the mill, the smithy, bread for all
        world.begin_tick()
        for inp in economy_system(world):
            if not isinstance(world.apply(inp), Rejection):
                applied[inp.kind] = applied.get(inp.kind, 0) + 1
        world.simulate()
        record.observe(world)
    assert applied.get("buy", 0) >= 4 and applied.get("produce", 0) >= 3, applied
    assert record.trades["buy"] == applied["buy"] and record.coins_traded > 0
    assert record.goods_traded["wheat"] > 0 and record.goods_traded["bread"] >= 3
    assert world.economy.purse(2).goods["flour"] > totals_before  # the mill ran
    summary = record.summary(world, applied)
    assert summary["productions"] == applied["produce"]
    assert summary["holdings_end"]["Pell"]["coins"] == world.economy.purse(2).coins
    assert set(summary["prices_end"]) >= {"Pell flour", "Sanne bread", "Oda wheat"}
    assert len(record.minute) >= 6  # one sample per 15 game minutes
    assert record.plot(tmp_path) == "economy.png" and (tmp_path / "economy.png").stat().st_size > 1000
