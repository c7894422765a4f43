"""The browser client in real headless Chromium against a running server:
two people join from two pages, one walks (keyboard and click) and the
other sees it, both speak and see the bubble and the chat line, refused
actions are shown in words, the "thinking" mark appears, a killed
connection shows "reconnecting" and comes back as the same avatar, and the
page fits 1280x720 and a phone-sized window. Screenshots go to
test-artifacts/ (and, with HAMLET_UPDATE_SCREENSHOTS=1, to the README's
client_demo/web/screenshot.png)."""
from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from server.world.inputs import SetFlags
from tests.clients.browser_support import REPO, artifact

pytestmark = pytest.mark.browser

WAIT_MS = 10_000


async def open_page(chromium, server, width=1280, height=720):
    context = await chromium.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"http://127.0.0.1:{server.port}/")
    return page, errors


async def join_with_keyboard(page, name: str) -> dict:
    """Type the name into the (focused) join box and press Enter."""
    await page.wait_for_selector("#join-name:focus")
    await page.keyboard.type(name)
    await page.keyboard.press("Enter")
    await page.wait_for_function("window.hamlet.me() !== null", timeout=WAIT_MS)
    return await page.evaluate("window.hamlet.me()")


async def seen_at(page, name: str, x: int, y: int) -> None:
    await page.wait_for_function(
        "([n, x, y]) => { const e = window.hamlet.entity(n); return e !== null && e.x === x && e.y === y; }",
        arg=[name, x, y], timeout=WAIT_MS)


async def click_tile(page, x: int, y: int) -> None:
    # the camera follows the avatar's drawn (eased) position: wait until it
    # rests on the avatar's tile, or the click lands up to a tile off
    await page.wait_for_function(
        "() => { const h = window.hamlet, me = h.me(), c = h.renderer.camera;"
        " return me === null || (c.x === me.x && c.y === me.y); }", timeout=WAIT_MS)
    box = await page.locator("#map").bounding_box()
    spot = await page.evaluate("([x, y]) => window.hamlet.renderer.screenOf(x, y)", [x, y])
    await page.mouse.click(box["x"] + spot["x"], box["y"] + spot["y"])


async def set_flags_in_a_tick(server, entity: int, flags: int) -> None:
    """Set an entity's flags the way an NPC's mind does: as an input applied
    inside a tick, before replication (an input applied between ticks would
    not be seen by the replication of the tick it is stamped with)."""
    done = asyncio.Event()

    def system(now: float) -> None:
        if not done.is_set():
            server.game.apply(SetFlags(entity, flags))
            done.set()

    entry = ("test_set_flags", system)
    server.game.systems.insert(0, entry)
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        server.game.systems.remove(entry)


async def test_two_people_walk_talk_see_errors_and_reconnect(chromium, server):
    ann, ann_errors = await open_page(chromium, server)
    bob, bob_errors = await open_page(chromium, server)
    me_ann = await join_with_keyboard(ann, "ann")
    me_bob = await join_with_keyboard(bob, "bob")
    assert await ann.locator("#status").get_attribute("data-state") == "connected"
    assert await ann.locator("#join").is_hidden()
    await seen_at(bob, "ann", me_ann["x"], me_ann["y"])
    await seen_at(ann, "bob", me_bob["x"], me_bob["y"])

    # Both spawn at random near the middle of the square (within 4 tiles
    # across and 3 down of it), and speech carries 10 tiles: ann walks
    # *towards* bob, so that they still hear each other afterwards.
    toward_y = 1 if me_bob["y"] > me_ann["y"] else -1
    toward_x = 1 if me_bob["x"] >= me_ann["x"] else -1
    # ann walks one step with the arrow key (the map has the focus after joining) ...
    assert await ann.evaluate("document.activeElement.id") == "map"
    await ann.keyboard.press("ArrowDown" if toward_y > 0 else "ArrowUp")
    x, y = me_ann["x"], me_ann["y"] + toward_y
    await seen_at(bob, "ann", x, y)
    # ... and three tiles along with a click; bob's page sees her arrive there,
    # drawn in between tiles on the way (interpolation)
    await bob.evaluate("""id => {
        window.samples = [];
        const sample = (now) => {
            const e = window.hamlet.world.entities.get(id);
            if (e && window.samples.length < 600) window.samples.push(window.hamlet.world.position(e, now).x);
            requestAnimationFrame(sample);
        };
        requestAnimationFrame(sample); }""", me_ann["id"])
    goal = x + 3 * toward_x
    await click_tile(ann, goal, y)
    await seen_at(bob, "ann", goal, y)
    await seen_at(ann, "ann", goal, y)
    await bob.wait_for_timeout(500)
    samples = await bob.evaluate("window.samples")
    assert any(min(x, goal) < v < max(x, goal) and v != int(v) for v in samples), \
        "no position between tiles was drawn"
    assert samples[-1] == goal
    x = goal
    assert (x - me_bob["x"]) ** 2 + (y - me_bob["y"]) ** 2 <= server.game.world.rules.hearing_radius ** 2

    # bob speaks: ann's page shows the bubble over bob and the line in the chat log
    await bob.fill("#chat-text", "Good morning, ann!")
    await bob.press("#chat-text", "Enter")
    line = ann.locator("#chat-log .line.say", has_text="Good morning, ann!")
    await line.wait_for(timeout=WAIT_MS)
    assert await line.locator(".who").text_content() == "bob"
    await ann.wait_for_function(
        "id => window.hamlet.bubbles().some(b => b.id === id && b.text === 'Good morning, ann!')",
        arg=me_bob["id"], timeout=WAIT_MS)
    assert await bob.input_value("#chat-text") == ""  # the box is cleared once sent

    # ann answers bob by name, keyboard only: Enter moves to the chat box
    await ann.locator(f"#people li[data-id='{me_bob['id']}'] button", has_text="Talk").click()
    assert await ann.input_value("#chat-to") == str(me_bob["id"])
    await ann.keyboard.type("Hello bob, nice to meet you.")
    await ann.keyboard.press("Enter")
    line = bob.locator("#chat-log .line.say", has_text="Hello bob, nice to meet you.")
    await line.wait_for(timeout=WAIT_MS)
    assert "→ bob" in await line.text_content()
    await bob.wait_for_function(
        "id => window.hamlet.bubbles().some(b => b.id === id && b.text.startsWith('Hello bob'))",
        arg=me_ann["id"], timeout=WAIT_MS)

    # a message over the server's 280 characters is refused, and the page says so
    await ann.fill("#chat-text", "a" * 300)
    await ann.press("#chat-text", "Enter")
    toast = ann.locator("#toast")
    await toast.wait_for(state="visible", timeout=WAIT_MS)
    text = await toast.text_content()
    assert "not sent" in text and "too long" in text and "280" in text
    assert await ann.locator("#chat-log .line.error", has_text="too long").count() == 1
    assert await bob.locator("#chat-log .line", has_text="aaaaaaaaaa").count() == 0

    # a walk into a wall is refused in words too
    wall = await ann.evaluate("""() => {
        const w = window.hamlet.world, me = w.me;
        for (let r = 1; r < 12; r++) for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++)
            if (w.terrain(me.x + dx, me.y + dy) === 3) return [me.x + dx, me.y + dy];
        return null; }""")
    assert wall is not None
    await click_tile(ann, *wall)
    await ann.locator("#chat-log .line.error", has_text="You can't go there").wait_for(timeout=WAIT_MS)

    # the "thinking" flag (bit 1), as an NPC's mind sets it, shows in the Nearby list
    await set_flags_in_a_tick(server, me_bob["id"], 1)
    await ann.locator(f"#people li[data-id='{me_bob['id']}'] .thinking").wait_for(timeout=WAIT_MS)
    assert (await ann.evaluate("window.hamlet.entity('bob')"))["flags"] == 1
    await set_flags_in_a_tick(server, me_bob["id"], 0)
    await ann.locator(f"#people li[data-id='{me_bob['id']}'] .thinking").wait_for(state="detached",
                                                                               timeout=WAIT_MS)

    # kill ann's connection on the server side: "reconnecting", then the same avatar again
    conn = next(c for c in server.connections if c.entity == me_ann["id"])
    conn.ws.transport.abort()
    await ann.wait_for_function("window.hamlet.statusLog.includes('reconnecting')", timeout=WAIT_MS)
    await ann.wait_for_function("window.hamlet.conn.status === 'connected' && window.hamlet.me() !== null",
                                timeout=WAIT_MS)
    again = await ann.evaluate("window.hamlet.me()")
    assert again["id"] == me_ann["id"] and (again["x"], again["y"]) == (x, y)
    assert await ann.evaluate("window.hamlet.statusLog.slice(-2)") == ["reconnecting", "connected"]
    await ann.locator("#chat-log .line.system", has_text="Welcome back, ann.").wait_for(timeout=WAIT_MS)
    await ann.fill("#chat-text", "still here")
    await ann.press("#chat-text", "Enter")
    await bob.locator("#chat-log .line.say", has_text="still here").wait_for(timeout=WAIT_MS)

    # layout at 1280x720: the map on the left, panels on the right, nothing overflows
    await bob.fill("#chat-text", "Shall we walk to the market?")
    await bob.press("#chat-text", "Enter")
    await ann.locator("#chat-log .line.say", has_text="the market").wait_for(timeout=WAIT_MS)
    map_box = await ann.locator("#map").bounding_box()
    side_box = await ann.locator(".side").bounding_box()
    assert map_box["x"] + map_box["width"] <= side_box["x"] + 1 and map_box["width"] > 800
    assert await ann.evaluate("document.documentElement.scrollWidth") <= 1280
    await ann.screenshot(path=str(artifact("browser-1280x720.png")))

    # a narrow window: the panels go below the map, still usable
    await ann.set_viewport_size({"width": 390, "height": 844})
    await ann.wait_for_timeout(300)
    map_box = await ann.locator("#map").bounding_box()
    side_box = await ann.locator(".side").bounding_box()
    assert side_box["y"] >= map_box["y"] + map_box["height"] - 1
    assert await ann.evaluate("document.documentElement.scrollWidth") <= 390
    await ann.locator("#chat-text").scroll_into_view_if_needed()
    assert await ann.locator("#chat-text").is_visible()
    await ann.screenshot(path=str(artifact("browser-narrow.png")), full_page=True)

    if os.environ.get("HAMLET_UPDATE_SCREENSHOTS") == "1":
        await ann.set_viewport_size({"width": 960, "height": 560})
        await ann.evaluate("""() => { document.getElementById('toast').hidden = true;
            const log = document.getElementById('chat-log'); log.scrollTop = log.scrollHeight; }""")
        await ann.wait_for_timeout(300)
        await ann.screenshot(path=str(artifact("browser-readme.png")))
        shutil.copy(artifact("browser-readme.png"), REPO / "client_demo" / "web" / "screenshot.png")

    assert ann_errors == [] and bob_errors == []


async def test_a_taken_name_is_refused_in_words(chromium, server):
    first, _ = await open_page(chromium, server)
    await join_with_keyboard(first, "carol")
    second, errors = await open_page(chromium, server)
    await second.fill("#join-name", "Carol")
    await second.click("#join-form button[type=submit]")
    error = second.locator("#join-error")
    await second.wait_for_function("document.getElementById('join-error').textContent !== ''", timeout=WAIT_MS)
    assert "taken" in await error.text_content()
    assert await second.locator("#join").is_visible()
    # another name works on the same page
    await second.fill("#join-name", "dave")
    await second.press("#join-name", "Enter")
    await second.wait_for_function("window.hamlet.me() !== null", timeout=WAIT_MS)
    assert errors == []
