"""Starting regions in the test's process against the test's nats-server."""
from __future__ import annotations

import asyncio
import time

from server.cluster.region import RegionNode
from server.cluster.regions import RegionMap
from server.config import ServerConfig
from server.world.village import village

MAP = village()
REGIONS = RegionMap.columns(2, MAP.width, MAP.height)


def region_config(tmp_path, region: str, **overrides) -> ServerConfig:
    base = dict(host="127.0.0.1", port=0, db=str(tmp_path / f"{region}.db"), npcs=False, tick_rate=50.0,
                ticks_per_tile=1, snapshot_every_s=3600.0)
    base.update(overrides)
    return ServerConfig(**base)


async def start_region(url: str, tmp_path, region: str, world: str = "w", **overrides) -> RegionNode:
    node = RegionNode(world, region, REGIONS, url, region_config(tmp_path, region, **overrides), lease_ttl_s=1.0)
    await node.start(wait_s=10.0)
    return node


def walkable_near_border(y_from: int = 0) -> list[tuple[int, int, int]]:
    """(y, x_left, x_right): rows where the tiles either side of the r0/r1
    border and a few steps in are walkable."""
    out = []
    for y in range(y_from, MAP.height):
        if all(MAP.walkable(x, y) for x in range(58, 70)):
            out.append((y, 58, 69))
    return out


async def eventually(pred, timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()
