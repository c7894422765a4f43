"""Ghosts: the entities a region sees in its neighbours' cells next to its
border, read-only, from the cell messages the neighbours publish. Each
message is a picture of one cell at one of its owner's ticks: the
entities standing in it, and those that left it for another region and
are not yet confirmed there (`transit`, at the tile they stepped onto).
Latest wins, so a lost or repeated message heals with the next, and a cell
its owner stopped publishing (a region that died) is forgotten after
`STALE_S`. What clients are shown of them: border_view.py.
"""
from __future__ import annotations

from typing import Any, NamedTuple

Cell = tuple[int, int]


class Row(NamedTuple):
    id: int
    kind: str
    name: str
    x: int
    y: int
    flags: int


class Picture(NamedTuple):
    tick: int            # the owner's tick it was taken at
    received: float      # time.monotonic() here
    rows: list[Row]      # standing in the cell
    transit: list[Row]   # left it for another region, not yet confirmed there


# A neighbour republishes every border cell at least once a second; three
# missed refreshes mean it is gone (its ghosts vanish; a standby that takes
# over publishes them again).
STALE_S = 3.0
# Rows kept per cell (and transit rows per picture): a 16 x 16 cell of
# walkable tiles cannot hold many more entities standing apart; the bound
# keeps a faulty peer from growing us.
MAX_ROWS = 1024


def _clean(rows: Any) -> list[Row]:
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise ValueError("bad rows")
    out = [Row(int(r[0]), str(r[1])[:16], str(r[2])[:32], int(r[3]), int(r[4]), int(r[5])) for r in rows]
    if any(r.x < 0 or r.y < 0 for r in out):
        raise ValueError("bad position")
    return out


class Ghosts:
    def __init__(self, watched: list[Cell]) -> None:
        self.watched = set(watched)
        self.cells: dict[Cell, Picture] = {}
        self.version = 0  # moves with every change: border_view.py rebuilds its pieces then

    def update(self, cell: Cell, tick: int, rows: Any, now: float, transit: Any = None) -> bool:
        """Take a cell message; False (and nothing changed) if it is not a
        watched cell, is older than what we have, or is malformed."""
        if cell not in self.watched:
            return False
        held = self.cells.get(cell)
        if held is not None and tick < held.tick:
            return False  # out of order: an older picture of the cell
        try:
            clean, moving = _clean(rows), _clean(transit if transit is not None else [])
        except (TypeError, ValueError, IndexError):
            return False
        if held is None or held.rows != clean or held.transit != moving or held.tick != tick:
            self.version += 1
        self.cells[cell] = Picture(tick, now, clean, moving)
        return True

    def expire(self, now: float) -> None:
        for cell in [c for c, p in self.cells.items() if now - p.received > STALE_S]:
            del self.cells[cell]
            self.version += 1

    def rows(self) -> list[Row]:
        return [r for p in self.cells.values() for r in p.rows]

    def ids(self) -> set[int]:
        return {r[0] for r in self.rows()}
