"""Two or three real clients over real sockets: joining, seeing each other
move, hearing each other, area of interest, errors, resuming."""
from __future__ import annotations

import asyncio

import pytest

from client_demo.client import HamletClient, ServerError
from tests.waiting import settled, until


async def joined(server, name: str) -> HamletClient:
    c = await HamletClient.connect(server.url)
    await c.join(name)
    return c


async def test_two_clients_see_each_other_move_and_hear_each_other(server):
    a = await joined(server, "ann")
    b = await joined(server, "bob")
    await until(lambda: a.entity in b.entities and b.entity in a.entities)
    start = (b.entities[a.entity].x, b.entities[a.entity].y)
    # towards bob: both spawn at random near the square's middle, and speech carries 10 tiles
    dy = 1 if a.entities[b.entity].y > start[1] else -1
    await a.move(dir="s" if dy > 0 else "n")
    await until(lambda: (b.entities[a.entity].x, b.entities[a.entity].y) != start)
    assert (b.entities[a.entity].x, b.entities[a.entity].y) == (start[0], start[1] + dy)

    heard = asyncio.ensure_future(b.wait_for(lambda m: m.type == "event" and m.data["kind"] == "say"))
    chat_id = await a.say("hello bob", to=b.entity)
    event = (await heard).data
    assert event["text"] == "hello bob" and event["from"] == a.entity and event["name"] == "ann"
    assert event["to"] == b.entity and event["to_name"] == "bob" and event["chat"] == chat_id
    await a.close()
    await b.close()


async def test_a_far_client_receives_neither_moves_nor_speech(server):
    a = await joined(server, "ann")
    far = await joined(server, "faraway")
    await far.move(place="fields")
    await until(lambda: not server.game.world.entities[far.entity].path, timeout=10)
    fields = server.game.world.map.places["fields"]
    await until(lambda: far.me is not None and fields.contains(far.me.x, far.me.y))
    await until(lambda: a.entity not in far.entities)
    far.drain()
    states_before = far.stats.state_updates
    await a.move(dir="s")
    await a.say("nobody far hears this")
    await settled(server, far)
    assert a.entity not in far.entities
    says = []
    for m in far.drain():
        if m.type == "event" and m.data["kind"] == "say":
            says.append(m)
        if m.type == "state":
            assert a.entity not in [row[0] for row in m.data["enter"] + m.data["move"]]
    assert says == []
    assert far.stats.state_updates - states_before <= 2  # nothing near it changes
    await a.close()
    await far.close()


async def test_state_messages_are_deltas(server):
    a = await joined(server, "ann")
    b = await joined(server, "bob")
    await until(lambda: b.entity in a.entities)
    seen_enter = []
    a.drain()
    await a.move(dir="e")
    await b.move(dir="w")
    await until(lambda: not server.game.world.entities[b.entity].path)
    await settled(server, a)
    for m in a.drain():
        if m.type == "state":
            seen_enter += [row[0] for row in m.data["enter"]]
    assert b.entity not in seen_enter  # already known: only moves are sent


async def test_impossible_move_is_rejected_and_the_avatar_stays(server):
    a = await joined(server, "ann")
    await until(lambda: a.me is not None)
    before = (a.me.x, a.me.y)
    tavern = a.place("tavern")
    with pytest.raises(ServerError) as err:
        await a.move((tavern["x"], tavern["y"]))  # a wall
    assert err.value.code == "bad_move"
    with pytest.raises(ServerError) as err:
        await a.move(place="atlantis")
    assert err.value.code == "bad_move"
    await settled(server, a)
    assert (a.me.x, a.me.y) == before
    assert (server.game.world.entities[a.entity].x, server.game.world.entities[a.entity].y) == before


async def test_name_taken_and_bad_token(server):
    a = await joined(server, "ann")
    b = await HamletClient.connect(server.url)
    with pytest.raises(ServerError) as err:
        await b.join("ANN")
    assert err.value.code == "name_taken"
    with pytest.raises(ServerError) as err:
        await b.join("bob", token="not-a-real-token")
    assert err.value.code == "bad_token"
    await b.join("bob")  # the connection is still usable after refusals
    assert b.entity != a.entity


async def test_reconnect_with_token_resumes_the_same_avatar(server):
    a = await joined(server, "ann")
    await a.move(dir="s")
    await until(lambda: a.me is not None)
    entity, token = a.entity, a.token
    await a.ws.close()  # drop without bye
    await until(lambda: entity not in server.game.clients)
    await settled(server)
    assert entity in server.game.world.entities  # waiting in its grace period
    again = await HamletClient.connect(server.url)
    welcome = await again.join("ignored", token=token)
    assert welcome["id"] == entity and welcome["resumed"] is True
    await until(lambda: again.me is not None)
    assert again.me.name == "ann"


async def test_resuming_an_open_session_replaces_the_old_connection(server):
    a = await joined(server, "ann")
    b = await HamletClient.connect(server.url)
    await b.join("x", token=a.token)
    await until(lambda: a.closed)
    assert a.close_code == 4002


async def test_after_the_grace_period_the_avatar_leaves_and_the_account_remains(start_server):
    server = await start_server(grace_s=0.3)
    a = await joined(server, "ann")
    await a.move(dir="e")
    await until(lambda: not server.game.world.entities[a.entity].path)
    entity, token = a.entity, a.token
    pos = (server.game.world.entities[entity].x, server.game.world.entities[entity].y)
    await a.close()
    await until(lambda: entity not in server.game.world.entities)
    b = await HamletClient.connect(server.url)
    with pytest.raises(ServerError):
        await b.join("ann")  # the name belongs to the account
    welcome = await b.join("ann", token=token)
    assert welcome["id"] == entity and welcome["resumed"] is False
    assert (server.game.world.entities[entity].x, server.game.world.entities[entity].y) == pos


async def test_bye_leaves_at_once(server):
    a = await joined(server, "ann")
    entity = a.entity
    await a._send("bye")
    await until(lambda: a.closed)
    assert a.close_code == 1000
    assert entity not in server.game.world.entities


async def test_ping_pong(server):
    a = await HamletClient.connect(server.url)
    rtt = await a.ping()  # allowed before joining
    assert 0 < rtt < 5
