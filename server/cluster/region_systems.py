"""The systems a region adds to the one-process tick (`Game.systems`),
mixed into `RegionNode`, whose state they use (`game`, `hlog`, queues):

    cluster_in   (before inputs)  entities refused back by their destination,
                                  arrivals from neighbours (with their players'
                                  sessions and their NPCs' minds, region_npcs.py),
                                  resumes, in-process requests
    cluster_out  (after simulate) entities standing on a foreign cell leave
                                  (taken out, an NPC with its mind, logged,
                                  sent after the commit);
                                  speech in border cells and the border cells
                                  themselves go out after the commit
    cluster_hear (after replicate) speech from across a border reaches the
                                  hearers here (players' clients, NPCs'
                                  minds); ghosts of quiet neighbours are
                                  forgotten

The world's resolver of entities outside it (`World.foreign`) is
`seen_across`: whom the border view shows, so a person or an NPC here can
address someone just across the border.

Each is a world change at a tick boundary, logged in the tick's
transaction, so a region's world replays bit for bit (region_world.py).
"""
from __future__ import annotations

import logging
import time
from typing import Any

from server.cluster import entity_state
from server.cluster.ghosts import Row
from server.cluster.walkers import PREFIX
from server.persistence import Account
from server.trade import offer_frame
from server.world.inputs import Join
from server.world.world import Rejection

log = logging.getLogger("hamlet.region")


class RegionSystems:
    def _sys_in(self, now: float) -> None:
        game, world = self.game, self.game.world
        self.hlog.begin_tick(world.tick)
        while self.settled:  # refused by their destination: back here, at a tick boundary
            hid = self.settled.popleft()
            if hid not in self.hlog.outgoing:
                continue
            dest, state = self.hlog.outgoing[hid]
            state = dict(state, path=[], **dict(zip(("x", "y"), self._home_tile(state["x"], state["y"]))))
            state.pop("sess", None)  # its gateway saw it leave: the player resumes with the token
            entity_state.put_in(world, state)
            if self.npcs is not None and state["kind"] == "npc":
                self.npcs.came_back(state)
            self.border_view.changed()
            self.hlog.record("back", hid, state["id"], dest, state["hop"], state)
            self._sent_at.pop(hid, None)
            acct = state.get("account")
            if acct:
                account = Account(*acct[:4], state["x"], state["y"])
                game.sessions.dirty_accounts.append(account)
                if state["kind"] == "player" and not state["name"].startswith(PREFIX):
                    game.sessions.attach(account, None)  # away: its owner may resume
                    game.sessions.detach(state["id"], time.monotonic())
        while self.incoming:
            self._arrive(*self.incoming.popleft())
        self.admit_resumes()
        while self.requests:
            make, fut = self.requests.popleft()
            inp = make(world)
            result = inp if isinstance(inp, Rejection) else game.apply(inp)
            if isinstance(result, Rejection):
                fut.set_result(result)
                continue
            if isinstance(inp, Join):
                account, token = game.sessions.create_account(inp.name, inp.entity, inp.x, inp.y)
                result = (inp.entity, token)
            self.after_replicated(lambda fut=fut, result=result: fut.done() or fut.set_result(result))

    def _arrive(self, msg: dict[str, Any], reply: Any) -> None:
        """An arrival at this tick's boundary: confirmed after its commit."""
        answer = self._take_in(msg, self.game.world.tick)
        if answer["t"] == "ok":
            self.after_replicated(lambda: self._answer(reply, answer))
        else:
            self._answer(reply, answer)

    def arrive_now(self, msg: dict[str, Any], reply: Any) -> None:
        """An arrival between ticks, at the next tick's boundary (nothing
        else happens between ticks: the tick runs whole on the event loop):
        applied, committed in a transaction of its own and confirmed at
        once (with replication, once its record is acknowledged), rather
        than waiting up to a tick for the tick's. Its rows
        carry the next tick's number; `last_tick` says the world's tick, all
        of which is committed; a restart applies such rows after its replay
        (region_world.py)."""
        game, world = self.game, self.game.world
        self.hlog.begin_tick(world.tick + 1)
        answer = self._take_in(msg, world.tick + 1)
        if answer["t"] == "ok" and not answer.get("dup"):
            try:
                self.db.commit_tick(world.tick, [], [], game.sessions.take_dirty(),
                                    [store for store in game.stores if store.has_changes()])
            except Exception:  # as a tick's failed commit: stop, write nothing more
                log.exception("region %s: committing an arrival failed; stopping", self.region.name)
                self.halt_on_error()
                return
        if self.publisher is not None and answer["t"] == "ok":  # confirmed once its record is kept
            eid = None if answer.get("dup") else msg["state"]["id"]
            self._spawn(self.answer_when_replicated(reply, answer, eid, self.db.conn.n))
            return
        self._answer(reply, answer)
        if answer["t"] == "ok" and not answer.get("dup"):
            self.flush_arrived(msg["state"]["id"])

    def _take_in(self, msg: dict[str, Any], tick: int) -> dict[str, Any]:
        """Check and put in an arriving entity, logged at `tick`'s boundary;
        the answer for its source (`ok` with the tick it is ours from, or
        `refused` with nothing changed)."""
        world = self.game.world
        hid, state = msg.get("id"), msg.get("state")
        try:
            if not isinstance(hid, str) or len(hid) > 128:
                raise entity_state.BadState("bad handoff id")
            if entity_state.seen(state, self.hlog.hops):  # before any other check: it may be here now
                return {"t": "ok", "dup": True, "tick": tick}  # applied before: confirm again, change nothing
            state = entity_state.check(world, state)
            if self.regions.owner_of(state["x"], state["y"]) != self.region.name:
                raise entity_state.BadState(f"({state['x']}, {state['y']}) is not in region {self.region.name}")
            if state["kind"] == "npc" and self.npcs is None:
                raise entity_state.BadState(f"region {self.region.name} runs no NPCs (start it with --npcs)")
            mind = self.npcs.check_arrival(state) if self.npcs is not None else None
        except entity_state.BadState as exc:
            return {"t": "refused", "why": str(exc)[:200]}
        entity_state.put_in(world, state)
        if mind is not None:
            self.npcs.bind(state["id"], mind)
        self.border_view.changed()
        self.hlog.record("in", hid, state["id"], str(msg.get("from", "?"))[:32], state["hop"], state)
        acct = state.get("account")
        if acct:
            account = Account(*acct)
            self.game.sessions.dirty_accounts.append(account)
            if "sess" in state:
                self.session_arrived(state["id"], account, state["sess"], state["hop"])
        return {"t": "ok", "tick": tick}

    def _sys_out(self, now: float) -> None:
        game, world = self.game, self.game.world
        mine = self.region.has_cell
        leaving = [eid for cell, members in world.grid.cells.items() if not mine(cell) for eid in members]
        for eid in sorted(leaving):  # entity order: the same in replay
            if not self.ready_to_leave(eid) or (self.npcs is not None and not self.npcs.ready_to_leave(world, eid)):
                continue
            e = world.entities[eid]
            mind = self.npcs.leaving(world, eid) if self.npcs is not None and e.kind == "npc" else None
            dest = self.regions.owner_of(e.x, e.y)
            hop = self.hlog.hops.get(eid, 0) + 1
            session = game.sessions.by_entity.get(eid)
            account = session.account if session is not None else self.db.account_by_entity(eid)
            conn = game.clients.get(eid)
            sess = self.session_leaving(eid, dest, hop, e.x, e.y)
            news = len(world.economy.offer_news)
            state = entity_state.take_out(world, eid, hop)
            if mind is not None:
                state["mind"] = mind  # its memories, plans, events... (agents/mind_state.py)
            self.border_view.left(Row(eid, e.kind, e.name, e.x, e.y, e.flags), world.tick, now)
            if conn is not None:  # its offers were withdrawn: told here, as it left our clients
                for o in world.economy.offer_news[news:]:
                    conn.send(offer_frame(world, o, {eid: e.name}))
            if account is not None:
                state["account"] = [account.id, account.name, account.token_hash, account.entity, e.x, e.y]
                if sess is not None:
                    state["sess"] = sess
            hid = f"{self.region.name}:{eid}:{hop}"
            self.hlog.record("out", hid, eid, dest, hop, state)
            self._sent_at[hid] = time.perf_counter()
            game.after_commit(lambda hid=hid: self._to_deliver.append(hid))
        # with the speaker's kind (`who`), so a neighbour's NPCs know a person spoke before its ghost arrives
        said = [dict(ev, who=world.entities[ev["from"]].kind) if ev["from"] in world.entities else ev
                for ev in world.events if ev["kind"] == "say" and world.grid.cell_of(ev["x"], ev["y"]) in self.border]
        if said:
            self.after_replicated(lambda: self._publish_speech(said))
        if world.tick % 2 == 0:
            self.after_replicated(self._publish_cells)

    def _sys_hear(self, now: float) -> None:
        from protocol.codec import encode

        world = self.game.world
        while self.foreign_speech:
            ev = self.foreign_speech.popleft()
            hearers = [e.id for e in world.hearers(ev["x"], ev["y"])]
            self.heard.append((ev, hearers))
            frame = encode("event", **{k: v for k, v in ev.items() if k not in ("x", "y", "who")})
            for eid in hearers:
                client = self.game.clients.get(eid)
                if client is not None:
                    client.send(frame)
            if self.npcs is not None:
                self.npcs.heard_across(ev, hearers)
        self.ghosts.expire(time.monotonic())

    def seen_across(self, eid: int) -> Row | None:
        """Someone this world does not hold whom the border view shows (a
        neighbour's entity near the border, or ours on its way there)."""
        self.border_view.refresh(self.game.world, time.monotonic())
        return self.border_view.shown.get(eid)

    def _home_tile(self, x: int, y: int) -> tuple[int, int]:
        """The walkable tile of ours nearest (x, y): where a refused entity stands."""
        m = self.game.world.map
        best = min(((abs(tx - x) + abs(ty - y), tx, ty) for c in self.region.cells()
                    for ty in range(c[1] * self.regions.cell, (c[1] + 1) * self.regions.cell)
                    for tx in range(c[0] * self.regions.cell, (c[0] + 1) * self.regions.cell)
                    if m.walkable(tx, ty)), default=None)
        if best is None:
            raise RuntimeError(f"region {self.region.name} has no walkable tile")
        return best[1], best[2]
