"""A region process: one rectangle of the world's cells, owned under a
lease, with its own 20 Hz tick (the one-process `Game`, with the systems
of region_systems.py added) and its own database. This module owns its
life: taking the lease (a standby waits for it), opening its world and
database, the tick loop on the world's clock, renewing the lease, stopping.

Each tick: the game's systems (with cluster_in, cluster_out and
cluster_hear, see region_systems.py) and its commit; border cells for the
neighbours' ghosts after the commit (region_bus.py); after the tick, each
gateway's frames (region_sessions.py), then the handoffs committed in it.

Ticks follow the world's clock (clock.py): tick k is due at the same
moment in every region (neighbours half a tick apart).

A handoff is never lost: the source logs the departure in its tick's
transaction and sends the state until the destination confirms, which it
does only after committing the arrival (a player's or walker's between
ticks, in a transaction of its own, at once; an NPC's with its next tick).
It is never applied twice: the destination applies each hop of an entity
once. While in transit (a few milliseconds past the source's commit) the
entity is in neither world, only in the source's log.

A tick or commit that raises stops the region without writing more
(`halt_on_error`): its lease runs out and a standby takes over from what
was committed. With `replicate` (region_replication.py) a standby keeps its
own copy of the database through JetStream, and what a tick decided is
told only once JetStream acknowledged its records.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections import deque
from typing import Any

from agents.inference.nats_log import connection_callbacks
from server.cluster import wire
from server.cluster.clock import MAX_CATCH_UP_S, TickSchedule, world_epoch
from server.cluster.border_view import BorderCells, BorderView
from server.cluster.ghosts import Ghosts
from server.cluster.region_bus import RegionBus
from server.cluster.region_sessions import RegionSessions
from server.cluster.session_handoffs import SessionHandoffs
from server.cluster.region_systems import RegionSystems
from server.cluster.region_lease import RegionLeaseKeeping
from server.cluster.region_replication import RegionReplication
from server.cluster.region_requests import RegionRequests
from server.cluster.handoffs import HandoffLog
from server.cluster.lease import RegionLease, lease_bucket
from server.cluster.region_world import ID_SPAN, open_region_world
from server.cluster.regions import RegionMap
from server.config import ServerConfig
from server.game import Game
from server.metrics import ServerMetrics
from server.persistence import Database
from server.world.catalog import load_goods
from server.world.village import village
from server.world.world import WorldRules

log = logging.getLogger("hamlet.region")
# A clean stop's wait for NATS to take the lease back and our last messages:
# ms when it is there; when it is gone, the stop must not hang on it.
NATS_GOODBYE_S = 2.0

# Speech from across a border waiting for the next tick: a few lines a
# second per border; past it the oldest go (it is heard, not stored, here).
MAX_FOREIGN_SPEECH = 1024


class RegionNode(RegionBus, RegionSessions, SessionHandoffs, RegionRequests, RegionSystems, RegionReplication,
                 RegionLeaseKeeping):
    def __init__(self, world_name: str, region: str, regions: RegionMap, nats_url: str, config: ServerConfig,
                 owner: str | None = None, lease_ttl_s: float = 3.0, llm: Any = None, replicate: bool = False,
                 replica_part_bytes: int | None = None, stream_max_bytes: int | None = None) -> None:
        self.world_name = wire.check_world_name(world_name)
        self.region = regions.regions[region]
        self.regions = regions
        self.nats_url = nats_url
        self.config = config
        self.owner = owner or f"{region}-{os.getpid()}-{secrets.token_hex(4)}"  # unique across restarts
        self.lease_ttl_s = lease_ttl_s
        self.border = regions.border_cells(region)
        self.ghosts = Ghosts(regions.watched_cells(region))
        self.border_view = BorderView(self.ghosts, regions.cell)
        self.incoming: deque[tuple[dict[str, Any], Any]] = deque()
        self.requests: deque[tuple[Any, asyncio.Future]] = deque()
        self.awaiting: set[asyncio.Future] = set()  # requests not answered yet (region_requests.py)
        self.foreign_speech: deque[dict[str, Any]] = deque(maxlen=MAX_FOREIGN_SPEECH)
        self.settled: deque[str] = deque()  # handoffs refused by their destination: to take back
        self.heard: deque[tuple[dict[str, Any], list[int]]] = deque(maxlen=256)  # foreign speech and its hearers
        self.handoff_ms: deque[float] = deque(maxlen=20000)
        self.tick_ms: deque[float] = deque(maxlen=20000)
        self.tick_window: deque[float] = deque(maxlen=2000)  # since the last status line (commands.status)
        self.handoff_window: deque[float] = deque(maxlen=2000)
        self._sent_at: dict[str, float] = {}
        self._published: dict[tuple[int, int], tuple[int, list[int]]] = {}  # cell -> (stamp, transit ids)
        self._beside_cache: dict[tuple[str, tuple[int, int]], tuple[int, int] | None] = {}
        self._tasks: set[asyncio.Task] = set()
        self.game: Game | None = None
        self.metrics = ServerMetrics()  # the game's, made before it: the model loaded before the lease counts here
        self.llm = llm  # the NPCs' model with config.npcs (None: the config's `model`, loaded at start)
        self.npcs = None  # RegionNpcs (region_npcs.py) with config.npcs
        self.nc = None
        self.lease: RegionLease | None = None
        self.running = False
        self.lost_lease = False
        self.failed = False  # a tick or an arrival's commit raised: stopped without writing more
        self._tick_task: asyncio.Task | None = None
        self._renew_task: asyncio.Task | None = None
        self._to_deliver: list[str] = []  # handoffs committed this tick, sent after its frames
        self.schedule: TickSchedule | None = None
        self._init_sessions()
        self._init_replication(replicate, replica_part_bytes, stream_max_bytes)

    # -- start and stop ----------------------------------------------------------
    async def start(self, wait_s: float = 30.0) -> None:
        import nats

        self.nc = await nats.connect(self.nats_url, name=f"hamlet-{self.world_name}-{self.region.name}",
                                     connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                     **connection_callbacks(log, self.nats_url))
        kv = await lease_bucket(self.nc.jetstream(), self.world_name)
        self.lease = RegionLease(kv, self.region.name, self.owner, self.lease_ttl_s)
        from server.cluster.region_npcs import preload_model

        loaded = preload_model(self)  # before the lease
        try:
            await self.wait_for_lease(wait_s)  # a standby waits here (region_replication.py)
        except BaseException:
            await self.nc.close()
            if loaded:
                self.llm.close()
                self.llm = None
            raise
        epoch = await world_epoch(kv)
        self.schedule = TickSchedule(epoch, self.config.tick_rate, phase=0.5 * (self.region.index % 2))
        self._open(self.schedule.current())
        await self._still_ours()
        self.start_publishing()
        await self.nc.subscribe(wire.handoff_subject(self.world_name, self.region.name), cb=self._on_handoff)
        await self.nc.subscribe(wire.client_subject(self.world_name, self.region.name), cb=self._on_client)
        await self.nc.subscribe(wire.find_subject(self.world_name, self.region.name), cb=self._on_find)
        await self.nc.subscribe(wire.alive_subject(self.world_name), cb=self._on_alive)
        for cell in self.ghosts.watched:
            await self.nc.subscribe(wire.cell_subject(self.world_name, cell), cb=self._on_cell)
        self.running = True
        for hid in list(self.hlog.outgoing):  # in transit when we stopped: send again
            self._spawn(self._deliver(hid))
        loop = asyncio.get_running_loop()
        self._renew_task = loop.create_task(self._renew())
        self._spawn(self._heartbeat())
        self._tick_task = loop.create_task(self._tick_loop())

    def _open(self, start_tick: int = 0) -> None:
        cfg = self.config
        self.db = Database(cfg.db, replica=self.recording())
        self.hlog = HandoffLog(self.db.conn)
        world = open_region_world(self.db, self.hlog, village(), cfg.seed, self.region.index,
                                  WorldRules(ticks_per_tile=cfg.ticks_per_tile), load_goods(cfg.goods or None),
                                  start_tick=start_tick)
        game = self.game = Game(cfg, world, self.db, self.metrics)
        game.sessions._next_account_id = max(game.sessions._next_account_id, self.region.index * ID_SPAN + 1)
        game.stores.append(self.hlog)
        world.foreign = self.seen_across  # set after replay: a logged say holds whom it reached
        cells = BorderCells(world, self.border_view)  # clients see across the borders
        for replicator in game.replicators:
            replicator.cells = cells
        names = [n for n, _ in game.systems]
        game.systems.insert(0, ("cluster_in", self._sys_in))
        game.systems.insert(names.index("simulate") + 2, ("cluster_out", self._sys_out))
        game.systems.insert(names.index("replicate") + 3, ("cluster_hear", self._sys_hear))
        self.adopt_players()
        if cfg.npcs:
            from server.cluster.region_npcs import install_region_npcs

            self.npcs = install_region_npcs(self, self.llm)

    async def stop(self) -> None:
        """A clean stop: a final snapshot, the lease given up at once."""
        if not self.running:
            return
        await self._halt()
        self.game.snapshot()
        await self.stop_publishing(flush=True)  # on the stream before the lease goes
        await self._leave_nats()
        self.db.close()
        if self.npcs is not None:
            self.npcs.close()

    async def _leave_nats(self) -> None:
        """Give the lease up and drain, each within NATS_GOODBYE_S; with NATS
        gone (a nats-server that died with `hamlet cluster`) the lease runs
        out by itself, as after a crash: said in one line, not a traceback."""
        try:
            await asyncio.wait_for(self.lease.release(), NATS_GOODBYE_S)
            await asyncio.wait_for(self.nc.drain(), NATS_GOODBYE_S)
        except Exception as exc:
            log.warning("region %s: NATS did not take our goodbye (%s: %s); the lease runs out by itself",
                        self.region.name, type(exc).__name__, exc)
            try:
                await self.nc.close()
            except Exception:  # the connection is gone already: nothing to close
                pass

    async def crash(self) -> None:
        """What kill -9 leaves (for tests): no snapshot, no goodbye; the
        lease runs out by itself. Only committed ticks survive."""
        await self._halt()
        await self.stop_publishing(flush=False)
        await self.nc.close()
        self.db.conn.close()
        if self.npcs is not None:
            self.npcs.close()

    async def _halt(self) -> None:
        self.running = False
        for task in [self._tick_task, self._renew_task, *self._tasks]:
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        for task in [self._tick_task, self._renew_task, *self._tasks]:
            if task is not None and task is not asyncio.current_task():
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self.fail_requests("region stopped")

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def halt_on_error(self) -> None:
        """A tick or a commit raised (a full disk, a bug): this process
        writes nothing more and stops ticking; its lease runs out, so a
        standby takes over from what was committed."""
        self.failed = True
        self.running = False
        self.fail_requests("region stopped on an error")
        if self._renew_task is not None:
            self._renew_task.cancel()
        if self._tick_task is not None and self._tick_task is not asyncio.current_task():
            self._tick_task.cancel()

    async def _tick_loop(self) -> None:
        try:
            await self._run_ticks()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("region %s: a tick failed; stopping without writing more", self.region.name)
            self.halt_on_error()

    async def _run_ticks(self) -> None:
        sched = self.schedule
        while self.running:
            delay = sched.due(self.game.world.tick + 1) - time.monotonic()
            if -delay > MAX_CATCH_UP_S:
                log.warning("region %s: %.0f s behind the world's clock; its ticks start again from now",
                            self.region.name, -delay)
                sched.reanchor(self.game.world.tick + 1)
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))  # behind (a restart): the missed ticks run back to back
            if not self.running:
                return
            t0 = time.perf_counter()
            self.game.run_tick()
            if self.publisher is not None and not await self.replica_synced():
                return  # not kept: nothing of this tick is told
            self.flush_gateways()
            for hid in self._to_deliver:  # after the frames that tell the gateway the player moved
                self._spawn(self._deliver(hid))
            self._to_deliver.clear()
            self.run_held()
            took = (time.perf_counter() - t0) * 1000  # the tick and its frames to the gateways
            self.tick_ms.append(took)
            self.tick_window.append(took)

    # -- what tests and the bench read -------------------------------------------------
    def entity_ids(self) -> set[int]:
        return set(self.game.world.entities)

    def in_transit(self) -> set[int]:
        return {state["id"] for _, state in self.hlog.outgoing.values()}
