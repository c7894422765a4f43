"""Bad input over a real socket gets its documented error or close code,
the connection (where it stays open) keeps working, and other clients'
updates keep flowing."""
from __future__ import annotations

import msgpack
import pytest
from websockets.asyncio.client import connect

from client_demo.client import HamletClient, ServerError
from protocol.limits import SUBPROTOCOL
from tests.waiting import until


async def test_bad_frames_get_error_codes_and_the_connection_survives(server):
    c = await HamletClient.connect(server.url)
    await c.join("ann")
    bad = [
        (b"\xc1", "bad_frame"),
        (msgpack.packb({"t": "fly"}), "unknown_type"),
        (msgpack.packb({"t": "say"}), "missing_field"),
        (msgpack.packb({"t": "say", "text": "x" * 400}), "too_long"),
        (msgpack.packb({"t": "move", "to": [float("nan"), 1]}), "not_finite"),
        (msgpack.packb({"t": "move", "to": ["a", 1]}), "bad_type"),
        (msgpack.packb({"t": "hello", "v": 1, "name": "again"}), "already_joined"),
        ("a text frame", "text_frame"),
    ]
    for frame, code in bad:
        c.drain()
        await c.send_raw(frame)
        err = await c.wait_for(lambda m: m.type == "error", timeout=5)
        assert err.data["code"] == code, frame
    assert await c.say("still here") > 0
    assert server.metrics.rejected.labels("bad_frame")._value.get() >= 1


async def test_messages_before_join_are_refused(server):
    c = await HamletClient.connect(server.url)
    with pytest.raises(ServerError) as err:
        await c.say("hi")
    assert err.value.code == "not_joined"
    await c.join("ann")


async def test_wrong_protocol_version_is_refused(server):
    c = await HamletClient.connect(server.url)
    with pytest.raises(ServerError) as err:
        await c.request("hello", v=99, name="ann")
    assert err.value.code == "bad_version"


async def test_oversized_frame_closes_with_1009(server):
    c = await HamletClient.connect(server.url)
    await c.join("ann")
    await c.send_raw(b"\x00" * 5000)
    await until(lambda: c.closed)
    assert c.close_code == 1009


async def test_a_flood_of_garbage_is_cut_off_and_others_keep_their_updates(server):
    watcher = await HamletClient.connect(server.url)
    await watcher.join("watcher")
    walker = await HamletClient.connect(server.url)
    await walker.join("walker")
    bad = await HamletClient.connect(server.url)
    for _ in range(60):
        await bad.send_raw(b"\xc1\xc1")
    await until(lambda: bad.closed)
    assert bad.close_code == 4005
    watcher.drain()
    await walker.move(dir="n")
    await watcher.wait_for(lambda m: m.type == "state" and any(r[0] == walker.entity for r in m.data["move"]))


async def test_connection_without_the_subprotocol_is_refused(server):
    with pytest.raises(Exception):
        async with connect(server.url):
            pass
    async with connect(server.url, subprotocols=[SUBPROTOCOL]) as ws:
        assert ws.subprotocol == SUBPROTOCOL


async def test_join_timeout(start_server):
    server = await start_server(join_timeout_s=0.3)
    c = await HamletClient.connect(server.url)
    await until(lambda: c.closed)
    assert c.close_code == 4004


async def test_server_full(start_server):
    server = await start_server(max_clients=2)
    a = await HamletClient.connect(server.url)
    b = await HamletClient.connect(server.url)
    c = await HamletClient.connect(server.url)
    await until(lambda: c.closed)
    assert c.close_code == 1013 and "full" in c.close_reason
    await a.join("ann")
    await b.join("bob")
