"""The tile map: terrain, named places, walkability and path finding.

A map is immutable once built. `village()` builds the default village
deterministically; `to_wire()` is what a client receives in `welcome`.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

# Terrain codes as sent to clients (one byte per tile, row-major).
GRASS, PATH, WATER, WALL, FLOOR, TREE, DOOR, FIELD = range(8)
TERRAIN_NAMES = ("grass", "path", "water", "wall", "floor", "tree", "door", "field")
WALKABLE = frozenset({GRASS, PATH, FLOOR, DOOR, FIELD})

DIRECTIONS = {
    "n": (0, -1), "s": (0, 1), "e": (1, 0), "w": (-1, 0),
    "ne": (1, -1), "nw": (-1, -1), "se": (1, 1), "sw": (-1, 1),
}
_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1))

# A* gives up after expanding this many tiles: a little more than the whole
# default map, so a legal target is always found while a request for an
# unreachable tile on a huge map cannot stall the tick.
MAX_PATH_EXPANSION = 20_000


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    kind: str  # square, market, tavern, house, school, smithy, pond, farm, ...
    x: int
    y: int
    w: int
    h: int
    entry: tuple[int, int]  # a walkable tile where visitors go

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h


class TileMap:
    def __init__(self, name: str, width: int, height: int, tiles: bytearray,
                 places: list[Place]) -> None:
        assert len(tiles) == width * height
        self.name = name
        self.width = width
        self.height = height
        self.tiles = bytes(tiles)
        self.places = {p.name: p for p in places}
        self._walk = bytes(1 if t in WALKABLE else 0 for t in self.tiles)

    def terrain(self, x: int, y: int) -> int:
        return self.tiles[y * self.width + x]

    def in_bounds(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height

    def walkable(self, x: int, y: int) -> bool:
        return self.in_bounds(x, y) and self.tiles[y * self.width + x] in WALKABLE

    def place_at(self, x: int, y: int) -> Place | None:
        for place in self.places.values():
            if place.contains(x, y):
                return place
        return None

    def find_path(self, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]] | None:
        """Shortest 4-connected path from start (excluded) to goal (included),
        or None when the goal is blocked or unreachable. A* over flat tile
        indices: this runs for every move of every client, so it is kept lean."""
        if not self.walkable(*goal):
            return None
        if start == goal:
            return []
        w = self.width
        walk = self._walk
        gx, gy = goal
        s_idx, g_idx = start[1] * w + start[0], gy * w + gx
        came = {s_idx: -1}
        cost = {s_idx: 0}
        frontier = [(abs(start[0] - gx) + abs(start[1] - gy), 0, s_idx)]
        pop, push = heapq.heappop, heapq.heappush
        expanded = 0
        while frontier:
            _, g, idx = pop(frontier)
            if idx == g_idx:
                path = []
                while idx != s_idx:
                    path.append((idx % w, idx // w))
                    idx = came[idx]
                path.reverse()
                return path
            if g > cost[idx]:
                continue
            expanded += 1
            if expanded > MAX_PATH_EXPANSION:
                return None
            x = idx % w
            g1 = g + 1
            for nxt, ok in ((idx + 1, x + 1 < w), (idx - 1, x > 0), (idx + w, True), (idx - w, True)):
                if ok and 0 <= nxt < len(walk) and walk[nxt] and g1 < cost.get(nxt, 1 << 30):
                    cost[nxt] = g1
                    came[nxt] = idx
                    nx, ny = nxt % w, nxt // w
                    push(frontier, (g1 + abs(nx - gx) + abs(ny - gy), g1, nxt))
        return None

    def to_wire(self) -> dict:
        return {
            "name": self.name,
            "w": self.width,
            "h": self.height,
            "tiles": self.tiles,
            "terrain": list(TERRAIN_NAMES),
            "walkable": sorted(WALKABLE),
            "places": [[p.name, p.kind, p.x, p.y, p.w, p.h, p.entry[0], p.entry[1]]
                       for p in self.places.values()],
        }
