"""The terminal client's trade commands: parsing and usage lines, the words
for purses, price lists and offers, and the whole of it driven headless
against a real server with a shopkeeper next to the player: /inv, /shop,
/buy and /sell (named shop or the nearest that trades it), /give, /offer,
/accept, /decline, the status line's coins, and every refusal as a line."""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("textual", reason="textual is not installed")

from client_demo.client import HamletClient  # noqa: E402
from client_demo.tui_app import HamletApp  # noqa: E402
from client_demo.tui_map import Command, parse_command  # noqa: E402
from client_demo.tui_trade import TradeCommand, inv_text, offer_text, offers_text, shop_text  # noqa: E402
from server.world.inputs import Join  # noqa: E402
from tests.waiting import until  # noqa: E402

SIZE = (120, 36)
NAMES = ["bob", "Ann Lee", "Sanne"]


@pytest.mark.parametrize("line, expected", [
    ("/buy bread", TradeCommand("buy", item="bread")),
    ("/buy 2 Bread from Sanne", TradeCommand("buy", who="Sanne", item="bread", n=2)),
    ("/buy bread 3 max 5", TradeCommand("buy", item="bread", n=3, limit=5)),
    ("/sell eggs 2 to Old Oda min 1", TradeCommand("sell", who="Old Oda", item="eggs", n=2, limit=1)),
    ("/give bob coins 5", TradeCommand("give", who="bob", item="coins", n=5)),
    ("/give Ann Lee 2 bread", TradeCommand("give", who="Ann Lee", item="bread", n=2)),
    ("/give bob flour", TradeCommand("give", who="bob", item="flour", n=1)),
    ("/offer bob give bread 2, eggs 1 coins 3 want flour 2",
     TradeCommand("offer", who="bob", give=(("bread", 2), ("eggs", 1)), coins=3, want=(("flour", 2),))),
    ("/offer Ann Lee give 2 bread for 5 coins", TradeCommand("offer", who="Ann Lee", give=(("bread", 2),), want_coins=5)),
    ("/accept", TradeCommand("accept")),
    ("/accept #4", TradeCommand("accept", offer=4)),
    ("/decline 7", TradeCommand("decline", offer=7)),
    ("/inv", TradeCommand("inv")),
    ("/shop", TradeCommand("shop")),
    ("/shop Sanne", TradeCommand("shop", who="Sanne")),
    ("/help trade", Command("help", text="trade")),
])
def test_trade_commands_parse(line, expected):
    assert parse_command(line, NAMES) == expected


@pytest.mark.parametrize("line, usage", [
    ("/buy", "Usage: /buy ITEM"), ("/buy bread from", "Usage: /buy ITEM"), ("/buy bread 0", "from 1 to 999"),
    ("/buy 5000 bread", "from 1 to 999"), ("/buy coins", "Usage: /buy"), ("/buy bread max lots", "max PRICE"),
    ("/sell", "Usage: /sell ITEM"), ("/give bob", "Usage: /give NAME ITEM"), ("/give bob coins 5000", "999 coins"),
    ("/offer bob", "Usage: /offer NAME"), ("/offer bob give", "must give or want something"),
    ("/offer bob give bread 1 bread 2", "named twice"), ("/offer bob give a b c d e", "At most 4"),
    ("/offer bob give Bread! 2", "not an item name"), ("/accept x", "Usage: /accept [ID]"),
    ("/decline 1 2", "Usage: /decline [ID]"), ("/inv all", "Usage: /inv"),
])
def test_bad_trade_syntax_gets_a_usage_line(line, usage):
    cmd = parse_command(line, NAMES)
    assert cmd.name == "error" and usage in cmd.text, cmd


def test_trade_words():
    assert inv_text(20, {}) == "You have 20 coins."
    assert inv_text(7, {"eggs": 1, "bread": 2}) == "You have 7 coins, and 2 bread and 1 eggs."
    shop = {"name": "Sanne", "goods": {"bread": {"price": 5, "offer": 0, "stock": 6},
                                       "flour": {"price": 0, "offer": 2, "stock": 6}}}
    text = shop_text(shop)
    assert "Sanne's shop" in text and "5 coins" in text and "does not buy" in text and "pays 2" in text
    offer = {"id": 3, "state": "open", "from": 1, "from_name": "bob", "to": 2, "to_name": "ann",
             "give": [["bread", 2]], "coins": 0, "want": [], "want_coins": 5, "expires": 900}
    assert offer_text(offer, 2) == "bob offers you 2 bread for 5 coins: /accept 3 or /decline 3."
    assert offer_text(offer, 1).startswith("You offered ann 2 bread for 5 coins (offer #3")
    assert offer_text({**offer, "state": "accepted"}, 1) == "ann accepted your offer #3."
    assert offer_text({**offer, "state": "withdrawn"}, 2) == "bob withdrew offer #3."
    assert offer_text({**offer, "state": "expired"}, 2) == "Offer #3 from bob expired."
    assert offers_text({3: offer}, 2) == "Open offers: #3 from bob: 2 bread for 5 coins"
    assert offer_text({**offer, "want_coins": 0}, 2).startswith("bob offers you a gift of 2 bread:")
    assert offers_text({3: {**offer, "give": []}}, 1) == "Open offers: #3 to ann: a request for 5 coins"
    assert offers_text({}, 1) == "No open offers."


# -- against a real server -------------------------------------------------------
def heard(app, fragment: str) -> bool:
    return any(fragment in line for line in app.transcript)


async def command(pilot, app, line: str, expect: str, what: str | None = None) -> None:
    """Type a line (set at once: key by key is slow) and wait for `expect`
    in a chat line written after it."""
    before = len(app.transcript)  # well under the transcript's bound in this test
    app.query_one("#input").value = line
    await pilot.press("enter")
    try:
        await until(lambda: any(expect in t for t in list(app.transcript)[before:]),
                    what=what or f"{expect!r} after {line!r}")
    except AssertionError as exc:  # say what was shown instead
        raise AssertionError(f"{exc}; the terminal showed: {list(app.transcript)[before:]!r}, "
                             f"input {app.query_one('#input').value!r}") from None


def free_tile(world, x: int, y: int, near: int, far: int) -> tuple[int, int]:
    """A walkable, unoccupied tile at Chebyshev distance near..far from (x, y)."""
    taken = {(e.x, e.y) for e in world.entities.values()}
    for r in range(near, far + 1):
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                t = (x + dx, y + dy)
                if max(abs(dx), abs(dy)) == r and world.map.walkable(*t) and t not in taken:
                    return t
    raise AssertionError("no free tile")


async def test_terminal_client_buys_sells_gives_and_trades(server):
    app = HamletApp(server.url, "ann")
    async with app.run_test(size=SIZE) as pilot:
        s = app.session
        await until(lambda: s.status == "connected" and s.client.me is not None and s.client.coins == 20,
                    what="connected with a purse")
        c, world, ann = s.client, server.game.world, s.entity
        me = world.entities[ann]
        sanne, oda = world.allocate_entity_id(), world.allocate_entity_id()
        assert server.game.apply(Join(sanne, "Sanne", *free_tile(world, me.x, me.y, 1, 2), npc=True)) is None
        assert server.game.apply(Join(oda, "Oda", *free_tile(world, me.x, me.y, 6, 8), npc=True)) is None
        await until(lambda: sanne in c.entities and oda in c.entities, what="the shopkeepers in view")
        assert "20 coins" in app.query_one("#status").render().plain

        await command(pilot, app, "/help trade", "/buy ITEM [N] [from NAME] [max PRICE]")
        await command(pilot, app, "/inv", "You have 20 coins.")
        await command(pilot, app, "/shop Sanne", "Sanne's shop")
        assert heard(app, "8 in stock") and heard(app, "does not buy")
        await command(pilot, app, "/shop", "Sanne's shop", what="the nearest shop")  # no name: the nearest

        # buy from the nearest shop that sells bread: Sanne
        await command(pilot, app, "/buy bread 2", "ann bought 2 bread from Sanne for ")
        cost = 20 - c.coins
        assert c.items == {"bread": 2} and cost > 0 and heard(app, f"for {cost} coins")
        assert world.economy.purse(ann).goods == {"bread": 2} and world.economy.purse(ann).coins == c.coins
        await until(lambda: f"{c.coins} coins" in app.query_one("#status").render().plain, what="status coins")
        await command(pilot, app, "/inv", f"You have {c.coins} coins, and 2 bread.")

        # refusals: each a line in words, nothing changed
        await command(pilot, app, "/buy bread 1 max 1", "Nothing was bought: the price has moved past your limit")
        await command(pilot, app, "/buy eggs", "Nothing was bought: that is out of reach. Oda is too far away")
        await command(pilot, app, "/sell bread", "Nobody in sight buys bread: name the shop")
        await command(pilot, app, "/sell bread to Sanne", "Nothing was sold: no shop trades that there. Sanne does not buy bread")
        await command(pilot, app, "/sell eggs 2 to Sanne", "Nothing was sold: there is not enough of it")
        await command(pilot, app, "/buy unobtainium", "Nobody in sight sells unobtainium")
        await command(pilot, app, "/buy gold from Sanne", "Nothing was bought: there is no such thing here")
        await command(pilot, app, "/buy bread from Nemo", "Nobody called Nemo is in sight")
        await command(pilot, app, "/buy", "Usage: /buy ITEM [N] [from NAME] [max PRICE]")
        await command(pilot, app, "/offer Sanne give coins 1", "No offer was made: it was not accepted. Sanne trades at a shop")
        assert c.items == {"bread": 2} and world.economy.purse(ann).goods == {"bread": 2}
        assert not any("Traceback" in line for line in app.transcript)

        # bob comes over; gifts
        bob = await HamletClient.connect(server.url)
        await bob.join("bob")
        await bob.move(to=free_tile(world, me.x, me.y, 1, 2))
        await until(lambda: bob.entity in world.entities and not world.entities[bob.entity].path
                    and bob.entity in c.entities and bob.coins == 20, what="bob next to ann")
        await command(pilot, app, "/give bob bread 1", "ann gave bob 1 bread")
        await command(pilot, app, "/give bob coins 3", "ann gave bob 3 coins")
        await until(lambda: bob.items == {"bread": 1} and bob.coins == 23, what="bob's purse")
        coins = c.coins
        assert c.items == {"bread": 1} and coins == 20 - cost - 3
        await command(pilot, app, "/give bob bread 5", "Nothing was given: there is not enough of it")

        # ann offers; bob accepts
        await command(pilot, app, "/offer bob give bread 1 want coins 4", "You offered bob 1 bread for 4 coins (offer #")
        await until(lambda: bob.offers, what="bob hears of the offer")
        (oid,) = bob.offers
        await bob.accept(oid)
        await until(lambda: heard(app, f"bob accepted your offer #{oid}."), what="accepted")
        await until(lambda: heard(app, "ann and bob traded: 1 bread for 4 coins"), what="trade event")
        await until(lambda: c.coins == coins + 4 and c.items == {}, what="ann's purse after the trade")

        # bob offers; ann accepts the newest offer with a bare /accept
        oid = await bob.offer(ann, give={"bread": 2}, want_coins=2)
        await until(lambda: heard(app, f"bob offers you 2 bread for 2 coins: /accept {oid} or /decline {oid}."),
                    what="bob's offer shown")
        await command(pilot, app, "/accept", f"You accepted bob's offer #{oid}.")
        await until(lambda: c.items == {"bread": 2} and c.coins == coins + 2, what="ann's purse after accepting")
        await until(lambda: f"{c.coins} coins" in app.query_one("#status").render().plain, what="status coins")

        # and one ann declines; then there is nothing left to answer
        oid = await bob.offer(ann, want={"bread": 1})
        await until(lambda: oid in c.offers, what="the offer in the mirror")
        await command(pilot, app, "/offers", f"Open offers: #{oid} from bob: a request for 1 bread")
        await command(pilot, app, "/decline", f"You declined bob's offer #{oid}.")
        await until(lambda: not bob.offers, what="bob told of the decline")
        await command(pilot, app, "/accept", "No open offer to you.")
        await command(pilot, app, f"/accept {oid}", "The trade did not happen: that offer is no longer open")
        assert c.items == {"bread": 2} and world.economy.purse(ann).goods == {"bread": 2}
        assert not any("Traceback" in line for line in app.transcript)
        await bob.close()
        await asyncio.sleep(0)
