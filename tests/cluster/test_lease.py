"""Region leases over a real JetStream KV bucket: one owner at a time, a
standby takes over an expired lease, and a stale owner's renew fails; a
region's clean stop with NATS gone leaves the lease to run out."""
from __future__ import annotations

import asyncio
import time

import pytest

from server.cluster.lease import LeaseLost, RegionLease, lease_bucket
from server.cluster.region import NATS_GOODBYE_S


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_two_contenders_exactly_one_wins(nats_connect):
    nc1, nc2 = await nats_connect(), await nats_connect()
    kv1, kv2 = await lease_bucket(nc1.jetstream(), "w"), await lease_bucket(nc2.jetstream(), "w")
    for attempt in range(5):  # race them a few times on fresh keys
        a = RegionLease(kv1, f"r{attempt}", "a")
        b = RegionLease(kv2, f"r{attempt}", "b")
        won = await asyncio.gather(a.try_acquire(), b.try_acquire())
        assert sorted(won) == [False, True]
        holder = await a.holder()
        assert holder is not None and holder.owner == ("a" if won[0] else "b")


async def test_standby_takes_over_expired_lease_and_stale_renew_fails(nats_connect):
    kv = await lease_bucket((await nats_connect()).jetstream(), "w")
    clock = Clock()
    owner = RegionLease(kv, "r0", "owner", ttl_s=3.0, clock=clock)
    standby = RegionLease(kv, "r0", "standby", ttl_s=3.0, clock=clock)
    assert await owner.try_acquire()
    assert not await standby.try_acquire()          # live lease: refused
    clock.t += 2.0
    await owner.renew()                              # renewed: expires at +5 now
    clock.t += 2.5
    assert not await standby.try_acquire()          # still within the renewed lease
    clock.t += 1.0                                   # the owner stalls past expiry
    assert await standby.try_acquire()
    with pytest.raises(LeaseLost):
        await owner.renew()
    assert not owner.held
    assert (await standby.holder()).owner == "standby"
    await standby.renew()


async def test_release_lets_a_standby_in_at_once(nats_connect):
    kv = await lease_bucket((await nats_connect()).jetstream(), "w")
    a, b = RegionLease(kv, "r1", "a"), RegionLease(kv, "r1", "b")
    assert await a.try_acquire()
    await a.release()
    assert await b.try_acquire()
    assert not await a.try_acquire()


async def test_a_region_stops_cleanly_and_quickly_when_nats_is_gone(nats_server, tmp_path, caplog):
    """`hamlet cluster`'s nats-server dies with it (kill -9): its regions'
    clean stop must not hang on NATS nor end in a traceback; the lease runs
    out by itself."""
    from tests.cluster.helpers import start_region
    node = await start_region(nats_server.url, tmp_path, "r0")
    nats_server.stop()
    t0 = time.monotonic()
    await node.stop()                     # raises nothing
    assert time.monotonic() - t0 < 3 * NATS_GOODBYE_S
    assert any("the lease runs out by itself" in r.getMessage() for r in caplog.records)


async def test_the_gateway_stops_quickly_when_nats_is_gone(nats_server, caplog):
    """Before its drain was bounded, a gateway whose nats-server had died
    with `hamlet cluster` never finished stopping (SIGTERM left it running)."""
    from server.cluster.gateway import Gateway
    from server.config import ServerConfig
    from tests.cluster.helpers import MAP, REGIONS
    gw = Gateway("w", nats_server.url, REGIONS, ServerConfig(host="127.0.0.1", port=0, npcs=False),
                 spawn=MAP.places["square"].entry)
    await gw.start()
    nats_server.stop()
    t0 = time.monotonic()
    await asyncio.wait_for(gw.stop(), 10)
    assert time.monotonic() - t0 < 3 * NATS_GOODBYE_S
    assert any("NATS did not drain" in r.getMessage() for r in caplog.records)


async def test_a_regions_model_is_loaded_before_it_takes_the_lease(nats_server, tmp_path, monkeypatch):
    """A slow model load (a first conversion of the embedded model takes
    ~17 s) ran after the lease was taken, so the 3 s lease could run out
    under it and a standby take the region; and a standby loaded its model
    only once it had taken over. The load here is timed, not a model: it
    names none, and the region's NPCs follow their routines."""
    from server.cluster.region import RegionNode
    from tests.cluster.helpers import REGIONS, region_config

    node = RegionNode("w", "r0", REGIONS, nats_server.url, region_config(tmp_path, "r0", npcs=True, model="a-model"),
                      lease_ttl_s=1.0)
    held_at_load: list[bool] = []

    def load_model(config, registry):
        held_at_load.append(node.lease.held)
        return None

    monkeypatch.setattr("server.npcs.load_model", load_model)
    await node.start(wait_s=10.0)
    try:
        assert held_at_load == [False]
        assert node.lease.held and node.npcs is not None
    finally:
        await node.stop()


async def test_a_region_whose_lease_was_taken_while_it_opened_does_not_tick(nats_server, tmp_path):
    """Opening (a replay) runs on the loop; one that outlasts the lease can
    let a standby take the region. The region renews once before its first
    tick and, having lost the lease, stops there without ticking."""
    import threading

    import nats

    from server.cluster.region import RegionNode
    from tests.cluster.helpers import REGIONS, region_config

    taken: list[bool] = []

    async def standby_takes_it() -> None:
        nc = await nats.connect(nats_server.url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            rival = RegionLease(await lease_bucket(nc.jetstream(), "w"), "r0", "standby", ttl_s=1.0)
            taken.append(await rival.try_acquire())
        finally:
            await nc.close()

    node = RegionNode("w", "r0", REGIONS, nats_server.url, region_config(tmp_path, "r0"), lease_ttl_s=1.0)
    opened = node._open

    def slow_open(start_tick=0):
        opened(start_tick)
        time.sleep(1.3)  # a long replay, the loop held: the lease runs out, and a standby on its own loop takes it
        t = threading.Thread(target=lambda: asyncio.run(standby_takes_it()))
        t.start()
        t.join(10)

    node._open = slow_open
    with pytest.raises(LeaseLost):
        await node.start(wait_s=10.0)
    assert taken == [True]
    assert not node.running and node._tick_task is None   # never ticked
