"""The terminal client's notice board: `/board` and `/turnin` parse (and
bad ones get a usage line), the board is put into words, and, driven
headless against a real server, a quest an NPC posted and a notice it
pinned show in `/board`; turning the quest in without the goods is refused
in words, with the goods at the board it pays the reward (the line and the
status line's coins say so), and a second try says the quest is closed."""
from __future__ import annotations

import pytest

pytest.importorskip("textual", reason="textual is not installed")

from client_demo.tui_app import HamletApp  # noqa: E402
from client_demo.tui_board import (  # noqa: E402
    NOTICES_SHOWN, BoardCommand, board_text, duration, quest_line, turned_in_text)
from client_demo.tui_map import HELP, parse_command  # noqa: E402
from protocol.board import BOARD_PLACE, BOARD_RANGE  # noqa: E402
from server.world.inputs import Give, Join, PinNotice, PostQuest  # noqa: E402
from tests.clients.test_tui_trade import command, free_tile, heard  # noqa: E402
from tests.e2e.test_trade_browser import apply_in_a_tick  # noqa: E402
from tests.waiting import until  # noqa: E402

SIZE = (120, 36)


@pytest.mark.parametrize("line, expected", [
    ("/board", BoardCommand("board")), ("/BOARD", BoardCommand("board")), ("/quests", BoardCommand("board")),
    ("/turnin 3", BoardCommand("turnin", quest=3)), ("/turnin #12", BoardCommand("turnin", quest=12)),
    ("/turn_in 4", BoardCommand("turnin", quest=4)),
])
def test_board_commands_parse(line, expected):
    assert parse_command(line, []) == expected


@pytest.mark.parametrize("line, usage", [
    ("/turnin", "Usage: /turnin ID"), ("/turnin wheat", "Usage: /turnin ID"), ("/turnin 0", "Usage: /turnin ID"),
    ("/turnin -2", "Usage: /turnin ID"), ("/turnin 1 2", "Usage: /turnin ID"), ("/board all", "Usage: /board"),
])
def test_bad_board_syntax_gets_a_usage_line(line, usage):
    cmd = parse_command(line, [])
    assert cmd.name == "error" and usage in cmd.text, cmd


def test_board_words():
    assert "/board" in HELP and "/turnin ID" in HELP
    assert [duration(s) for s in (0, 44.6, 60, 3599, 3600, 8640)] == ["0 s", "45 s", "1 min", "59 min", "1 h", "2 h 24 min"]
    quest = [3, 9, "Oda", "wheat", 2, 5, 1000 + 172_800, "Oda needs 2 wheat: bring them for 5 coins."]
    q = dict(zip(("id", "from", "from_name", "item", "n", "reward", "expires", "text"), quest))
    assert quest_line(q, 1000, 20.0, 1) == "#3  Oda asks for 2 wheat · reward 5 coins · 2 h 24 min left · you have 1"
    assert quest_line(q, 1000, 0.0) == "#3  Oda asks for 2 wheat · reward 5 coins"
    notices = [[20 - i, "ann", "Mira", f"note {i}", 1000 - 1200 * i] for i in range(NOTICES_SHOWN + 2)]
    text = board_text({"tick": 1000, "quests": [quest], "notices": notices}, 20.0, {})
    lines = text.splitlines()
    assert lines[1].startswith("Quests (/turnin ID") and lines[2] == "  " + quest_line(q, 1000, 20.0, 0)
    assert lines[3] == f"Notices, the newest {NOTICES_SHOWN} of {NOTICES_SHOWN + 2}:"
    assert lines[4] == '  "note 0"  (ann, pinned by Mira, 0 s ago)' and lines[5].endswith("1 min ago)")
    assert len(lines) == 4 + NOTICES_SHOWN
    empty = board_text({"tick": 5, "quests": [], "notices": []}, 20.0)
    assert "Quests: none open." in empty and "Notices: none." in empty
    assert turned_in_text(q, 3, 20, 25) == "You brought Oda 2 wheat (quest #3): +5 coins, you have 25 now."
    assert turned_in_text(None, 3, 20, 25) == "You turned in quest #3: +5 coins, you have 25 now."


async def test_terminal_client_reads_the_board_and_turns_in_a_quest(server):
    app = HamletApp(server.url, "ann")
    async with app.run_test(size=SIZE) as pilot:
        s = app.session
        await until(lambda: s.status == "connected" and s.client.me is not None and s.client.coins == 20,
                    what="connected with a purse")
        world, ann = server.game.world, s.entity
        await command(pilot, app, "/board", "Quests: none open.")
        assert heard(app, "Notices: none.")

        # Pell the miller, out at the fields, asks for wheat; he pins a notice of ann's
        pell = world.allocate_entity_id()
        assert server.game.apply(Join(pell, "Pell", *world.map.places["fields"].entry, npc=True)) is None
        assert server.game.apply(PostQuest(pell, "wheat", 2, 5)) is None
        assert server.game.apply(PinNotice(pell, ann, "ann", "Lost: grey cat near the pond")) is None
        (qid,) = world.board.quests
        await command(pilot, app, "/help", "/turnin ID")
        await command(pilot, app, "/board", f"#{qid}  Pell asks for 2 wheat · reward 5 coins")
        assert heard(app, '"Lost: grey cat near the pond"  (ann, pinned by Pell, ')
        assert heard(app, "you have 0")

        # to the board; without the goods, refused in words and nothing changes
        app.query_one("#input").value = f"/go {BOARD_PLACE}"
        await pilot.press("enter")
        entry = world.map.places[BOARD_PLACE].entry
        me = world.entities[ann]
        await until(lambda: not me.path and max(abs(me.x - entry[0]), abs(me.y - entry[1])) <= BOARD_RANGE,
                    what="ann at the board")
        await command(pilot, app, f"/turnin {qid}", "Nothing was turned in: there is not enough of it. "
                                                    "You do not have 2 wheat.")
        assert qid in world.board.quests and s.client.coins == 20

        # Oda the farmer comes by and hands ann 2 wheat
        oda = world.allocate_entity_id()
        assert await apply_in_a_tick(server, Join(oda, "Oda", *free_tile(world, me.x, me.y, 1, 2), npc=True)) is None
        assert await apply_in_a_tick(server, Give(oda, ann, "wheat", 2)) is None
        await until(lambda: s.client.items == {"wheat": 2}, what="ann's wheat")
        await command(pilot, app, "/board", "you have 2")

        # with the goods: the reward, in the line and in the status line
        pell_coins, pell_wheat = world.economy.purse(pell).coins, world.economy.purse(pell).goods["wheat"]
        await command(pilot, app, f"/turnin {qid}", f"You brought Pell 2 wheat (quest #{qid}): +5 coins, you have 25 now.")
        assert s.client.coins == 25 and "wheat" not in s.client.items
        assert world.economy.purse(ann).coins == 25
        assert (world.economy.purse(pell).coins, world.economy.purse(pell).goods["wheat"]) == (pell_coins - 5, pell_wheat + 2)
        await until(lambda: "25 coins" in app.query_one("#status").render().plain, what="status coins")
        await until(lambda: heard(app, f"ann brought Pell 2 wheat for 5 coins (quest {qid})"), what="the trade event")

        # the quest is gone: a second try is refused, and the board says so
        await command(pilot, app, f"/turnin {qid}", "Nothing was turned in: that quest is no longer open (see /board). "
                                                    f"No open quest {qid}")
        await command(pilot, app, "/board", "Quests: none open.")
        assert s.client.coins == 25
        assert not any("Traceback" in line for line in app.transcript)
