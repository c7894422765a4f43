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


async def start_gateway(url: str, world: str = "w", **overrides):
    """A gateway in the test's process on a free port, once it has heard
    from both regions."""
    from server.cluster.gateway import Gateway
    from server.config import ServerConfig

    base = dict(host="127.0.0.1", port=0, npcs=False, join_timeout_s=10.0)
    base.update(overrides)
    gw = Gateway(world, url, REGIONS, ServerConfig(**base), spawn=MAP.places["square"].entry)
    await gw.start()
    assert await eventually(lambda: all(gw._is_alive(r) for r in REGIONS.names()), timeout=5)
    return gw


class StrictMirror:
    """A client's view rebuilt from its messages, refusing what PROTOCOL.md
    says cannot happen: an `enter` of an entity it has, a `move`, `upd` or
    `leave` of one it does not, a `state` tick going back, an ack twice."""

    def __init__(self) -> None:
        self.entities: dict[int, tuple[int, int]] = {}
        self.tick = 0
        self.acks: list[int] = []
        self.errors: list[dict] = []
        self.heard: list[str] = []

    def feed(self, messages) -> None:
        for m in messages:
            d = m.data
            if m.type == "welcome":
                self.entities.clear()
            elif m.type == "state":
                assert d["tick"] >= self.tick, f"state tick {d['tick']} after {self.tick}"
                self.tick = d["tick"]
                for row in d["enter"]:
                    assert row[0] not in self.entities, f"enter of {row[0]}, already in view"
                    self.entities[row[0]] = (row[3], row[4])
                for eid, x, y in d["move"]:
                    assert eid in self.entities, f"move of {eid}, not in view"
                    self.entities[eid] = (x, y)
                for eid, _ in d["upd"]:
                    assert eid in self.entities, f"upd of {eid}, not in view"
                for eid in d["leave"]:
                    assert self.entities.pop(eid, None) is not None, f"leave of {eid}, not in view"
            elif m.type == "ack":
                assert d["seq"] not in self.acks, f"ack {d['seq']} twice"
                self.acks.append(d["seq"])
            elif m.type == "error":
                self.errors.append(d)
            elif m.type == "event" and d["kind"] == "say":
                self.heard.append(d["text"])


async def joined_beside_the_border(gw_url: str, region):
    """ann, joined through a gateway, walked to the tile left of the r0/r1
    border in `region`: (client, entity id, (y, x_left, x_right))."""
    from client_demo.client import HamletClient

    ann = await HamletClient.connect(gw_url)
    eid = (await ann.join("ann"))["id"]
    ann.name = "ann"
    y, xl, xr = walkable_near_border()[0]
    await ann.move((xl, y))
    assert await eventually(lambda: eid in region.entity_ids() and region.game.world.entities[eid].x == xl)
    return ann, eid, (y, xl, xr)
