"""The browser client's economy in real headless Chromium against a running
server: the purse panel shows the coins a newcomer starts with, a click on
a shopkeeper NPC opens her price list, buying changes the coins and the
goods in the panel and the trade shows in the chat log, a refused purchase
is said in words, an NPC without a shop opens no window, and the teacher's
judgements (Learn inputs) show as a School record in the same panel, again
after a reload; two players trade by an offer that the other accepts in the
page (and decline another), and hand goods over. Screenshots go to
test-artifacts/."""
from __future__ import annotations

import asyncio

import pytest

from protocol.trade import HANDOVER_RANGE
from server.world.inputs import Join, Learn
from tests.clients.browser_support import artifact
from tests.e2e.test_browser import WAIT_MS, click_tile, join_with_keyboard, open_page, seen_at

pytestmark = pytest.mark.browser


async def apply_in_a_tick(server, inp):
    """Apply a world input inside a tick, as the game's own systems do (one
    applied between ticks would miss that tick's replication and purse news)."""
    done: asyncio.Future = asyncio.get_running_loop().create_future()

    def system(now: float) -> None:
        if not done.done():
            done.set_result(server.game.apply(inp))

    entry = ("test_apply", system)
    server.game.systems.insert(0, entry)
    try:
        return await asyncio.wait_for(done, 5)
    finally:
        server.game.systems.remove(entry)


def free_tile_near(server, x: int, y: int, reach: int) -> tuple[int, int]:
    """A walkable tile nobody stands on, within `reach` tiles (Chebyshev) of (x, y), nearest first."""
    world = server.game.world
    taken = {(e.x, e.y) for e in world.entities.values()}
    spots = sorted(((dx, dy) for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)),
                   key=lambda d: (max(abs(d[0]), abs(d[1])), d))
    for dx, dy in spots:
        if (x + dx, y + dy) not in taken and world.map.walkable(x + dx, y + dy):
            return x + dx, y + dy
    raise AssertionError(f"no free tile near {x},{y}")


async def add_npc(server, name: str, x: int, y: int) -> int:
    eid = server.game.world.allocate_entity_id()
    assert await apply_in_a_tick(server, Join(eid, name, x, y, npc=True)) is None
    return eid


async def coins_are(page, n: int) -> None:
    await page.wait_for_function("n => document.getElementById('inv-coins').textContent === String(n)",
                                 arg=n, timeout=WAIT_MS)


async def holds(page, item: str, n: int) -> None:
    """The purse panel shows n of item (0: not listed)."""
    await page.wait_for_function(
        """([item, n]) => {
            const li = document.querySelector(`#inv-items li[data-item="${item}"]`);
            return n === 0 ? li === null : li !== null && li.querySelector('.n').textContent === String(n); }""",
        arg=[item, n], timeout=WAIT_MS)


async def person_button(page, eid: int, label: str):
    return page.locator(f"#people li[data-id='{eid}'] button", has_text=label)


async def test_buy_bread_from_a_shopkeeper(chromium, server):
    page, errors = await open_page(chromium, server)
    me = await join_with_keyboard(page, "ann")
    assert server.game.world.economy.catalog.start_coins == 20
    await coins_are(page, 20)
    assert await page.locator("#inv-items li.empty").text_content() == "no goods"
    assert await page.locator("#school").is_hidden()  # no lessons yet

    spot = free_tile_near(server, me["x"], me["y"], 2)
    await add_npc(server, "Sanne", *spot)
    await seen_at(page, "Sanne", *spot)

    # a click on Sanne asks her prices, and her shop opens
    await click_tile(page, *spot)
    row = page.locator("#shop-rows tr[data-item='bread']")
    await row.wait_for(timeout=WAIT_MS)
    assert await page.locator("#trade-title").text_content() == "Trade with Sanne"
    assert [await row.locator(f"td.{c}").text_content() for c in ("price", "pays", "stock", "have")] == \
        ["4", "—", "8", "0"]
    assert await row.locator("button.sell").is_disabled()  # she does not buy bread
    flour = page.locator("#shop-rows tr[data-item='flour']")
    assert await flour.locator("button.buy").is_disabled() and await flour.locator("button.sell").is_enabled()
    await seen_at(page, "ann", *spot)  # the click walked there too
    await page.locator("#trade-reach", has_text="within reach").wait_for(timeout=WAIT_MS)

    # buy one: coins and bread change in the panel; the trade is in the chat log
    await row.locator("button.buy").click()
    await coins_are(page, 16)
    await holds(page, "bread", 1)
    await page.locator("#chat-log .line.trade", has_text="ann bought 1 bread from Sanne for 4 coins").wait_for(
        timeout=WAIT_MS)
    await page.wait_for_function(
        "document.querySelector(\"#shop-rows tr[data-item='bread'] td.stock\").textContent === '7'", timeout=WAIT_MS)
    assert await row.locator("td.have").text_content() == "1"
    await page.screenshot(path=str(artifact("browser-shop.png")))

    # more than she has: refused, in words, and nothing changes
    await row.locator("input.n").fill("999")
    await row.locator("button.buy").click()
    note = page.locator("#trade-note.bad", has_text="Could not buy")
    await note.wait_for(timeout=WAIT_MS)
    assert "not enough" in await note.text_content() and "only 7 bread" in await note.text_content()
    await page.locator("#toast", has_text="Could not buy").wait_for(state="visible", timeout=WAIT_MS)
    await coins_are(page, 16)
    # a count outside the declared bounds is not even sent
    await row.locator("input.n").fill("0")
    await row.locator("button.buy").click()
    await page.locator("#trade-note.bad", has_text="How many?").wait_for(timeout=WAIT_MS)

    # Escape closes the window; an NPC without a shop opens none
    await page.locator("#trade-close").focus()
    await page.keyboard.press("Escape")
    assert await page.locator("#trade").is_hidden()
    me = await page.evaluate("window.hamlet.me()")
    mira_at = free_tile_near(server, me["x"], me["y"], HANDOVER_RANGE)
    await add_npc(server, "Mira", *mira_at)
    await seen_at(page, "Mira", *mira_at)
    await page.locator("#toast").evaluate("t => { t.hidden = true; }")
    await click_tile(page, *mira_at)
    await seen_at(page, "ann", *mira_at)
    await page.wait_for_timeout(300)
    assert await page.locator("#trade").is_hidden()
    assert await page.locator("#toast").is_hidden()
    # her Trade button opens the window all the same: she keeps no shop, but takes what is handed over
    mira = (await page.evaluate("window.hamlet.entity('Mira')"))["id"]
    await (await person_button(page, mira, "Trade")).click()
    await page.locator("#shop-none", has_text="Mira keeps no shop").wait_for(timeout=WAIT_MS)
    assert await page.locator("#offer-form").is_hidden()  # NPCs trade at shops, not by offers
    await page.select_option("#give-item", "bread")
    await page.click("#give-form button[type=submit]")
    await holds(page, "bread", 0)
    await page.locator("#chat-log .line.trade", has_text="ann gave Mira 1 bread").wait_for(timeout=WAIT_MS)

    # a phone-sized window: the shop's window fits across the map
    sanne = (await page.evaluate("window.hamlet.entity('Sanne')"))["id"]
    await (await person_button(page, sanne, "Trade")).click()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator("#shop-rows tr[data-item='bread']").wait_for(timeout=WAIT_MS)
    await page.wait_for_timeout(300)
    box = await page.locator("#trade").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(artifact("browser-shop-narrow.png")))

    # Elena the teacher judges two answers: the School section shows the record, the chat log the news
    me = await page.evaluate("window.hamlet.me()")
    elena = await add_npc(server, "Elena", *free_tile_near(server, me["x"], me["y"], 3))
    assert await apply_in_a_tick(server, Learn(me["id"], elena, "bread", 0, True)) is None
    topic = page.locator("#school-topics li[data-topic='bread']")
    await topic.wait_for(timeout=WAIT_MS)
    assert await topic.text_content() == "bread: 1 right, 0 wrong"
    assert await page.locator("#school").is_visible()
    await page.locator("#chat-log .line.school", has_text="School: 1 of 1 right so far.").wait_for(timeout=WAIT_MS)
    assert await apply_in_a_tick(server, Learn(me["id"], elena, "bread", 1, False)) is None
    await page.locator("#school-topics li[data-topic='bread']", has_text="bread: 1 right, 1 wrong").wait_for(
        timeout=WAIT_MS)
    await page.locator("#chat-log .line.school", has_text="School: 1 of 2 right so far.").wait_for(timeout=WAIT_MS)
    # a reload resumes the avatar; the record comes again after `welcome`
    await page.reload()
    await page.wait_for_function("window.hamlet && window.hamlet.me() !== null", timeout=WAIT_MS)
    await page.locator("#school-topics li[data-topic='bread']", has_text="bread: 1 right, 1 wrong").wait_for(
        timeout=WAIT_MS)
    assert await page.locator("#school-topics li").count() == 1
    await page.locator("#school").scroll_into_view_if_needed()
    await page.screenshot(path=str(artifact("browser-school-narrow.png")))
    assert errors == []


async def test_two_players_trade_by_an_offer(chromium, server):
    ann, ann_errors = await open_page(chromium, server)
    bob, bob_errors = await open_page(chromium, server)
    me_ann = await join_with_keyboard(ann, "ann")
    me_bob = await join_with_keyboard(bob, "bob")
    await coins_are(ann, 20)
    await coins_are(bob, 20)
    sanne = await add_npc(server, "Sanne", *free_tile_near(server, me_ann["x"], me_ann["y"], 2))

    # bob walks to ann, within hand-over range
    await seen_at(bob, "ann", me_ann["x"], me_ann["y"])
    await (await person_button(bob, me_ann["id"], "Walk to")).click()
    await seen_at(ann, "bob", me_ann["x"], me_ann["y"])

    # ann buys a loaf through the Nearby list's Trade button
    await (await person_button(ann, sanne, "Trade")).click()
    row = ann.locator("#shop-rows tr[data-item='bread']")
    await row.wait_for(timeout=WAIT_MS)
    await row.locator("button.buy").click()
    await holds(ann, "bread", 1)
    await coins_are(ann, 16)

    # ann offers bob the loaf for 3 coins; bob accepts in his page
    await (await person_button(ann, me_bob["id"], "Trade")).click()
    await ann.locator("#trade-title", has_text="Trade with bob").wait_for(timeout=WAIT_MS)
    assert await ann.locator("#shop").is_hidden()
    await ann.fill("#offer-give", "1 bread")
    await ann.fill("#offer-want", "3 coins")
    await ann.click("#offer-form button[type=submit]")
    mine = ann.locator("#offers li.mine[data-state='open']", has_text="You offer bob 1 bread for 3 coins")
    await mine.wait_for(timeout=WAIT_MS)
    assert await mine.locator("button", has_text="Withdraw").is_visible()
    assert "s left" in await mine.locator(".lapse").text_content()
    assert await ann.input_value("#offer-give") == ""
    theirs = bob.locator("#offers li.theirs[data-state='open']", has_text="ann offers you 1 bread for 3 coins")
    await theirs.wait_for(timeout=WAIT_MS)
    await bob.locator("#chat-log .line.trade", has_text="ann offers you 1 bread for 3 coins").wait_for(timeout=WAIT_MS)
    await theirs.locator("button", has_text="Accept").click()

    await coins_are(bob, 17)
    await holds(bob, "bread", 1)
    await coins_are(ann, 19)
    await holds(ann, "bread", 0)
    await ann.locator("#offers li.mine[data-state='accepted']").wait_for(timeout=WAIT_MS)
    await ann.locator("#chat-log .line.trade", has_text="bob accepted your offer.").wait_for(timeout=WAIT_MS)
    for page in (ann, bob):
        await page.locator("#chat-log .line.trade", has_text="ann and bob traded: 1 bread for 3 coins").wait_for(
            timeout=WAIT_MS)
    await bob.locator("#offers li.theirs[data-state='accepted'] .state", has_text="accepted").wait_for(timeout=WAIT_MS)
    await bob.screenshot(path=str(artifact("browser-offer.png")))

    # another offer, declined: nothing changes hands
    await ann.fill("#offer-give", "2 coins")
    await ann.fill("#offer-want", "1 bread")
    await ann.click("#offer-form button[type=submit]")
    theirs = bob.locator("#offers li.theirs[data-state='open']", has_text="ann offers you 2 coins for 1 bread")
    await theirs.wait_for(timeout=WAIT_MS)
    await theirs.locator("button", has_text="Decline").click()
    await ann.locator("#chat-log .line.trade", has_text="bob declined your offer.").wait_for(timeout=WAIT_MS)
    await ann.locator("#offers li.mine[data-state='declined']").wait_for(timeout=WAIT_MS)
    assert await ann.locator("#inv-coins").text_content() == "19"

    # an offer the page cannot read is not sent, and says why
    await ann.fill("#offer-give", "bread 2")
    await ann.click("#offer-form button[type=submit]")
    await ann.locator("#trade-note.bad", has_text="not clear").wait_for(timeout=WAIT_MS)

    # bob hands ann coins through his trade window
    await (await person_button(bob, me_ann["id"], "Trade")).click()
    await bob.select_option("#give-item", "coins")
    await bob.fill("#give-n", "2")
    await bob.click("#give-form button[type=submit]")
    await coins_are(ann, 21)
    await coins_are(bob, 15)
    await ann.locator("#chat-log .line.trade", has_text="bob gave ann 2 coins").wait_for(timeout=WAIT_MS)
    assert ann_errors == [] and bob_errors == []
