"""Peers that stop answering pings are dropped within bounds (slow readers:
tests/server/test_slow_reader.py)."""
from __future__ import annotations

from client_demo.client import HamletClient
from tests.reliability.helpers import until


async def test_a_silent_peer_is_dropped_by_keepalive(start_server):
    server = await start_server(ping_interval_s=0.3, ping_timeout_s=0.3)
    silent = await HamletClient.connect(server.url)
    await silent.join("silent")
    alive = await HamletClient.connect(server.url)
    await alive.join("alive")
    silent.ws.transport.pause_reading()  # no more pongs from this one
    await until(lambda: not any(c.entity == silent.entity for c in server.connections), timeout=5)
    assert any(c.entity == alive.entity for c in server.connections)  # answers pings: kept
    assert await alive.ping() < 1.0
    assert silent.entity in server.game.world.entities  # its avatar waits for it (grace period)
