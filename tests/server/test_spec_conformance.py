"""The server against PROTOCOL.md, over a real socket: a client written from
the document and /protocol.json alone (raw websockets and msgpack, no
client library) plays a session, and each place where such a client found
the server and the document disagreeing gets its documented answer."""
from __future__ import annotations

import asyncio
import json
import math
import urllib.request

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from client_demo.client import HamletClient, ServerError


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        return json.loads(r.read())


async def next_of(ws: ClientConnection, t: str, timeout: float = 10.0, **fields) -> dict:
    """The next message of type `t` (with these field values), skipping others."""
    async def scan() -> dict:
        while True:
            msg = msgpack.unpackb(await ws.recv(), raw=False)
            if msg["t"] == t and all(msg.get(k) == v for k, v in fields.items()):
                return msg
    return await asyncio.wait_for(scan(), timeout)


async def closed_with(c: HamletClient, timeout: float = 10.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not c.closed and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert c.closed
    return c.close_code


async def test_a_client_written_from_the_spec_alone(server):
    spec = await asyncio.to_thread(fetch_json, f"http://127.0.0.1:{server.port}/protocol.json")
    enter_cols = spec["rows"]["enter"]
    async with connect(server.url, subprotocols=[spec["subprotocol"]]) as ws:
        await ws.send(pack({"t": "hello", "v": spec["version"], "name": "ann", "seq": 1}))
        welcome = await next_of(ws, "welcome")
        assert welcome["seq"] == 1 and welcome["limits"]["max_text"] == spec["limits"]["max_text"]
        state = await next_of(ws, "state")
        rows = [dict(zip(enter_cols, row)) for row in state["enter"]]
        assert all(len(row) == len(enter_cols) for row in state["enter"])
        me = next(r for r in rows if r["id"] == welcome["id"])
        assert me["name"] == "ann" and me["kind"] in spec["kinds"] and me["flags"] == 0
        await ws.send(pack({"t": "ping", "id": 77, "seq": 2}))  # seq on ping: answered by the pong
        pong = await next_of(ws, "pong")
        assert pong["id"] == 77 and pong["seq"] == 2
        await ws.send(pack({"t": "say", "text": "hello", "seq": 3}))
        said = await next_of(ws, "event", kind="say")  # delivered in the tick, before the commit's ack
        ack = await next_of(ws, "ack")
        assert said["kind"] == "say" and said["from"] == welcome["id"] and ack["seq"] == 3
        assert ack["chat"] == said["chat"]
        await ws.send(pack({"t": "bye", "seq": 4}))  # seq on bye: the close is the answer
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1000
    assert welcome["id"] not in server.game.world.entities  # bye: left at once


async def test_bad_fields_get_their_documented_codes_over_the_socket(server):
    c = await HamletClient.connect(server.url)
    await c.join("ann")
    nan = float("nan")
    bad = [
        ({"t": "ping", "id": nan}, "not_finite"),
        ({"t": "say", "text": "hi", "to": float("inf"), "seq": 5}, "not_finite"),
        ({"t": "admin", "token": "x", "action": "kick", "target": nan}, "not_finite"),
        ({"t": "move", "place": ""}, "bad_value"),
        ({"t": "admin", "token": "", "action": "snapshot"}, "bad_value"),
        ({"t": "say", "text": "next\u0085line"}, "bad_value"),
        ({"t": "ping", b"id": 1}, "bad_frame"),  # a binary key
        ({"t": "move", "to": [[[[1]]], 2]}, "bad_frame"),  # nested 5 deep
    ]
    for obj, code in bad:
        c.drain()
        await c.send_raw(pack(obj))
        err = await c.wait_for(lambda m: m.type == "error", timeout=5)
        assert err.data["code"] == code, obj
    await c.send_raw(b"\x91" * 1000 + b"\x01")
    assert (await c.wait_for(lambda m: m.type == "error", timeout=5)).data["code"] == "bad_frame"
    # nothing was said with a control character
    assert not any(m.type == "event" and "\u0085" in m.data.get("text", "") for m in c.drain())
    assert await c.say("still here") > 0


async def test_duplicate_keys_are_refused_not_last_one_wins(server):
    c = await HamletClient.connect(server.url)
    await c.join("ann")
    c.drain()
    # {t: move, to: [1, 2], t: ping, id: 7}: last-one-wins would answer a pong
    await c.send_raw(b"\x84\xa1t\xa4move\xa2to\x92\x01\x02\xa1t\xa4ping\xa2id\x07")
    err = await c.wait_for(lambda m: m.type == "error", timeout=5)
    assert err.data["code"] == "bad_frame"
    await c.ping()  # answered after anything the duplicate frame could have caused
    assert not any(m.type == "pong" and m.data["id"] == 7 for m in c.drain())


async def test_stop_false_is_refused_and_the_walk_goes_on(start_server):
    server = await start_server(ticks_per_tile=4)
    c = await HamletClient.connect(server.url)
    await c.join("ann")
    await c.wait_for(lambda m: m.type == "state")
    me = c.me
    far = max(c.map["places"], key=lambda p: math.hypot(p[6] - me.x, p[7] - me.y))
    await c.move(place=far[0])
    with pytest.raises(ServerError) as err:
        await c.request("move", stop=False)
    assert err.value.code == "bad_value"
    was = (c.me.x, c.me.y)
    await c.wait_for(lambda m: m.type == "state" and any(r[0] == c.entity for r in m.data["move"]))
    await c.wait_for(lambda m: m.type == "state" and any(r[0] == c.entity for r in m.data["move"]))
    assert (c.me.x, c.me.y) != was  # still walking
    await c.move(stop=True)


@pytest.mark.parametrize("v", [0, -1, 2**40])
async def test_an_unsupported_version_is_bad_version_and_hello_may_follow(server, v):
    c = await HamletClient.connect(server.url)
    with pytest.raises(ServerError) as err:
        await c.request("hello", v=v, name="ann")
    assert err.value.code == "bad_version"
    await c.join("ann")


async def test_a_token_needs_a_well_formed_name_whose_value_is_ignored(server):
    first = await HamletClient.connect(server.url)
    await first.join("ann")
    token, entity = first.token, first.entity
    await first.close()
    again = await HamletClient.connect(server.url)
    with pytest.raises(ServerError) as err:
        await again.join("<ann>", token=token)
    assert err.value.code == "bad_value"
    welcome = await again.join("someone else", token=token)
    assert welcome["id"] == entity
    await again.wait_for(lambda m: m.type == "state")
    assert again.me.name == "ann"


async def test_text_frames_are_measured_first_and_invalid_utf8_closes_1007(server):
    c = await HamletClient.connect(server.url)
    await c.join("ann")
    await c.send_raw("x" * 5000)
    assert await closed_with(c) == 1009
    raw = await connect(server.url, subprotocols=["hamlet.v1"])
    async with raw.send_context():
        raw.protocol.send_text(b"\xff\xfe not utf-8")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(raw.recv(), 10)
    assert raw.close_code == 1007
