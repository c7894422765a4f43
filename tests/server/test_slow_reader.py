"""A client that stops reading gets the latest state rather than a growing
backlog, and is disconnected with close code 4001 past its bound."""
from __future__ import annotations

import asyncio
import socket

from websockets.asyncio.client import connect

from client_demo.client import HamletClient
from protocol.codec import decode_server, encode
from protocol.limits import SUBPROTOCOL


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
    for _ in range(40):
        await asyncio.gather(*(t.say(line, wait=False) for t in talkers))
        # the backlog the server holds for it stays bounded
        assert server_client.outbox_bytes <= 64 * 1024
        assert server_client.state_frame is None or len(server_client.state_frame) < 4096
        if server_client.closed:
            break
        await asyncio.sleep(0.1)
    for _ in range(100):
        if server_client.closed:
            break
        await asyncio.sleep(0.05)
    assert server_client.closed and server_client.close_code == 4001
    # everyone else is still connected and served
    for t in talkers:
        assert not t.closed
        assert await t.ping() < 2
    slow.transport.abort()
