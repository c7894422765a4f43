"""Replication: what each client is sent each tick.

Area of interest: a client sees the entities in the square of grid cells
around its avatar's cell. Each client's `known` is the view it was last sent
(an immutable dict `id -> (x, y, flags)`); the `state` message is the delta
between that and its current view.

Shared views: all clients in the same cell have the same view. A client that
was sent its cell's view last tick and is still in that cell gets exactly its
cell's delta, so that frame is encoded once per cell and the same bytes are
handed to every such client. Clients that moved cell, joined, or skipped a
tick because their state slot was still full get a delta of their own.

Events (speech, arrivals, departures) go to the clients within hearing range
of where they happened, encoded once per event.
"""
from __future__ import annotations

from typing import Any, Protocol

from protocol.codec import encode
from server.world.world import World

View = dict[int, tuple[int, int, int]]  # id -> (x, y, flags)
EMPTY_VIEW: View = {}


class ReplicaClient(Protocol):
    entity: int
    known: View
    known_cell: tuple[int, int] | None

    def state_slot_free(self) -> bool: ...
    def put_state(self, frame: bytes) -> None: ...
    def send(self, frame: bytes) -> None: ...


class Replicator:
    def __init__(self, world: World, view_cells: int = 2) -> None:
        self.world = world
        # 2 cells of 8 tiles each side: a 40 x 40 tile window, a little more
        # than a 1280 x 720 browser view at 32 px per tile.
        self.view_cells = view_cells
        self._views: dict[tuple[int, int], View] = {}
        self._prev_views: dict[tuple[int, int], View] = {}
        self._since = -1
        self._last_run = -1
        self.frames_shared = 0
        self.frames_individual = 0

    def begin(self) -> None:
        self._prev_views, self._views = self._views, {}
        self._since, self._last_run = self._last_run, self.world.change_count

    def _unchanged(self, cell: tuple[int, int]) -> bool:
        """True when nothing in the cell's view changed since the last run."""
        changed = self.world.changed_cells
        since = self._since
        cx, cy = cell
        r = self.view_cells
        for gy in range(cy - r, cy + r + 1):
            for gx in range(cx - r, cx + r + 1):
                if changed.get((gx, gy), -1) > since:
                    return False
        return True

    def view(self, cell: tuple[int, int]) -> View:
        v = self._views.get(cell)
        if v is None:
            prev = self._prev_views.get(cell)
            if prev is not None and self._unchanged(cell):
                self._views[cell] = prev  # nothing in view changed: the same object
                return prev
            ents = self.world.entities
            v = {}
            for eid in self.world.grid.around(cell, self.view_cells):
                e = ents[eid]
                v[eid] = (e.x, e.y, e.flags)
            self._views[cell] = v
        return v

    def delta_frame(self, known: View, now: View) -> bytes | None:
        ents = self.world.entities
        enter: list[list[Any]] = []
        move: list[list[int]] = []
        upd: list[list[int]] = []
        for eid, cur in now.items():
            old = known.get(eid)
            if old is None:
                e = ents[eid]
                enter.append([eid, e.kind, e.name, cur[0], cur[1], cur[2]])
            elif old != cur:
                if old[0] != cur[0] or old[1] != cur[1]:
                    move.append([eid, cur[0], cur[1]])
                if old[2] != cur[2]:
                    upd.append([eid, cur[2]])
        leave = [eid for eid in known if eid not in now]
        if not (enter or move or leave or upd):
            return None
        return encode("state", tick=self.world.tick, enter=enter, move=move, leave=leave, upd=upd)

    def replicate(self, clients: list[ReplicaClient]) -> None:
        self.begin()
        world = self.world
        shared: dict[tuple[int, int], bytes | None] = {}
        for client in clients:
            avatar = world.entities.get(client.entity)
            if avatar is None or not client.state_slot_free():
                continue  # not in the world yet, or still sending: latest state wins next tick
            cell = world.grid.cell_of(avatar.x, avatar.y)
            now = self.view(cell)
            prev = self._prev_views.get(cell)
            if client.known_cell == cell and prev is not None and client.known is prev:
                if now is prev:
                    continue  # nothing changed in view
                if cell not in shared:
                    shared[cell] = self.delta_frame(prev, now)
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
