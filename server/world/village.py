"""The default village map, built deterministically from a few rectangles.

Layout (128 x 96 tiles): two roads cross at the square; the market lies east
of the square, the tavern west, the school north, the smithy south-east;
houses line the roads; a pond in the south-west and fields in the south-east;
trees frame the edge.
"""
from __future__ import annotations

from server.world.tilemap import (DOOR, FIELD, FLOOR, GRASS, PATH, TREE, WALL, WATER, Place,
                                  TileMap)

WIDTH, HEIGHT = 128, 96
ROAD_Y = (47, 48)  # the east-west road
ROAD_X = (63, 64)  # the north-south road


class _Builder:
    def __init__(self) -> None:
        self.tiles = bytearray([GRASS]) * (WIDTH * HEIGHT)
        self.places: list[Place] = []

    def fill(self, x: int, y: int, w: int, h: int, code: int) -> None:
        for yy in range(y, y + h):
            for xx in range(x, x + w):
                self.tiles[yy * WIDTH + xx] = code

    def set(self, x: int, y: int, code: int) -> None:
        self.tiles[y * WIDTH + x] = code

    def area(self, name: str, kind: str, x: int, y: int, w: int, h: int, code: int) -> None:
        self.fill(x, y, w, h, code)
        self.places.append(Place(name, kind, x, y, w, h, (x + w // 2, y + h // 2)))

    def building(self, name: str, kind: str, x: int, y: int, w: int, h: int, door_side: str) -> None:
        """Walls around a floor, one door on the given side, and a path from
        the door to the nearest road."""
        self.fill(x, y, w, h, WALL)
        self.fill(x + 1, y + 1, w - 2, h - 2, FLOOR)
        cx = x + w // 2
        if door_side == "s":
            door, step = (cx, y + h - 1), 1
        else:
            door, step = (cx, y), -1
        self.set(*door, DOOR)
        # walk from the door towards the east-west road
        yy = door[1] + step
        while not (ROAD_Y[0] <= yy <= ROAD_Y[1]) and 0 < yy < HEIGHT - 1:
            if self.tiles[yy * WIDTH + cx] in (GRASS, TREE):
                self.set(cx, yy, PATH)
            elif self.tiles[yy * WIDTH + cx] != PATH:
                break
            yy += step
        self.places.append(Place(name, kind, x, y, w, h, (cx, door[1] - step)))


def village() -> TileMap:
    b = _Builder()
    # trees frame the map
    b.fill(0, 0, WIDTH, 2, TREE)
    b.fill(0, HEIGHT - 2, WIDTH, 2, TREE)
    b.fill(0, 0, 2, HEIGHT, TREE)
    b.fill(WIDTH - 2, 0, 2, HEIGHT, TREE)
    # roads
    b.fill(2, ROAD_Y[0], WIDTH - 4, 2, PATH)
    b.fill(ROAD_X[0], 2, 2, HEIGHT - 4, PATH)
    # the square and the market
    b.area("square", "square", 55, 40, 18, 16, PATH)
    b.area("market", "market", 80, 38, 20, 10, PATH)
    # the notice board stands on the square, by the north-west corner
    b.area("notice board", "board", 57, 42, 2, 1, PATH)
    # buildings north of the road have their door on the south side
    b.building("tavern", "tavern", 34, 32, 16, 12, "s")
    b.building("school", "school", 68, 14, 14, 12, "s")
    b.building("chapel", "chapel", 96, 16, 12, 12, "s")
    for i, x in enumerate((8, 18, 88, 108)):
        b.building(f"house {i + 1}", "house", x, 36, 8, 7, "s")
    # buildings south of the road have their door on the north side
    b.building("smithy", "smithy", 86, 54, 12, 9, "n")
    b.building("bakery", "bakery", 40, 54, 10, 8, "n")
    for i, x in enumerate((8, 18, 28, 70, 104)):
        b.building(f"house {i + 5}", "house", x, 54, 8, 7, "n")
    # nature
    b.area("pond", "pond", 14, 70, 14, 10, WATER)
    # the pond's entry is its northern shore, not the water
    pond = b.places.pop()
    b.places.append(Place(pond.name, pond.kind, pond.x, pond.y, pond.w, pond.h, (pond.x + pond.w // 2, pond.y - 1)))
    b.area("fields", "farm", 92, 70, 26, 16, FIELD)
    b.fill(ROAD_X[1] + 1, 74, 27, 1, PATH)  # a track to the fields
    b.area("grove", "woods", 34, 74, 14, 10, GRASS)
    for (x, y) in ((35, 75), (38, 78), (42, 76), (45, 81), (40, 82), (36, 80), (46, 75)):
        b.set(x, y, TREE)
    b.area("well", "well", 62, 46, 4, 4, PATH)
    return TileMap("village", WIDTH, HEIGHT, b.tiles, b.places)
