"""The terminal client driven headless with textual's pilot against a real
server: join, walk (commands and arrow keys), speak, hear another client,
address someone by name, see refusals in words, reconnect after a dropped
connection, quit. A screenshot (SVG) goes to test-artifacts/."""
from __future__ import annotations

import asyncio
import os
import shutil

import pytest

pytest.importorskip("textual", reason="textual is not installed")

from client_demo.client import HamletClient  # noqa: E402
from client_demo.tui_app import HamletApp  # noqa: E402
from client_demo.tui_map import render_map  # noqa: E402
from tests import waiting  # noqa: E402
from tests.clients.browser_support import REPO, artifact  # noqa: E402

SIZE = (120, 36)


async def until(pilot, predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached in time")
        await pilot.pause(0.03)


async def type_line(pilot, text: str) -> None:
    await pilot.click("#input")
    for ch in text:
        await pilot.press("space" if ch == " " else ch)
    await pilot.press("enter")


def heard(app, fragment: str) -> bool:
    return any(fragment in line for line in app.transcript)


async def test_terminal_client_joins_walks_speaks_hears_and_reconnects(server):
    bob = await HamletClient.connect(server.url)
    await bob.join("bob")
    app = HamletApp(server.url, "ann")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.status == "connected", what="connected")
        s = app.session
        ann_id = s.entity
        await until(pilot, lambda: s.client.me is not None and bob.entity in s.client.entities, what="bob in view")
        world = server.game.world
        x0, y0 = world.entities[ann_id].x, world.entities[ann_id].y
        # both spawn at random near the square's middle and speech carries 10
        # tiles: ann steps towards bob, so that they still hear each other
        bx, by = world.entities[bob.entity].x, world.entities[bob.entity].y
        dy = 1 if by > y0 else -1
        dx = 1 if bx >= x0 else -1

        # walk with a command, then with the arrow keys on the map
        await type_line(pilot, "/go s" if dy > 0 else "/go n")
        await until(pilot, lambda: (world.entities[ann_id].x, world.entities[ann_id].y) == (x0, y0 + dy), what="/go")
        await pilot.press("escape")
        assert app.focused.id == "map"
        await pilot.press("right" if dx > 0 else "left")
        await until(pilot, lambda: (world.entities[ann_id].x, world.entities[ann_id].y) == (x0 + dx, y0 + dy),
                    what="arrow key step")
        await until(pilot, lambda: bob.entities[ann_id].x == x0 + dx, what="bob sees ann move")
        await pilot.press("enter")
        assert app.focused.id == "input"

        # speak; bob hears it
        # bob's client keeps what it receives until read, so its wait starts
        # once the line is typed: typing key by key through the pilot takes
        # ~0.4 s a key here (7 s for the addressed line below, more on a
        # loaded machine), which must not eat into the wait for delivery
        await type_line(pilot, "hello bob")
        event = (await bob.wait_for(lambda m: m.type == "event" and m.data.get("text") == "hello bob")).data
        assert event["text"] == "hello bob" and event["from"] == ann_id

        # bob speaks; the terminal shows it in the chat log
        await bob.say("hi ann, welcome")
        await until(pilot, lambda: heard(app, "bob: hi ann, welcome"), what="bob's line")

        # address bob by name
        await type_line(pilot, "/to bob over here")
        event = (await bob.wait_for(lambda m: m.type == "event" and m.data.get("text") == "over here")).data
        assert event["text"] == "over here" and event["to"] == bob.entity
        await until(pilot, lambda: heard(app, "ann → bob: over here"), what="own addressed line")

        # /who lists bob; the map shows us and him
        await type_line(pilot, "/who")
        await until(pilot, lambda: heard(app, "Nearby: bob "), what="/who")
        await pilot.pause(0.2)
        drawn = render_map(s.client.map, s.client.entities, ann_id, 90, 45).plain
        assert "@" in drawn and "b" in drawn
        assert "@" in app.query_one("#map").render().plain

        # refusals are shown in words: an unknown place, a blocked tile, a long line
        await type_line(pilot, "/go atlantis")
        await until(pilot, lambda: heard(app, "You can't go there"), what="bad place error")
        app.session.client.drain()
        app.query_one("#input").value = "/say " + "x" * 300  # typed key by key this takes seconds
        await pilot.press("enter")
        await until(pilot, lambda: heard(app, "Your message was not sent: it is too long"), what="too long error")

        # a dropped connection: "reconnecting", then the same avatar again
        conn = next(c for c in server.connections if c.entity == ann_id)
        conn.ws.transport.abort()
        await until(pilot, lambda: "reconnecting" in s.history, what="reconnecting")
        await until(pilot, lambda: s.status == "connected" and s.client is not None and s.client.me is not None,
                    what="reconnected")
        assert s.entity == ann_id and s.history[-2:] == ["reconnecting", "connected"]
        await until(pilot, lambda: heard(app, "Welcome back, ann."), what="welcome back")
        await bob.say("you are back")
        await until(pilot, lambda: heard(app, "bob: you are back"), what="speech after reconnecting")

        await pilot.pause(0.3)
        app.save_screenshot(filename="tui.svg", path=str(artifact("x").parent))
        if os.environ.get("HAMLET_UPDATE_SCREENSHOTS") == "1":
            shutil.copy(artifact("tui.svg"), REPO / "client_demo" / "tui-screenshot.svg")

        await type_line(pilot, "/quit")
        await until(pilot, lambda: s.status == "closed", what="closed")
    assert app.return_code == 0
    await until_gone(server, ann_id)
    await bob.close()


async def until_gone(server, entity: int) -> None:
    await waiting.until(lambda: entity not in server.game.world.entities,
                        what="the avatar leaving after /quit (bye)")
