"""What a region's clients see across its borders: per cell, the entities
there that this region's world does not hold, as pieces for the replicator
(server/replication.py), so a client near a border sees them enter, move,
change flags and leave exactly like local ones, from the same deltas.

Who is shown where, in order of precedence (an id is shown once):

1. this world's own entities;
2. entities this region handed off lately (`left`), at the tile they
   stepped onto, until the destination's pictures show them (a picture
   taken at or after the tick they left holds them), or a picture of that
   cell taken at or after their arrival there (the destination's tick, in
   its confirmation) lacks them (they moved on), or the destination's
   picture of that cell is older than `STALE_S`: so an entity crossing the
   border under a client's eyes moves on, with no leave and enter;
3. the neighbours' pictures (ghosts.py): an entity in several, the latest
   (a resident row before a transit row of the same tick). A transit row
   shows an entity on its way to us where it stepped, until it arrives (1).

Forgotten pictures (their owner quiet `STALE_S`) take their entities out
of the view: the clients are sent `leave`.
"""
from __future__ import annotations

import time
from typing import Any

from server.cluster.ghosts import STALE_S, Ghosts, Row
from server.replication import CellCache, CellView
from server.world.world import World

Cell = tuple[int, int]

# Entities handed off and not yet shown by their destination: a crowd
# crossing at once is a few hundred (as many as MAX_INCOMING arrivals);
# past the bound the oldest go (a client sees one leave, and enter when
# the destination's picture shows it).
MAX_DEPARTED = 4096


class Departed:
    __slots__ = ("row", "tick", "cell", "since", "arrival")

    def __init__(self, row: Row, tick: int, cell: Cell, since: float) -> None:
        self.row = row
        self.tick = tick                   # ours, when it left
        self.cell = cell                   # the destination's cell it stepped onto
        self.since = since
        self.arrival: int | None = None    # the destination's tick of its arrival, once confirmed


class BorderView:
    def __init__(self, ghosts: Ghosts, cell: int) -> None:
        self.ghosts = ghosts
        self.cell = cell
        self.departed: dict[int, Departed] = {}
        self.pieces: dict[Cell, CellView] = {}  # cell -> id -> (x, y, flags), only cells with someone
        self.shown: dict[int, Row] = {}         # every id in the pieces, for `enter` rows
        self.version = 0
        self._built: tuple[int, int] | None = None

    def left(self, row: Row, tick: int, now: float) -> None:
        """One of ours stepped onto `row`'s tile, another region's, at `tick`."""
        self.departed[row.id] = Departed(row, tick, (row.x // self.cell, row.y // self.cell), now)
        while len(self.departed) > MAX_DEPARTED:
            del self.departed[next(iter(self.departed))]
        self.version += 1

    def arrived(self, eid: int, tick: int | None) -> None:
        """Its destination confirmed it, at its `tick` (None: not said)."""
        d = self.departed.get(eid)
        if d is not None:
            held = self.ghosts.cells.get(d.cell)
            d.arrival = tick if tick is not None else (held.tick + 1 if held is not None else 0)
            self.version += 1

    def changed(self) -> None:
        """Our world took an entity in (an arrival, one refused back)."""
        self.version += 1

    def refresh(self, world: World, now: float) -> None:
        """Rebuild the pieces if anything they come from changed; a piece
        whose content did not change stays the very same object."""
        key = (self.ghosts.version, self.version)
        if key == self._built and not self.departed:
            return
        self._built = key
        local = world.entities
        best: dict[int, tuple[int, int, Row]] = {}  # id -> (tick, resident, row)
        for pic in self.ghosts.cells.values():
            for resident, rows in ((1, pic.rows), (0, pic.transit)):
                for r in rows:
                    held = best.get(r.id)
                    if held is None or (pic.tick, resident) > held[:2]:
                        best[r.id] = (pic.tick, resident, r)
        for eid, d in list(self.departed.items()):
            held = best.get(eid)
            there = self.ghosts.cells.get(d.cell)  # the destination's picture of where it stepped
            if (eid in local or (held is not None and held[1] and held[0] >= d.tick)
                    or (d.arrival is not None and there is not None and there.tick >= d.arrival)
                    or now - max(d.since, there.received if there is not None else 0.0) > STALE_S):
                del self.departed[eid]
                continue
            best[eid] = (0, 2, d.row)
        shown = {eid: r for eid, (_, _, r) in best.items() if eid not in local}
        pieces: dict[Cell, CellView] = {}
        for r in shown.values():
            pieces.setdefault((r.x // self.cell, r.y // self.cell), {})[r.id] = (r.x, r.y, r.flags)
        old = self.pieces
        self.pieces = {c: old[c] if old.get(c) == p else p for c, p in pieces.items()}
        self.shown = shown


class BorderCells(CellCache):
    """The replicators' cell cache of a region: each cell's piece is its own
    entities and those of the border view standing there."""

    def __init__(self, world: World, view: BorderView) -> None:
        super().__init__(world)
        self.view = view
        self._tick = -1
        self._merged: dict[Cell, tuple[CellView, CellView, CellView]] = {}  # one entry per cell

    def get(self, cell: Cell) -> CellView:
        if self._tick != self.world.tick:  # once a tick, after the departures (cluster_out)
            self._tick = self.world.tick
            self.view.refresh(self.world, time.monotonic())
        local = super().get(cell)
        extra = self.view.pieces.get(cell)
        if extra is None:
            return local
        if not local:
            return extra
        hit = self._merged.get(cell)
        if hit is not None and hit[0] is local and hit[1] is extra:
            return hit[2]
        merged = {**extra, **local}
        self._merged[cell] = (local, extra, merged)
        return merged

    def entity(self, eid: int) -> Any:
        e = self.world.entities.get(eid)
        return e if e is not None else self.view.shown[eid]
