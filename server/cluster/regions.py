"""The region map: the world's AOI cells (WorldRules.grid_cell tiles square)
split into named rectangles, each owned by one region process.

Pure data and arithmetic: which region owns a tile or a cell, which of a
region's cells a neighbour can see (a client sees its cell and the cells
around it), and which foreign cells a region must watch. No I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

Cell = tuple[int, int]

# Region names end up in NATS subjects and KV keys: keep them to a safe alphabet.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    index: int           # position in the map: gives the region its id ranges
    x0: int              # cells [x0, x1) x [y0, y1)
    y0: int
    x1: int
    y1: int

    def has_cell(self, cell: Cell) -> bool:
        return self.x0 <= cell[0] < self.x1 and self.y0 <= cell[1] < self.y1

    def cells(self) -> list[Cell]:
        return [(x, y) for y in range(self.y0, self.y1) for x in range(self.x0, self.x1)]


class RegionMap:
    def __init__(self, cell: int, width_cells: int, height_cells: int, regions: list[Region]) -> None:
        self.cell = cell
        self.width_cells = width_cells
        self.height_cells = height_cells
        self.regions = {r.name: r for r in regions}
        self._owner: dict[Cell, str] = {}
        for r in regions:
            if not _NAME.match(r.name):
                raise ValueError(f"region name {r.name!r}: lowercase letters, digits, '_' and '-', 1-32")
            for c in r.cells():
                if not (0 <= c[0] < width_cells and 0 <= c[1] < height_cells):
                    raise ValueError(f"region {r.name} reaches past the map at cell {c}")
                if c in self._owner:
                    raise ValueError(f"cell {c} is in both {self._owner[c]} and {r.name}")
                self._owner[c] = r.name
        missing = [(x, y) for y in range(height_cells) for x in range(width_cells) if (x, y) not in self._owner]
        if missing:
            raise ValueError(f"cells {missing[:4]}... belong to no region")

    @classmethod
    def columns(cls, n: int, width_tiles: int, height_tiles: int, cell: int = 16) -> RegionMap:
        """`n` regions side by side, named r0..r(n-1), splitting the map's
        columns of cells as evenly as they go."""
        wc, hc = -(-width_tiles // cell), -(-height_tiles // cell)
        if not 1 <= n <= wc:
            raise ValueError(f"a map {wc} cells wide splits into 1 to {wc} regions, not {n}")
        bounds = [round(i * wc / n) for i in range(n + 1)]
        return cls(cell, wc, hc, [Region(f"r{i}", i, bounds[i], 0, bounds[i + 1], hc) for i in range(n)])

    def names(self) -> list[str]:
        return list(self.regions)

    def cell_of(self, x: int, y: int) -> Cell:
        return (x // self.cell, y // self.cell)

    def owner_of_cell(self, cell: Cell) -> str | None:
        return self._owner.get(cell)

    def owner_of(self, x: int, y: int) -> str | None:
        return self._owner.get(self.cell_of(x, y))

    def _ring(self, cell: Cell) -> list[Cell]:
        cx, cy = cell
        return [(cx + dx, cy + dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                if (dx or dy) and (cx + dx, cy + dy) in self._owner]

    def border_cells(self, region: str) -> dict[Cell, set[str]]:
        """The region's cells that a neighbour's clients can see, each with
        the regions that see it: what the region publishes."""
        out: dict[Cell, set[str]] = {}
        for c in self.regions[region].cells():
            others = {self._owner[n] for n in self._ring(c)} - {region}
            if others:
                out[c] = others
        return out

    def watched_cells(self, region: str) -> list[Cell]:
        """Foreign cells next to the region's own: what it subscribes to."""
        mine = self.regions[region]
        return sorted({n for c in mine.cells() for n in self._ring(c) if not mine.has_cell(n)})

    def neighbours(self, region: str) -> set[str]:
        return {self._owner[c] for c in self.watched_cells(region)}
