"""Graceful shutdown under load, and a reconnect storm."""
from __future__ import annotations

import asyncio
import signal
import time

from client_demo.client import HamletClient
from server.persistence import Database
from tests.reliability.helpers import ServerProcess, until


async def test_sigterm_under_load_saves_tells_everyone_and_exits_quickly(tmp_path):
    server = ServerProcess(tmp_path / "world.db").start()
    clients = []
    for i in range(30):
        c = await HamletClient.connect(server.url)
        await c.join(f"load{i}")
        clients.append(c)
    stop = asyncio.Event()

    async def busy(c: HamletClient) -> None:
        while not stop.is_set() and not c.closed:
            try:
                await c.move(dir="e", wait=False)
                await c.say("busy busy", wait=False)
            except Exception:
                return
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(busy(c)) for c in clients]
    before = sum(c.stats.state_updates for c in clients)
    await until(lambda: sum(c.stats.state_updates for c in clients) >= before + 2 * len(clients),
                what="the load under way")
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(server.proc.wait, 15)
    took = time.monotonic() - t0
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await until(lambda: all(c.closed for c in clients), timeout=5)
    assert rc == 0 and took < 10
    assert all(c.close_code == 1001 and "shutting down" in c.close_reason for c in clients)
    d = Database(str(tmp_path / "world.db"))
    snap = d.latest_snapshot()
    assert snap is not None and snap["tick"] == d.last_tick()  # the final snapshot is the last tick
    d.close()


async def test_reconnect_storm_keeps_every_avatar(start_server):
    server = await start_server(grace_s=30.0, max_clients_per_ip=1000)
    clients = []
    for i in range(200):
        c = await HamletClient.connect(server.url)
        await c.join(f"storm{i}")
        clients.append(c)
    ids = {i: (c.entity, c.token) for i, c in enumerate(clients)}
    for c in clients:  # everyone drops at once, without a close handshake
        c.ws.transport.abort()
    await until(lambda: len(server.game.clients) == 0, timeout=10)
    assert sum(1 for e in server.game.world.entities.values() if e.kind == "player") == 200

    async def resume(entity: int, token: str) -> int:
        c = await HamletClient.connect(server.url)
        welcome = await c.join("x", token=token, timeout=30)
        await c.close()
        return welcome["id"]

    got = await asyncio.gather(*(resume(e, t) for e, t in ids.values()))
    assert sorted(got) == sorted(e for e, _ in ids.values())
    players = [e for e in server.game.world.entities.values() if e.kind == "player"]
    assert len(players) == 200 and len({e.name for e in players}) == 200
