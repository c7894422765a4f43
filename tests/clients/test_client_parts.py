"""Small parts of the demo clients without a browser or a terminal: the
terminal client's command parsing and error wording, its `hamlet client`
sub-command, and the browser client's files as the server serves them."""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from client_demo.client import EntityView
from client_demo.tui import register
from client_demo.tui_session import describe_error
from protocol.declaration import declaration

WEB = Path(__file__).resolve().parents[2] / "client_demo" / "web"
tui_map = pytest.importorskip("client_demo.tui_map", reason="rich is not installed")


def test_commands_parse():
    p = tui_map.parse_command
    names = ["Mira", "old Tom"]
    assert p("hello there", names) == tui_map.Command("say", text="hello there")
    assert p("/say  hi ", names) == tui_map.Command("say", text="hi")
    assert p("/to old tom how are you?", names) == tui_map.Command("to", target="old Tom", text="how are you?")
    assert p("/to mira hi", names) == tui_map.Command("to", target="Mira", text="hi")
    assert p("/to stranger hi", names) == tui_map.Command("to", target="stranger", text="hi")
    assert p("/to mira", names).name == "error"
    assert p("/go market", names) == tui_map.Command("go", target="market")
    assert p("/go", names).name == "error"
    assert [p(f"/{c}", names).name for c in ("who", "places", "stop", "help", "quit", "exit")] == \
        ["who", "places", "stop", "help", "quit", "quit"]
    assert p("/dance", names).name == "error" and "/dance" in p("/dance", names).text
    assert p("   ", names).name == "none"


def test_go_targets_resolve():
    ents = {1: EntityView(1, "player", "ann", 5, 5), 2: EntityView(2, "npc", "Mira", 9, 7)}
    r = tui_map.resolve_go
    assert r("N", [], ents) == {"dir": "n"}
    assert r("12 34", [], ents) == {"to": (12, 34)}
    assert r("12,34", [], ents) == {"to": (12, 34)}
    assert r("Market", ["market", "house 1"], ents) == {"place": "market"}
    assert r("house 1", ["market", "house 1"], ents) == {"place": "house 1"}
    assert r("mira", [], ents) == {"to": (9, 7)}
    assert r("atlantis", ["market"], ents) is None


def test_errors_are_worded_for_people():
    assert describe_error("too_long", "text is longer than 280 characters", "say") == \
        "Your message was not sent: it is too long. Text is longer than 280 characters."
    assert describe_error("bad_move", "(3, 4) is blocked", "move").startswith("You can't go there:")
    assert describe_error("rate_limited", "", None) == "Slow down, you are sending too fast."
    assert describe_error("weird_new_code", "details", None) == "The server refused it. Details."


def test_map_shows_us_others_thinking_and_place_names():
    tiles = bytes([0] * 100)
    game_map = {"w": 10, "h": 10, "tiles": tiles, "places": [["well", "well", 2, 2, 4, 4, 3, 3]]}
    ents = {1: EntityView(1, "player", "ann", 5, 5), 2: EntityView(2, "npc", "Mira", 6, 5, flags=1)}
    plain = tui_map.render_map(game_map, ents, 1, 20, 10).plain
    assert "@ M…" in plain and "well" in plain
    lines = tui_map.nearby_lines(ents, 1)
    assert lines == ["Mira (NPC)  1 tile E  thinking…"]


def test_client_subcommand_is_registered_without_importing_textual():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["client", "--name", "ann"])
    assert args.url == "ws://127.0.0.1:8765" and args.name == "ann" and args.token is None
    assert callable(args.func)
    out = subprocess.run([sys.executable, "-c", "import sys, client_demo.tui; print('textual' in sys.modules)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_client_refuses_to_run_without_a_terminal():
    out = subprocess.run([sys.executable, "-m", "server.cli", "client", "--name", "ann"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and "terminal" in out.stderr


def get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.headers["Content-Type"], resp.read()


async def test_the_server_serves_every_module_the_page_imports(server):
    import asyncio
    base = f"http://127.0.0.1:{server.port}/"
    ctype, body = await asyncio.to_thread(get, base)
    assert ctype.startswith("text/html") and b'src="app.js"' in body
    # every module imported by the page (transitively) is served as JavaScript
    todo, seen = ["app.js"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        ctype, body = await asyncio.to_thread(get, base + name)
        assert ctype.startswith("text/javascript"), name
        todo += re.findall(r'from "\./([\w.]+)"', body.decode())
    assert seen == {"app.js", "chat.js", "conn.js", "net.js", "people.js", "render.js", "spec.js", "world.js",
                    "msgpack.js", "trade.js", "trade_ui.js", "trade_dialog.js", "school.js", "board.js", "board_ui.js"}
    ctype, _ = await asyncio.to_thread(get, base + "style.css")
    assert ctype.startswith("text/css")
    assert {p.name for p in WEB.glob("*.js")} == seen  # no stray module
    # and the declaration the page loads before anything else
    ctype, body = await asyncio.to_thread(get, base + "protocol.json")
    assert ctype.startswith("application/json")
    assert json.loads(body) == json.loads(json.dumps(declaration()))


async def test_a_timed_out_wait_for_loses_no_message(server):
    """A `wait_for` that times out must not take a message with it: the next
    reader still gets every message, in order."""
    from client_demo.client import HamletClient
    ann = await HamletClient.connect(server.url)
    bob = await HamletClient.connect(server.url)
    try:
        await ann.join("ann")
        await bob.join("bob")
        bob.drain()
        for _ in range(3):
            with pytest.raises(asyncio.TimeoutError):
                await bob.wait_for(lambda m: False, timeout=0.05)
        await ann.say("first")
        await ann.say("second")
        said = [await bob.wait_for(lambda m: m.type == "event" and m.data.get("kind") == "say")
                for _ in range(2)]
        assert [m.data["text"] for m in said] == ["first", "second"]
    finally:
        await ann.close()
        await bob.close()


def test_the_terminal_map_redraw_waits_while_no_map_is_mounted():
    """The redraw timer can fire while the screen holds no map (starting,
    or being torn down): the frame is kept for later, the app goes on (it
    crashed with NoMatches once in CI)."""
    from client_demo.tui_app import HamletApp
    app = HamletApp("ws://127.0.0.1:9", "ann")
    app._dirty = True
    app.redraw()                 # no screen at all: nothing raised
    assert app._dirty            # drawn once there is a map
