"""A spatial hash grid: which entities are in which cell, for area-of-interest
and hearing queries in time proportional to what is nearby."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator


class SpatialGrid:
    def __init__(self, cell: int) -> None:
        self.cell = cell
        self.cells: dict[tuple[int, int], set[int]] = defaultdict(set)
        self.where: dict[int, tuple[int, int]] = {}

    def cell_of(self, x: int, y: int) -> tuple[int, int]:
        return (x // self.cell, y // self.cell)

    def insert(self, eid: int, x: int, y: int) -> None:
        c = self.cell_of(x, y)
        self.cells[c].add(eid)
        self.where[eid] = c

    def remove(self, eid: int) -> None:
        c = self.where.pop(eid, None)
        if c is not None:
            members = self.cells[c]
            members.discard(eid)
            if not members:
                del self.cells[c]

    def move(self, eid: int, x: int, y: int) -> None:
        c = self.cell_of(x, y)
        old = self.where.get(eid)
        if old == c:
            return
        if old is not None:
            members = self.cells[old]
            members.discard(eid)
            if not members:
                del self.cells[old]
        self.cells[c].add(eid)
        self.where[eid] = c

    def around(self, cell: tuple[int, int], radius: int) -> Iterator[int]:
        """Entity ids in the square of cells within `radius` cells of `cell`."""
        cx, cy = cell
        cells = self.cells
        for gy in range(cy - radius, cy + radius + 1):
            for gx in range(cx - radius, cx + radius + 1):
                members = cells.get((gx, gy))
                if members:
                    yield from members

    def near(self, x: int, y: int, dist: int) -> Iterator[int]:
        """Candidate ids within `dist` tiles (a superset; callers filter)."""
        radius = dist // self.cell + 1
        return self.around(self.cell_of(x, y), radius)
