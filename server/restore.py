"""Rebuilding the world from the database: the latest snapshot, then every
logged input after it, tick by tick, through the same `World.apply` and
`World.simulate` the live server runs. Used at start-up and by replay."""
from __future__ import annotations

from server.persistence import Database
from server.world.catalog import Catalog
from server.world.inputs import from_record
from server.world.tilemap import TileMap
from server.world.world import Rejection, World, WorldRules


class ReplayMismatch(RuntimeError):
    pass


def replay_into(world: World, db: Database, until_tick: int, from_tick: int | None = None) -> int:
    """Advance `world` through the logged ticks up to `until_tick`. Returns
    the number of inputs applied. A logged input that the world refuses
    means the log and the code disagree: that is an error, not a skip."""
    applied = 0
    start = world.tick if from_tick is None else from_tick
    pending = db.events_after(start)
    nxt = next(pending, None)
    while world.tick < until_tick:
        world.begin_tick()
        while nxt is not None and nxt[0] == world.tick:
            _, kind, data = nxt
            result = world.apply(from_record(kind, data))
            if isinstance(result, Rejection):
                raise ReplayMismatch(f"tick {world.tick}: logged {kind} {data} refused: {result.message}")
            applied += 1
            nxt = next(pending, None)
        if nxt is not None and nxt[0] < world.tick:
            raise ReplayMismatch(f"event log out of order at tick {nxt[0]}")
        world.simulate()
    return applied


def world_catalog(db: Database, catalog: Catalog | None = None) -> Catalog | None:
    """The goods this database's world was created with (kept in its meta
    table); a world from before the economy takes `catalog`, kept from now on."""
    stored = db.get_meta("catalog")
    if stored is not None:
        return Catalog.from_dict(stored)
    if catalog is not None:
        db.set_meta_now("catalog", catalog.to_dict())
    return catalog


def open_world(db: Database, tilemap: TileMap, seed: int, rules: WorldRules = WorldRules(),
               catalog: Catalog | None = None) -> World:
    """The world in `db` (its latest snapshot and the log after it), or a new
    one with `seed` and the goods in `catalog`."""
    catalog = world_catalog(db, catalog)
    snap = db.latest_snapshot()
    if snap is not None:
        if snap.get("map") != tilemap.name:
            raise ValueError(f"the database holds a world on map {snap.get('map')!r}, not {tilemap.name!r}")
        world = World.restore(tilemap, snap, rules, catalog)
    else:
        stored_seed = db.get_meta("seed")
        world = World(tilemap, stored_seed if stored_seed is not None else seed, rules, catalog)
        if stored_seed is None:
            db.set_meta_now("seed", seed)
            db.set_meta_now("map", tilemap.name)
    replay_into(world, db, db.last_tick())
    return world
