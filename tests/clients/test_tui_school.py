"""The terminal client's school: `/progress` (and `/school`) put the
learner's record into words, per topic; each `progress` message leaves a
short line in the chat log; driven headless against a real server where a
teacher NPC's judgements are `Learn` inputs applied inside a tick, and the
record comes back after a reconnect (sent after `welcome`)."""
from __future__ import annotations

import pytest

pytest.importorskip("textual", reason="textual is not installed")

from client_demo.tui_app import HamletApp  # noqa: E402
from client_demo.tui_map import HELP, Command, parse_command  # noqa: E402
from client_demo.tui_school import NO_LESSONS, progress_news, progress_text, records  # noqa: E402
from server.world.inputs import Join, Learn  # noqa: E402
from tests.clients.test_tui_trade import command, free_tile, heard  # noqa: E402
from tests.waiting import until  # noqa: E402

SIZE = (120, 36)


def test_school_commands_parse():
    assert parse_command("/progress", []) == Command("progress")
    assert parse_command("/school", []) == Command("progress")
    assert parse_command("/PROGRESS", []) == Command("progress")
    bad = parse_command("/school bread", [])
    assert bad.name == "error" and "Usage: /school" in bad.text
    assert "/progress" in HELP and "/school" in HELP


def test_school_words():
    assert progress_text({}) == progress_text(None) == NO_LESSONS
    assert NO_LESSONS == "No lessons yet: say 'teach me' to Elena at the school."
    assert progress_text({"bread": [1, 1]}) == "Your record at the school: bread: 1 right, 1 wrong."
    text = progress_text({"well": [2, 0], "bread": [1, 1]})
    assert text.splitlines() == ["Your record at the school:", "  bread: 1 right, 1 wrong",
                                 "  well: 2 right, 0 wrong", "  in all: 3 of 4 right"]
    assert progress_news({"well": [2, 0], "bread": [1, 1]}) == "School: 3 of 4 right so far."
    assert progress_news({}) is None and progress_news(None) is None
    # malformed entries are left out, not shown or counted
    assert records({"bread": [1, 1], "x": [1], "y": ["1", 0], "z": [-1, 0], "w": [True, 0], "": [1, 0]}) == \
        [("bread", 1, 1)]
    assert records([["bread", [1, 1]]]) == []


async def test_terminal_client_shows_progress_at_the_school(server):
    app = HamletApp(server.url, "ann")
    async with app.run_test(size=SIZE) as pilot:
        s = app.session
        await until(lambda: s.status == "connected" and s.client.me is not None, what="connected")
        world, ann = server.game.world, s.entity
        me = world.entities[ann]
        elena = world.allocate_entity_id()
        assert server.game.apply(Join(elena, "Elena", *free_tile(world, me.x, me.y, 1, 3), npc=True)) is None
        await until(lambda: elena in s.client.entities, what="Elena in view")

        await command(pilot, app, "/help", "/progress (or /school)")
        await command(pilot, app, "/progress", NO_LESSONS)

        def judge(question: int, right: bool) -> None:
            """Elena judges an answer: a Learn input returned once by an agent system (so inside a tick)."""
            pending = [Learn(ann, elena, "bread", question, right)]
            server.game.agent_systems.append(lambda w: [pending.pop()] if pending else [])

        judge(0, True)
        await until(lambda: heard(app, "School: 1 of 1 right so far."), what="the news of a right answer")
        assert s.client.progress == {"bread": [1, 0]}
        await command(pilot, app, "/progress", "Your record at the school: bread: 1 right, 0 wrong.")

        judge(1, False)
        await until(lambda: heard(app, "School: 1 of 2 right so far."), what="the news of a wrong answer")
        await command(pilot, app, "/school", "Your record at the school: bread: 1 right, 1 wrong.")
        assert world.progress.summary(ann) == {"bread": [1, 1]}

        # a dropped connection: the record comes again after `welcome`
        before = len(app.transcript)
        conn = next(c for c in server.connections if c.entity == ann)
        conn.ws.transport.abort()
        await until(lambda: "reconnecting" in s.history, what="reconnecting")
        await until(lambda: s.status == "connected" and s.client.progress == {"bread": [1, 1]},
                    what="the record after reconnecting")
        await until(lambda: any("School: 1 of 2 right so far." in t for t in list(app.transcript)[before:]),
                    what="the record's line after reconnecting")
        await command(pilot, app, "/progress", "bread: 1 right, 1 wrong")
        assert not any("Traceback" in line for line in app.transcript)
