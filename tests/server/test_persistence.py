"""Stopping and restarting the server restores the world: positions,
accounts, the chat history; a crash (no final snapshot) loses no
acknowledged chat line."""
from __future__ import annotations

from client_demo.client import HamletClient
from server.app import HamletServer
from tests.conftest import make_config
from tests.waiting import until


async def test_restart_restores_positions_accounts_and_chat(tmp_path):
    cfg = make_config(tmp_path)
    server = HamletServer(cfg)
    await server.start()
    a = await HamletClient.connect(server.url)
    await a.join("ann")
    await a.move(place="market")
    await until(lambda: not server.game.world.entities[a.entity].path)
    chat = await a.say("remember me")
    await a.say("and this too")
    entity, token = a.entity, a.token
    before = server.game.world.entities[entity]
    pos = (before.x, before.y)
    hash_before = server.game.world.state_hash()
    await a.close()
    await server.stop()

    again = HamletServer(make_config(tmp_path, port=0))
    await again.start()
    try:
        assert again.game.world.state_hash() == hash_before
        e = again.game.world.entities[entity]
        assert (e.x, e.y) == pos
        texts = [c["text"] for c in again.db.chat_history()]
        assert texts[-2:] == ["remember me", "and this too"]
        assert again.db.chat_history()[-2]["chat"] == chat
        b = await HamletClient.connect(again.url)
        welcome = await b.join("whoever", token=token)
        assert welcome["id"] == entity and welcome["resumed"] is True
        c = await HamletClient.connect(again.url)
        chat2 = await c.join("cy") and await c.say("new line")
        assert chat2 > chat + 1  # chat ids keep counting after a restart
    finally:
        await again.stop()


async def test_a_crash_without_final_snapshot_loses_no_acknowledged_line(tmp_path):
    cfg = make_config(tmp_path)
    server = HamletServer(cfg)
    await server.start()
    a = await HamletClient.connect(server.url)
    await a.join("ann")
    acked = [await a.say(f"line {i}") for i in range(5)]
    await a.move(dir="e")
    await until(lambda: not server.game.world.entities[a.entity].path)
    # simulate a crash: stop the tick and drop everything without a snapshot
    server._tick_task.cancel()
    server._ws_server.close()
    server.db.conn.close()
    await a.close()

    again = HamletServer(make_config(tmp_path))
    try:
        history = {c["chat"]: c["text"] for c in again.db.chat_history()}
        for i, chat in enumerate(acked):
            assert history[chat] == f"line {i}"
        assert a.entity in again.game.world.entities
        assert again.db.latest_snapshot() is None  # everything came from the log
    finally:
        await again.start()
        await again.stop()
