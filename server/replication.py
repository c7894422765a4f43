"""Replication: what each client is sent each tick.

Area of interest: a client sees the entities in the square of grid cells
around its avatar's cell. A view is built from per-cell pieces: each grid
cell's `CellView` (`id -> (x, y, flags)`) is rebuilt only when something in
that cell changed (the world stamps changed cells), and a `View` is the
tuple of `(cell, CellView)` pairs in range. A client's `known` is the view
it was last sent; the `state` message is the delta against it, computed
only over the cells whose piece is not the very same object in both.

Shared views: all clients in the same cell have the same view. A client
that was sent its cell's previous view and is still in that cell gets
exactly its cell's delta, so that frame is encoded once per cell and the
same bytes go to every such client. Clients that moved cell, joined, or
skipped a round because their state slot was full get a delta of their own.

Events (speech, arrivals, departures) go to the clients within hearing range
of where they happened, encoded once per event.
"""
from __future__ import annotations

from typing import Any, Protocol

from protocol.codec import encode
from server.world.world import World

Cell = tuple[int, int]
CellView = dict[int, tuple[int, int, int]]  # id -> (x, y, flags)
View = tuple[tuple[Cell, CellView], ...]
EMPTY_VIEW: View = ()


class ReplicaClient(Protocol):
    entity: int
    known: View
    known_cell: Cell | None

    def state_slot_free(self) -> bool: ...
    def put_state(self, frame: bytes) -> None: ...
    def send(self, frame: bytes) -> None: ...


class CellCache:
    """Per-cell pieces, rebuilt when the world's change stamp for the cell
    moves; shared by all replicators of a world. At most one entry per cell.
    A region of a cluster adds the entities its neighbours show across the
    border (server/cluster/border_view.py); `entity()` names those too."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._cells: dict[Cell, tuple[int, CellView]] = {}

    def get(self, cell: Cell) -> CellView:
        stamp = self.world.changed_cells.get(cell, 0)
        hit = self._cells.get(cell)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        ents = self.world.entities
        piece = {eid: (ents[eid].x, ents[eid].y, ents[eid].flags) for eid in self.world.grid.cells.get(cell, ())}
        self._cells[cell] = (stamp, piece)
        return piece

    def entity(self, eid: int) -> Any:
        """What an `enter` row names (`kind`, `name`) of an entity in a piece."""
        return self.world.entities[eid]


class Replicator:
    def __init__(self, world: World, view_cells: int = 1, cells: CellCache | None = None) -> None:
        self.world = world
        # The cells around the avatar's cell that are in view (1: a 3 x 3
        # square, see WorldRules.grid_cell).
        self.view_cells = view_cells
        self.cells = cells or CellCache(world)
        self._views: dict[Cell, View] = {}
        self._prev_views: dict[Cell, View] = {}
        self._diffs: dict[Cell, tuple[CellView, CellView, tuple]] = {}  # this round's per-cell diffs
        self.frames_shared = 0
        self.frames_individual = 0

    def view(self, cell: Cell) -> View:
        v = self._views.get(cell)
        if v is None:
            cx, cy = cell
            r = self.view_cells
            get = self.cells.get
            v = tuple(((gx, gy), get((gx, gy))) for gy in range(cy - r, cy + r + 1)
                      for gx in range(cx - r, cx + r + 1))
            prev = self._prev_views.get(cell)
            if prev is not None and all(a[1] is b[1] for a, b in zip(prev, v)):
                v = prev  # nothing in view changed: keep the very same object
            self._views[cell] = v
        return v

    def delta_frame(self, known: View, now: View) -> bytes | None:
        known_map = dict(known)
        now_map = dict(now)
        old: CellView = {}
        new: CellView = {}
        for c, piece in known:
            if now_map.get(c) is not piece:
                old.update(piece)
        for c, piece in now:
            if known_map.get(c) is not piece:
                new.update(piece)
        if not old and not new:
            return None
        entity = self.cells.entity
        enter: list[list[Any]] = []
        move: list[list[int]] = []
        upd: list[list[int]] = []
        for eid, cur in new.items():
            was = old.get(eid)
            if was is None:
                e = entity(eid)
                enter.append([eid, e.kind, e.name, cur[0], cur[1], cur[2]])
            elif was != cur:
                if was[0] != cur[0] or was[1] != cur[1]:
                    move.append([eid, cur[0], cur[1]])
                if was[2] != cur[2]:
                    upd.append([eid, cur[2]])
        leave = [eid for eid in old if eid not in new]
        if not (enter or move or leave or upd):
            return None
        return encode("state", tick=self.world.tick, enter=enter, move=move, leave=leave, upd=upd)

    def _piece_diff(self, cell: Cell, a: CellView, b: CellView) -> tuple[CellView, CellView, dict]:
        """(entered, left, changed) between two versions of one cell's piece,
        computed once per round however many views contain the cell.
        `changed` maps id -> (old, new) for entities in the cell both times."""
        hit = self._diffs.get(cell)
        if hit is not None and hit[0] is a and hit[1] is b:
            return hit[2]
        entered = {eid: cur for eid, cur in b.items() if eid not in a}
        left = {eid: old for eid, old in a.items() if eid not in b}
        changed = {eid: (a[eid], cur) for eid, cur in b.items() if eid in a and a[eid] != cur}
        diff = (entered, left, changed)
        self._diffs[cell] = (a, b, diff)
        return diff

    def shared_delta_frame(self, prev: View, now: View) -> bytes | None:
        """The delta between two views of the same cell, from per-cell diffs:
        its cost follows what changed, not how many entities are in view."""
        entered: CellView = {}
        left: CellView = {}
        changed: dict[int, tuple] = {}
        for (cell, a), (_, b) in zip(prev, now):
            if a is not b:
                e, lft, c = self._piece_diff(cell, a, b)
                entered.update(e)
                left.update(lft)
                changed.update(c)
        for eid in [eid for eid in entered if eid in left]:  # crossed between two cells in view
            changed[eid] = (left.pop(eid), entered.pop(eid))
        if not (entered or left or changed):
            return None
        entity = self.cells.entity
        enter = [[eid, entity(eid).kind, entity(eid).name, cur[0], cur[1], cur[2]] for eid, cur in entered.items()]
        move = [[eid, new[0], new[1]] for eid, (old, new) in changed.items() if old[:2] != new[:2]]
        upd = [[eid, new[2]] for eid, (old, new) in changed.items() if old[2] != new[2]]
        return encode("state", tick=self.world.tick, enter=enter, move=move, leave=list(left), upd=upd)

    def replicate(self, clients: list[ReplicaClient]) -> None:
        self._prev_views, self._views = self._views, {}
        self._diffs = {}
        world = self.world
        shared: dict[Cell, bytes | None] = {}
        for client in clients:
            avatar = world.entities.get(client.entity)
            if avatar is None or not client.state_slot_free():
                continue  # not in the world yet, or still sending: latest state wins next round
            cell = world.grid.where[avatar.id]
            now = self.view(cell)
            prev = self._prev_views.get(cell)
            if client.known_cell == cell and prev is not None and client.known is prev:
                if now is prev:
                    continue  # nothing changed in view
                if cell not in shared:
                    shared[cell] = self.shared_delta_frame(prev, now)
                frame = shared[cell]
                self.frames_shared += frame is not None
            else:
                frame = self.delta_frame(client.known, now)
                self.frames_individual += frame is not None
            client.known = now
            client.known_cell = cell
            if frame is not None:
                client.put_state(frame)

    def deliver_events(self, by_entity: dict[int, ReplicaClient]) -> None:
        world = self.world
        for ev in world.events:
            frame = encode("event", **{k: v for k, v in ev.items() if k not in ("x", "y")})
            for e in world.hearers(ev["x"], ev["y"]):
                client = by_entity.get(e.id)
                if client is not None:
                    client.send(frame)
