"""The browser client's notice board in real headless Chromium against a
running server: a quest an NPC posted and a notice it pinned show in the
Notice board window (opened by a click on the board's place on the map,
which walks there too, by the B key and by the top bar's button); turning
the quest in without the goods is refused with the server's words, with
the goods it pays the reward shown in the purse panel and the quest leaves
the board; a quest withdrawn after the board was read is refused as closed
and the board is read again. Notices are text, never HTML. Screenshots go
to test-artifacts/."""
from __future__ import annotations

import asyncio

import pytest

from client_demo.tui_board import duration  # the same words as board.js
from protocol.board import BOARD_PLACE, BOARD_RANGE
from server.world.inputs import Give, Join, PinNotice, PostQuest, WithdrawQuest
from tests.clients.browser_support import artifact
from tests.e2e.test_browser import WAIT_MS, click_tile, join_with_keyboard, open_page
from tests.e2e.test_trade_browser import add_npc, apply_in_a_tick, coins_are, free_tile_near, holds

pytestmark = pytest.mark.browser

NOTICE = "Lost: grey cat <b>Moss</b> near the pond"


async def note_says(page, text: str, bad: bool) -> str:
    note = page.locator("#board-note.bad" if bad else "#board-note:not(.bad)", has_text=text)
    await note.wait_for(timeout=WAIT_MS)
    return await note.text_content()


async def test_board_shows_quests_and_notices_and_pays_a_turn_in(chromium, server):
    page, errors = await open_page(chromium, server)
    me = await join_with_keyboard(page, "ann")
    await coins_are(page, 20)
    world = server.game.world
    assert await page.locator("#board-open").is_visible()

    # Pell the miller, out at the fields, asks for wheat and pins a notice of ann's
    pell = world.allocate_entity_id()
    assert await apply_in_a_tick(server, Join(pell, "Pell", *world.map.places["fields"].entry, npc=True)) is None
    assert await apply_in_a_tick(server, PostQuest(pell, "wheat", 2, 5)) is None
    assert await apply_in_a_tick(server, PinNotice(pell, me["id"], "ann", NOTICE)) is None
    (qid,) = world.board.quests

    # a click on the board's place opens the window and walks there
    place = world.map.places[BOARD_PLACE]
    await click_tile(page, place.x, place.y)
    await page.locator("#board").wait_for(state="visible", timeout=WAIT_MS)
    quest = page.locator(f"#board-quests li.quest[data-id='{qid}']")
    await quest.wait_for(timeout=WAIT_MS)
    assert await quest.locator(".what").text_content() == "Pell asks for 2 wheat"
    assert await quest.locator(".reward").text_content() == "5 coins"
    assert await quest.locator(".have.short").text_content() == "you have 0"
    ttl_s = (world.board.quests[qid].expires - world.tick) / server.config.tick_rate
    assert await quest.locator(".left").text_content() in {f"{duration(ttl_s + d)} left" for d in (-60, 0, 60)}
    card = page.locator("#board-notices article.notice")
    assert await card.count() == 1
    assert await card.locator(".text").text_content() == NOTICE  # shown as text
    assert await card.locator("b").count() == 0                  # never as markup
    assert (await card.locator(".by").text_content()).startswith("ann · pinned by Pell")
    ann = world.entities[me["id"]]
    entry = place.entry
    await page.locator("#board-reach", has_text="you are at the board").wait_for(timeout=WAIT_MS)
    assert max(abs(ann.x - entry[0]), abs(ann.y - entry[1])) <= BOARD_RANGE  # in reach, maybe a step short
    for _ in range(WAIT_MS // 20):                   # and the walk there ends
        if not ann.path:
            break
        await asyncio.sleep(0.02)
    assert not ann.path and max(abs(ann.x - entry[0]), abs(ann.y - entry[1])) <= BOARD_RANGE
    assert await page.locator("#board-walk").is_hidden()

    # without the goods: refused with the server's words, nothing changes
    await quest.locator("button.turn-in").click()
    said = await note_says(page, "Could not turn in the quest", bad=True)
    assert said == "Could not turn in the quest: there is not enough of it. You do not have 2 wheat."
    await page.locator("#toast", has_text="You do not have 2 wheat").wait_for(state="visible", timeout=WAIT_MS)
    await page.locator("#chat-log .line.error", has_text="You do not have 2 wheat").wait_for(timeout=WAIT_MS)
    await coins_are(page, 20)
    assert qid in world.board.quests

    # Oda the farmer hands ann 2 wheat: the window shows what she holds against the quest
    oda = await add_npc(server, "Oda", *free_tile_near(server, ann.x, ann.y, 2))
    assert await apply_in_a_tick(server, Give(oda, me["id"], "wheat", 2)) is None
    await holds(page, "wheat", 2)
    await quest.locator(".have:not(.short)", has_text="you have 2").wait_for(timeout=WAIT_MS)

    # turned in: the reward in the purse panel, words in the window, the quest gone from the board
    await quest.locator("button.turn-in").click()
    await coins_are(page, 25)
    await holds(page, "wheat", 0)
    assert await note_says(page, "You brought", bad=False) == "You brought Pell 2 wheat: +5 coins, you have 25 now."
    await page.locator("#board-quests li.empty", has_text="No quests open.").wait_for(timeout=WAIT_MS)
    await page.locator("#chat-log .line.trade", has_text=f"ann brought Pell 2 wheat for 5 coins (quest {qid})").wait_for(
        timeout=WAIT_MS)
    assert world.economy.purse(me["id"]).coins == 25 and qid not in world.board.quests

    # Escape closes; B on the map opens it again, read afresh: a new quest shows
    await page.locator("#board-close").focus()
    await page.keyboard.press("Escape")
    assert await page.locator("#board").is_hidden()
    assert await page.evaluate("document.activeElement.id") == "map"
    assert await apply_in_a_tick(server, PostQuest(pell, "eggs", 1, 3)) is None
    (qid2,) = world.board.quests
    await page.keyboard.press("b")
    second = page.locator(f"#board-quests li.quest[data-id='{qid2}']", has_text="Pell asks for 1 eggs")
    await second.wait_for(timeout=WAIT_MS)
    await page.screenshot(path=str(artifact("browser-board.png")))

    # Pell withdraws it after the page read the board: refused as closed, and the board is read again
    assert await apply_in_a_tick(server, WithdrawQuest(pell, qid2)) is None
    await second.locator("button.turn-in").click()
    said = await note_says(page, "no longer open", bad=True)
    assert said.startswith("Could not turn in the quest: that quest is no longer open. No open quest ")
    await page.locator("#board-quests li.empty", has_text="No quests open.").wait_for(timeout=WAIT_MS)
    await coins_are(page, 25)

    # the top bar's button opens it too, on a phone-sized window, fitting across the map
    await page.locator("#board-close").click()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator("#board-open").click()
    await page.locator("#board-notices article.notice").wait_for(timeout=WAIT_MS)
    box = await page.locator("#board").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(artifact("browser-board-narrow.png")))
    assert errors == []
