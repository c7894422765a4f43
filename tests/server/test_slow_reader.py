"""A client that stops reading gets the latest state rather than a growing
backlog, and is disconnected with close code 4001 past its bound: dropped
from the counts at once, and its socket cut within a second or so (never
left to the keepalive's 20 s)."""
from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from client_demo.client import HamletClient
from protocol.codec import decode_server, encode
from protocol.limits import SUBPROTOCOL
from server.net import CLOSE_BLOCKED_S


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return json.loads(r.read())


async def test_slow_reader_is_bounded_then_disconnected(start_server):
    server = await start_server(slow_reader_timeout_s=1.0, max_outbox_bytes=64 * 1024, socket_sndbuf=4096)
    # A tiny receive buffer so the kernel stops accepting data quickly.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    slow = await connect(server.url, sock=sock, subprotocols=[SUBPROTOCOL], max_queue=1, compression=None)
    await slow.send(encode("hello", v=1, name="slow"))
    welcome = decode_server(await slow.recv())
    assert welcome.type == "welcome"
    slow.transport.pause_reading()  # stop reading, like a stuck client

    talkers = []
    for i in range(6):
        t = await HamletClient.connect(server.url)
        await t.join(f"talker{i}")
        talkers.append(t)
    line = "ж" * 280  # 560 bytes of UTF-8 per line
    server_client = next(c for c in server.connections if c.entity == welcome.data["id"])

    async def talk() -> None:
        while True:
            await asyncio.gather(*(t.say(line, wait=False) for t in talkers))
            await asyncio.sleep(0.1)

    talking = asyncio.create_task(talk())
    try:
        deadline = time.monotonic() + 15
        while not server_client.closed and time.monotonic() < deadline:
            # the backlog the server holds for it stays bounded
            assert server_client.outbox_bytes <= 64 * 1024
            assert server_client.state_frame is None or len(server_client.state_frame) < 4096
            await asyncio.sleep(0.01)
        closed_at = time.monotonic()
        assert server_client.closed and server_client.close_code == 4001
        # no longer counted, at once: not a connection, not a player
        assert server_client not in server.connections
        await asyncio.sleep(0)  # the game forgets it once the current tick is done
        assert server_client not in server.game.clients.values()
        health = await asyncio.to_thread(healthz, server.port)
        assert health["clients"] == 6 and health["players"] == 6
        # its socket is cut within the bound: the close frame could not leave
        while server_client.ws.state is not State.CLOSED and time.monotonic() - closed_at < 5:
            await asyncio.sleep(0.02)
        assert server_client.ws.state is State.CLOSED
        assert time.monotonic() - closed_at < CLOSE_BLOCKED_S + 1.0
    finally:
        talking.cancel()
    # the stuck client, reading again, finds its connection ended: what the
    # kernel's buffers held, cut short, and no close frame (1006)
    slow.transport.resume_reading()

    async def read_to_the_end() -> None:
        try:
            async for _ in slow:
                pass
        except ConnectionClosed:
            pass

    await asyncio.wait_for(read_to_the_end(), 5)
    assert slow.close_code == 1006
    # everyone else is still connected and served
    for t in talkers:
        assert not t.closed
        assert await t.ping() < 2
