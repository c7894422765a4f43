"""A region's world at start-up: its latest snapshot, then its event log
and its handoff log replayed together, tick by tick, in the order the live
tick applies them (arrivals, then inputs, then simulate, then departures),
so a region that restarts (or a standby that takes over) holds exactly
what was committed, arrivals committed between ticks included. A new region's world gets id ranges of its own
(entities, chat lines, offers, accounts) so ids never collide across
regions.
"""
from __future__ import annotations

from server.cluster import entity_state
from server.cluster.handoffs import HandoffLog
from server.persistence import Database
from server.restore import ReplayMismatch, world_catalog
from server.world.catalog import Catalog
from server.world.inputs import from_record
from server.world.tilemap import TileMap
from server.world.world import Rejection, World, WorldRules

# Region i allocates ids from i * ID_SPAN + 1: 2^40 ids per region (about a
# trillion) and room for 8,192 regions below 2^53, the protocol's id bound.
ID_SPAN = 2 ** 40


def open_region_world(db: Database, log: HandoffLog, tilemap: TileMap, seed: int, index: int,
                      rules: WorldRules = WorldRules(), catalog: Catalog | None = None,
                      start_tick: int = 0) -> World:
    """`start_tick`: where a new world's clock starts (the world's shared
    clock, see clock.py); a restored world goes on from its own."""
    catalog = world_catalog(db, catalog)
    snap = db.latest_snapshot()
    if snap is not None:
        if snap.get("map") != tilemap.name:
            raise ValueError(f"the database holds a world on map {snap.get('map')!r}, not {tilemap.name!r}")
        world = World.restore(tilemap, snap, rules, catalog)
    else:
        world = World(tilemap, seed, rules, catalog)
        world.tick = start_tick
        base = index * ID_SPAN + 1
        world.next_entity_id = max(world.next_entity_id, base)
        world.next_chat_id = max(world.next_chat_id, base)
        world.economy.next_offer_id = max(world.economy.next_offer_id, base)
        db.set_meta_now("seed", seed)
        db.set_meta_now("map", tilemap.name)
        db.save_snapshot(world.tick, world.snapshot())  # the id ranges are in the first snapshot
    replay(world, db, log, db.last_tick())
    return world


def replay(world: World, db: Database, log: HandoffLog, until_tick: int) -> None:
    events = db.events_after(world.tick)
    handoffs = log.rows_after(world.tick)
    nxt, hnext = next(events, None), next(handoffs, None)
    while world.tick < until_tick:
        world.begin_tick()
        late: list[tuple] = []
        while hnext is not None and hnext[0] == world.tick:
            _, kind, _, eid, _, _, state = hnext
            if kind == "back" or (kind == "in" and eid not in world.entities):  # in: see below
                entity_state.put_in(world, state)
            elif kind == "out":
                late.append(hnext)
            hnext = next(handoffs, None)
        while nxt is not None and nxt[0] == world.tick:
            result = world.apply(from_record(nxt[1], nxt[2]))
            if isinstance(result, Rejection):
                raise ReplayMismatch(f"tick {world.tick}: logged {nxt[1]} {nxt[2]} refused: {result.message}")
            nxt = next(events, None)
        world.simulate()
        for _, _, _, eid, _, hop, _ in late:
            if eid not in world.entities:
                raise ReplayMismatch(f"tick {world.tick}: entity {eid} left but is not here")
            entity_state.take_out(world, eid, hop)
        if (nxt is not None and nxt[0] < world.tick) or (hnext is not None and hnext[0] < world.tick):
            raise ReplayMismatch(f"a log is out of order at tick {world.tick}")
    # arrivals committed between ticks, ahead of the next tick (region_bus.py):
    # at its boundary, where the world stood; one already in the world came
    # with a snapshot taken after it (a clean stop's)
    while hnext is not None and hnext[0] == world.tick + 1:
        _, kind, _, eid, _, _, state = hnext
        if kind == "in" and eid not in world.entities:
            entity_state.put_in(world, state)
        hnext = next(handoffs, None)
