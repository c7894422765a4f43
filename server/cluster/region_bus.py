"""What a region says and hears over NATS (see `wire.py` for the
subjects): sending a departed entity to its new owner until it confirms,
answering arrivals (a player or walker taken in at once, between ticks:
region_systems.arrive_now; an NPC queued for the next tick), taking in the neighbours'
border cells (ghosts) and speech, and publishing its own (with its
entities in transit beside them). Mixed into
`RegionNode`, whose state it uses (`nc`, `hlog`, `game`, queues).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from server.cluster import wire
from server.cluster.ghosts import MAX_ROWS

log = logging.getLogger("hamlet.region")

# How long the source waits for a destination's answer before sending again.
HANDOFF_TIMEOUT_S = 2.0
# Border cells are republished whole at least this often (ticks), so a
# restarted neighbour sees them within a second.
REFRESH_TICKS = 20
# Arrivals waiting for the next tick: a border crossed by a crowd at once
# is a few hundred; past this the sender is told to retry (nothing lost).
MAX_INCOMING = 4096


class RegionBus:
    def _answer(self, reply: Any, msg: dict[str, Any]) -> None:
        if reply is not None and self.nc is not None and not self.nc.is_closed:
            self._spawn(reply.respond(wire.pack(msg)))

    # -- NATS ------------------------------------------------------------------------
    async def _deliver(self, hid: str) -> None:
        from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

        wait = 0.05
        while self.running and hid in self.hlog.outgoing:
            dest, state = self.hlog.outgoing[hid]
            msg = wire.pack({"t": "handoff", "id": hid, "from": self.region.name, "state": state})
            try:
                reply = await self.nc.request(wire.handoff_subject(self.world_name, dest), msg,
                                              timeout=HANDOFF_TIMEOUT_S)
                answer = wire.unpack(reply.data, ("ok", "refused", "busy"))
            except (NoRespondersError, NatsTimeout, asyncio.TimeoutError, wire.WireError, ConnectionError) as exc:
                log.debug("handoff %s to %s: %r; sending again", hid, dest, exc)
                await asyncio.sleep(wait)
                wait = min(1.0, wait * 2)
                continue
            if answer["t"] == "busy":
                await asyncio.sleep(wait)
                continue
            if answer["t"] == "refused":
                log.warning("handoff %s refused by %s: %s", hid, dest, answer.get("why"))
                self.settled.append(hid)  # put back into our world at the next tick boundary
            else:
                tick = answer.get("tick")
                self._confirmed(hid, tick if isinstance(tick, int) else None)
            return

    def _confirmed(self, hid: str, tick: int | None = None) -> None:
        """The destination committed the arrival (at its `tick`): settled
        now, between ticks (if we die before this is written, we send the
        state again and the destination confirms it again)."""
        if hid not in self.hlog.outgoing:
            return
        dest, state = self.hlog.outgoing[hid]
        self.hlog.settle_now(hid, state["id"], dest, state["hop"])
        self.border_view.arrived(state["id"], tick)
        sent = self._sent_at.pop(hid, None)
        if sent is not None:
            took = (time.perf_counter() - sent) * 1000
            self.handoff_ms.append(took)
            self.handoff_window.append(took)

    async def _on_handoff(self, msg) -> None:
        try:
            m = wire.unpack(msg.data, ("handoff",))
        except wire.WireError as exc:
            await msg.respond(wire.pack({"t": "refused", "why": str(exc)[:200]}))
            return
        if not self.running:
            await msg.respond(wire.pack({"t": "busy"}))
            return
        state = m.get("state")
        if not (isinstance(state, dict) and state.get("kind") == "npc"):
            # between ticks (a tick never yields to the loop): taken in and
            # confirmed now, not at the next tick (up to a tick's wait)
            self.arrive_now(m, msg)
            return
        if len(self.incoming) >= MAX_INCOMING:
            await msg.respond(wire.pack({"t": "busy"}))
            return
        # an NPC's mind (its memories, plans) is saved with the tick's
        # systems: it arrives at the next tick's boundary
        self.incoming.append((m, msg))

    async def _on_cell(self, msg) -> None:
        try:
            m = wire.unpack(msg.data, ("cell", "say"))
            parts = msg.subject.split(".")
            cell = (int(parts[-2]), int(parts[-1]))
        except (wire.WireError, ValueError):
            return  # a neighbour's garbage: nothing to answer, nothing changed
        if m["t"] == "cell":
            if isinstance(m.get("tick"), int):
                self.ghosts.update(cell, m["tick"], m.get("rows"), time.monotonic(), m.get("transit"))
        elif cell in self.ghosts.watched and isinstance(m.get("ev"), dict):
            ev = m["ev"]
            if isinstance(ev.get("x"), int) and isinstance(ev.get("y"), int) and isinstance(ev.get("text"), str):
                self.foreign_speech.append(ev)

    def _publish_speech(self, said: list[dict[str, Any]]) -> None:
        for ev in said:
            cell = self.game.world.grid.cell_of(ev["x"], ev["y"])
            self._spawn(self.nc.publish(wire.cell_subject(self.world_name, cell), wire.pack({"t": "say", "ev": ev})))

    def _publish_cells(self) -> None:
        """Each border cell whose picture changed (every one, once a second):
        its entities, and ours in transit that left from beside it."""
        world = self.game.world
        full = world.tick % REFRESH_TICKS == 0
        transit = self._transit_rows()
        for cell in self.border:
            moving = transit.get(cell, [])
            stamp = (world.changed_cells.get(cell, 0), [r[0] for r in moving])
            if not full and self._published.get(cell) == stamp:
                continue
            self._published[cell] = stamp
            ents = world.entities
            rows = [[eid, ents[eid].kind, ents[eid].name, ents[eid].x, ents[eid].y, ents[eid].flags]
                    for eid in sorted(world.grid.cells.get(cell, ()))]
            self._spawn(self.nc.publish(wire.cell_subject(self.world_name, cell), wire.pack(
                {"t": "cell", "tick": world.tick, "rows": rows, "transit": moving})))

    def _transit_rows(self) -> dict[tuple[int, int], list[list[Any]]]:
        """Our entities in transit (sent, not confirmed), each in the picture
        of a border cell of ours that its destination watches, beside the
        tile it stepped onto: the destination shows it there until it
        arrives (border_view.py), so its clients see no gap."""
        out: dict[tuple[int, int], list[list[Any]]] = {}
        for dest, s in sorted(self.hlog.outgoing.values(), key=lambda o: o[1]["id"]):
            cell = self._beside(dest, self.regions.cell_of(s["x"], s["y"]))
            rows = out.setdefault(cell, []) if cell is not None else None
            if rows is not None and len(rows) < MAX_ROWS:  # past it, picked up at arrival
                rows.append([s["id"], s["kind"], s["name"], s["x"], s["y"], s["flags"]])
        return out

    def _beside(self, dest: str, cell: tuple[int, int]) -> tuple[int, int] | None:
        key = (dest, cell)
        if key not in self._beside_cache:  # at most one entry per cell and region
            near = [c for c, seen_by in self.border.items()
                    if dest in seen_by and max(abs(c[0] - cell[0]), abs(c[1] - cell[1])) == 1]
            self._beside_cache[key] = min(near) if near else None
        return self._beside_cache[key]
