"""Ghosts: the entities a region sees in its neighbours' cells next to its
border, read-only, from the cell messages the neighbours publish. Each
message carries a cell's whole content (latest wins, so a lost or repeated
message heals with the next), and a cell its owner stopped publishing
(a region that died) is forgotten after `STALE_S`.
"""
from __future__ import annotations

from typing import Any

Cell = tuple[int, int]
Row = tuple[int, str, str, int, int, int]  # id, kind, name, x, y, flags

# A neighbour republishes every border cell at least once a second; three
# missed refreshes mean it is gone (its ghosts vanish; a standby that takes
# over publishes them again).
STALE_S = 3.0
# Rows kept per cell: a 16 x 16 cell of walkable tiles cannot hold many
# more entities standing apart; the bound keeps a faulty peer from growing us.
MAX_ROWS = 1024


class Ghosts:
    def __init__(self, watched: list[Cell]) -> None:
        self.watched = set(watched)
        self.cells: dict[Cell, tuple[int, float, list[Row]]] = {}  # cell -> (tick, received, rows)

    def update(self, cell: Cell, tick: int, rows: list[Any], now: float) -> bool:
        """Take a cell message; False (and nothing changed) if it is not a
        watched cell, is older than what we have, or is malformed."""
        if cell not in self.watched:
            return False
        held = self.cells.get(cell)
        if held is not None and tick < held[0]:
            return False  # out of order: an older picture of the cell
        if not isinstance(rows, list) or len(rows) > MAX_ROWS:
            return False
        try:
            clean = [(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]
        except (TypeError, ValueError, IndexError):
            return False
        self.cells[cell] = (tick, now, clean)
        return True

    def expire(self, now: float) -> None:
        for cell in [c for c, (_, at, _) in self.cells.items() if now - at > STALE_S]:
            del self.cells[cell]

    def rows(self) -> list[Row]:
        return [r for _, _, rows in self.cells.values() for r in rows]

    def ids(self) -> set[int]:
        return {r[0] for r in self.rows()}
