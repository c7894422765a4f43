"""The game: one world, its sessions, replication and persistence, and the
tick as ordered, named systems (after esper, but the world is an object).

    inputs -> agents -> simulate -> replicate -> persist
           -> acknowledge -> observe -> snapshot

`persist` writes the tick in one transaction (its inputs, chat lines,
accounts and what the tick stores hold, e.g. NPC memories); only then does
`acknowledge` send the acks and welcomes that waited for it, `observe` run
the end-of-tick observers (minds, the sim's recorder, tests) and `snapshot`
save the world when one is due.

Connections hand messages to `submit()`; nothing touches the world outside
the tick. A failure while handling one client's input closes that client
and leaves the world as it was.
"""
from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from protocol.codec import Message, encode
from protocol.errors import CloseCode, ErrorCode
from server.admin import handle_admin
from server.config import ServerConfig
from server.joins import adopt_orphans, handle_join
from server.metrics import ServerMetrics
from server.persistence import Database, TickStore
from server.replication import CellCache, Replicator
from server.sessions import Sessions
from server.board import board_frame, quest_system, turn_in_input
from server.trade import TRADE_MESSAGES, economy_system, shop_reply, tell_owners, trade_input
from server.world.inputs import Input, Leave, MoveTo, Say, SetFlags, Step, Stop, to_record
from server.world.world import FLAG_AWAY, Rejection, World

log = logging.getLogger("hamlet.game")

AgentSystem = Callable[[World], list[Input]]

# Ticks between two changes of the state cadence (5 s at 20 Hz): long
# enough to see the effect of the last change before making another.
CADENCE_DWELL_TICKS = 100


class Game:
    def __init__(self, config: ServerConfig, world: World, db: Database, metrics: ServerMetrics) -> None:
        self.config = config
        self.world = world
        self.db = db
        self.metrics = metrics
        self.sessions = Sessions(db, config.grace_s)
        # One replicator per phase of the state cadence: clients are split by
        # entity id, so each tick serves 1/N of them and the work is spread
        # evenly instead of landing on every Nth tick.
        cells = CellCache(world)
        self.replicators = [Replicator(world, cells=cells) for _ in range(max(1, config.state_every_ticks))]
        self._tick_ema = 0.0
        self._cadence_changed = 0
        metrics.state_every_ticks.set(len(self.replicators))
        self.inbox: deque[tuple[Any, Message]] = deque()
        self.clients: dict[int, Any] = {}  # entity -> welcomed client
        # Systems that add inputs each tick: the workplaces and meals, the quests
        # they post, then the NPCs' minds (install_minds).
        self.agent_systems: list[AgentSystem] = [economy_system, quest_system]
        self.systems: list[tuple[str, Callable[[float], None]]] = [
            ("inputs", self.sys_inputs),
            ("agents", self.sys_agents),
            ("simulate", self.sys_simulate),
            ("replicate", self.sys_replicate),
            ("persist", self.sys_persist),
            ("acknowledge", self.sys_acknowledge),
            ("observe", self.sys_observe),
            ("snapshot", self.sys_snapshot),
        ]
        self._log: list[tuple[str, dict]] = []  # inputs applied this tick
        self._after_commit: list[Callable[[], None]] = []
        self.spawn_rng = random.Random()  # spawn spots are logged in Join, so need not be seeded
        self._last_snapshot = time.monotonic()
        self.stores: list[TickStore] = []  # more writes for the tick's transaction (NPC memories)
        self.on_tick: list[Callable[[World], None]] = []  # observers (minds, sim, tests)

    # -- entry point from connections ----------------------------------------
    def submit(self, client: Any, msg: Message) -> ErrorCode | None:
        if len(self.inbox) >= self.config.max_input_queue:
            return ErrorCode.OVERLOADED
        if client.pending >= self.config.max_pending_per_client:
            return ErrorCode.RATE_LIMITED
        client.pending += 1
        self.inbox.append((client, msg))
        return None

    def disconnected(self, client: Any) -> None:
        """Called by the network layer when a joined connection ends."""
        eid = client.entity
        if eid is None or self.clients.get(eid) is not client:
            return
        del self.clients[eid]
        self.sessions.detach(eid, time.monotonic())
        e = self.world.entities.get(eid)
        if e is not None:
            self.inbox.append((None, Message("_away", {"entity": eid})))

    # -- the tick ------------------------------------------------------------
    def run_tick(self) -> None:
        self.world.begin_tick()
        began = time.perf_counter()
        for name, system in self.systems:
            t0 = time.perf_counter()
            system(time.monotonic())
            self.metrics.system_duration.labels(name).observe(time.perf_counter() - t0)
        self._adapt_cadence(time.perf_counter() - began)

    def _adapt_cadence(self, took: float) -> None:
        """Graceful degradation: when ticks take over 25% of their budget on
        average (their p99 runs at about twice the average, so this keeps
        the slow ones within half the budget), state updates go out half as
        often, at most every `max_state_every_ticks` ticks; below 12% they
        come back. Changes are at least `CADENCE_DWELL_TICKS` apart."""
        self._tick_ema = 0.95 * self._tick_ema + 0.05 * took
        if self.world.tick - self._cadence_changed < CADENCE_DWELL_TICKS:
            return
        budget = 1.0 / self.config.tick_rate
        n = len(self.replicators)
        if self._tick_ema > 0.25 * budget and n < self.config.max_state_every_ticks:
            self._set_cadence(n * 2)
        elif self._tick_ema < 0.12 * budget and n > self.config.state_every_ticks:
            self._set_cadence(max(self.config.state_every_ticks, n // 2))

    def _set_cadence(self, n: int) -> None:
        log.info("state updates every %d ticks (tick time %.1f ms on average)", n, self._tick_ema * 1000)
        cells = self.replicators[0].cells
        self.replicators = [Replicator(self.world, cells=cells) for _ in range(n)]
        self._cadence_changed = self.world.tick
        self.metrics.state_every_ticks.set(n)

    def apply(self, inp: Input) -> Rejection | int | None:
        """Apply an input to the world and, if accepted, log it."""
        inp = self.world.address(inp)  # a say across a border logs whom it reached (World.address)
        result = self.world.apply(inp)
        if not isinstance(result, Rejection):
            self._log.append(to_record(inp))
        return result

    def sys_inputs(self, now: float) -> None:
        for session in self.sessions.expired(now):
            self.end_session(session.account.entity)
        inbox = self.inbox
        self.metrics.input_queue.set(len(inbox))
        for _ in range(len(inbox)):
            client, msg = inbox.popleft()
            if client is None:
                self._internal(msg)
                continue
            client.pending -= 1
            if client.closed and msg.type != "bye":  # a bye then a close still means: leave now
                continue
            try:
                self._handle(client, msg)
            except Exception:  # one client's bad luck must not stop the world
                log.exception("error handling %s from %s", msg.type, client)
                client.send(encode("error", code=str(ErrorCode.INTERNAL), msg="internal error", seq=msg.seq))
                client.close(CloseCode.INTERNAL_ERROR, "internal error")

    def sys_agents(self, now: float) -> None:
        for system in self.agent_systems:
            for inp in system(self.world):
                self.apply(inp)

    def sys_simulate(self, now: float) -> None:
        self.world.simulate()

    def sys_replicate(self, now: float) -> None:
        clients = list(self.clients.values())
        limit = self.config.slow_reader_timeout_s
        for c in clients:
            if c.outbox or c.state_frame is not None:  # Client.backlogged, inlined: this runs for every client
                c.flush()
                if c.state_since is not None and now - c.state_since > limit:
                    c.close(CloseCode.SLOW_READER, f"not reading: state update waiting over {limit:g} s")
        n = len(self.replicators)
        phase = self.world.tick % n
        self.replicators[phase].replicate([c for c in clients if c.entity % n == phase] if n > 1 else clients)
        self.replicators[0].deliver_events(self.clients)
        self.metrics.entities.set(len(self.world.entities))
        self.metrics.players.set(len(self.clients))

    def sys_persist(self, now: float) -> None:
        """The tick's one transaction; nothing else."""
        world = self.world
        chats = [ev for ev in world.events if ev["kind"] == "say"]
        accounts = self.sessions.take_dirty()
        stores = [store for store in self.stores if store.has_changes()]
        moving = any(e.path for e in world.entities.values())
        if self._log or chats or accounts or moving or world.events or stores:
            t0 = time.perf_counter()
            self.db.commit_tick(world.tick, self._log, chats, accounts, stores)
            self.metrics.commit_duration.observe(time.perf_counter() - t0)
        self._log = []

    def sys_acknowledge(self, now: float) -> None:
        """What waited for the commit: purse and offer news, then acks of chat
        lines, moves and trades, and welcomes."""
        tell_owners(self)
        after, self._after_commit = self._after_commit, []
        for fn in after:
            fn()

    def sys_observe(self, now: float) -> None:
        for observer in self.on_tick:
            observer(self.world)

    def sys_snapshot(self, now: float) -> None:
        if now - self._last_snapshot >= self.config.snapshot_every_s:
            self.snapshot()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once this tick's transaction is committed."""
        self._after_commit.append(fn)

    def snapshot(self) -> None:
        self.db.save_snapshot(self.world.tick, self.world.snapshot())
        self._last_snapshot = time.monotonic()

    # -- handlers ------------------------------------------------------------
    def _handle(self, client: Any, msg: Message) -> None:
        kind = msg.type
        if kind == "hello":
            handle_join(self, client, msg)
            return
        if kind == "admin":
            handle_admin(self, client, msg)
            return
        eid = client.entity
        if eid is None or eid not in self.world.entities:
            client.send(encode("error", code=str(ErrorCode.NOT_JOINED), msg="not in the world", seq=msg.seq))
            return
        if kind == "move":
            inp = self._move_input(eid, msg)
        elif kind == "say":
            inp = Say(eid, msg.data["text"], msg.get("to"))
        elif kind in TRADE_MESSAGES:
            inp = trade_input(eid, msg)
        elif kind == "turn_in":
            inp = turn_in_input(eid, msg.data["quest"])
        elif kind == "shop":
            client.send(shop_reply(self.world, msg))
            return
        elif kind == "board":
            client.send(board_frame(self.world, msg.seq))
            return
        elif kind == "bye":
            self.end_session(eid)
            client.close(CloseCode.NORMAL, "bye")
            return
        else:
            return
        result = inp if isinstance(inp, Rejection) else self.apply(inp)
        if isinstance(result, Rejection):
            client.send(encode("error", code=result.code, msg=result.message, seq=msg.seq))
            self.metrics.rejected.labels(result.code).inc()
            return
        self.metrics.messages_in.labels(kind).inc()
        if msg.seq is not None:
            ack = encode("ack", seq=msg.seq, tick=self.world.tick, chat=result if kind == "say" else None,
                         offer=result if kind == "offer" else None)
            self.after_commit(lambda: client.send(ack))

    def _move_input(self, eid: int, msg: Message) -> Input | Rejection:
        if "to" in msg.data:
            x, y = msg.data["to"]
            return MoveTo(eid, x, y)
        if "dir" in msg.data:
            return Step(eid, msg.data["dir"])
        if "place" in msg.data:
            place = self.world.map.places.get(msg.data["place"])
            if place is None:
                return Rejection(str(ErrorCode.BAD_MOVE), f"there is no place called {msg.data['place']!r}")
            return MoveTo(eid, *place.entry)
        return Stop(eid)

    def end_session(self, eid: int) -> None:
        e = self.world.entities.get(eid)
        if e is not None:
            self.apply(Leave(eid))
            self.sessions.end(eid, e.x, e.y)
        else:
            self.sessions.by_entity.pop(eid, None)
        client = self.clients.pop(eid, None)
        if client is not None:
            client.entity = None

    def _internal(self, msg: Message) -> None:
        if msg.type == "_away":
            eid = msg.data["entity"]
            e = self.world.entities.get(eid)
            if e is not None and eid not in self.clients:
                self.apply(SetFlags(eid, e.flags | FLAG_AWAY))

    # -- start and stop ------------------------------------------------------
    def adopt_orphans(self) -> None:
        adopt_orphans(self)

    def close_all(self, code: CloseCode, reason: str) -> None:
        for client in list(self.clients.values()):
            client.close(code, reason)
