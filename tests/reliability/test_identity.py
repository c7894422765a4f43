"""Authority and identity: nobody moves or speaks as another entity, takes a
held name, or resumes someone else's session; tokens are random and stored
hashed; admin actions need a token that is never defaulted."""
from __future__ import annotations

import sqlite3

import msgpack
import pytest

from client_demo.client import HamletClient, ServerError
from server.config import ServerConfig
from tests.reliability.helpers import until


async def joined(server, name: str) -> HamletClient:
    c = await HamletClient.connect(server.url)
    await c.join(name)
    return c


async def test_no_message_can_name_another_entity_to_act_for(server):
    a = await joined(server, "ann")
    b = await joined(server, "bob")
    before = server.game.world.state_hash()
    for frame in ({"t": "move", "dir": "n", "entity": b.entity}, {"t": "say", "text": "hi", "from": b.entity},
                  {"t": "move", "dir": "n", "id": b.entity}):
        a.drain()
        await a.send_raw(msgpack.packb(frame))
        err = await a.wait_for(lambda m: m.type == "error")
        assert err.data["code"] == "unknown_field"
    assert server.game.world.state_hash() == before


async def test_held_names_cannot_be_taken(start_server):
    server = await start_server(npcs=True, model="none")
    a = await joined(server, "ann")
    await until(lambda: server.game.world.find_by_name("Mira") is not None)
    c = await HamletClient.connect(server.url)
    for name in ("ann", "ANN", "mira", "Mira"):  # an active player, an NPC
        with pytest.raises(ServerError) as err:
            await c.join(name)
        assert err.value.code == "name_taken"
    await a._send("bye")
    await until(lambda: a.entity not in server.game.world.entities)
    with pytest.raises(ServerError) as err:
        await c.join("ann")  # the account still holds it
    assert err.value.code == "name_taken"


async def test_tokens_are_random_hashed_and_cannot_be_guessed(server):
    a = await joined(server, "ann")
    b = await joined(server, "bob")
    assert a.token != b.token and len(a.token) >= 32
    c = await HamletClient.connect(server.url)
    for guess in (a.token[:-1] + ("A" if a.token[-1] != "A" else "B"), a.token.upper(), "", "x" * 64):
        if not guess:
            continue
        with pytest.raises(ServerError) as err:
            await c.join("eve", token=guess)
        assert err.value.code == "bad_token"
    rows = sqlite3.connect(server.config.db).execute("SELECT token_hash FROM accounts").fetchall()
    stored = {r[0] for r in rows}
    assert a.token not in stored and b.token not in stored
    assert all(len(h) == 64 for h in stored)  # SHA-256 hex


async def test_admin_is_off_without_a_token(server):
    assert ServerConfig().admin_token == ""
    a = await joined(server, "ann")
    for token in ("", "admin", "changeme"):
        if not token:
            continue
        with pytest.raises(ServerError) as err:
            await a.request("admin", token=token, action="snapshot")
        assert err.value.code == "forbidden"


async def test_admin_actions_with_the_token(start_server):
    server = await start_server(admin_token="s3cret-admin-token")
    a = await joined(server, "ann")
    op = await HamletClient.connect(server.url)  # an operator need not join
    with pytest.raises(ServerError) as err:
        await op.request("admin", token="wrong", action="snapshot")
    assert err.value.code == "forbidden"
    await op.request("admin", token="s3cret-admin-token", action="snapshot")
    assert server.db.latest_snapshot() is not None
    a.drain()
    await op.request("admin", token="s3cret-admin-token", action="broadcast", text="Server restarts at noon")
    msg = await a.wait_for(lambda m: m.type == "event" and m.data["kind"] == "broadcast")
    assert msg.data["text"] == "Server restarts at noon"
    await op.request("admin", token="s3cret-admin-token", action="kick", target=a.entity)
    await until(lambda: a.closed)
    assert a.close_code == 4003
    assert a.entity not in server.game.world.entities
