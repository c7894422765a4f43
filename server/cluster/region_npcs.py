"""A region's NPCs (`hamlet region --npcs`): which of the village's NPCs
live here, their minds, and their minds' handoffs.

- Who lives here: each NPC lives in the region whose rectangle holds it.
  A new world's NPC is spawned once, by the region that holds its home's
  door (a fixed place, so two regions never both spawn it nor both leave
  it out, whenever each starts); a region never spawns an NPC that is in
  its world or that its handoff log shows came or went. After a restart the
  NPCs in the world get their minds back with their memories from the
  region's database, as players get their sessions. The NPCs' names are
  reserved in every region (a player's hello with one: name_taken).
- Minds: with a model, the one-process `MindsSystem` (agents/minds.py) over
  this region's NPCs; with none (`--model none`), `RoutineMinds`: the
  routine walker drives them, and their minds still hold memories, which
  travel with them. Each region holds the minds of its own NPCs only.
- Leaving: at the tick boundary an NPC's mind goes into the handoff state
  (agents/mind_state.py), and out of this region's minds and database.
  Transient things end first, with these outcomes: while people wait for
  its answer it stays (on the foreign cell; it stops walking to answer) up
  to MAX_SERVE_WAIT_TICKS, then the ones still waiting are dropped, their
  replies in flight cancelled (they may ask again, in its new region); a
  conversation ends as any ended one does (a memory of it, the partner's
  cooldown; the partner's side ends when it sees it gone); a line, choice
  or reflection in flight is cancelled (a reflection is due again there:
  the importance summed since the last one travels); open quizzes, recall
  queries and the crowd's context are dropped.
- Hearing across a border: a line said in a neighbour's border cell within
  hearing of an NPC here reaches its mind at the next agents phase, as a
  local one does (agents/perception.py); its speaker, seen here as a ghost,
  is answered across the border (World.foreign). Routine minds (no model)
  hear nothing, here as in one process.
- Arriving: the state is checked with the entity's (a bad mind refuses the
  handoff, nothing changed here) and the mind bound to this region's minds
  at the tick boundary; all its memories are written in that tick's
  transaction, in place of any rows of its name.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from agents.memory import MemoryStream
from agents.memory_store import MemoryStore
from agents.mind import Mind, seed_memories, take_unsaved_memories
from agents.mind_state import MindStateError, mind_from_dict, mind_to_dict
from agents.personas import Persona, load_personas
from agents.routine import RoutineWalker
from protocol.limits import Limits
from server.cluster.entity_state import BadState
from server.world.inputs import Input, Join
from server.world.world import World

log = logging.getLogger("hamlet.region")

# An NPC on a foreign cell with people waiting for its answer leaves when
# they are answered or after this many ticks (5 s at 20 Hz: a reply takes
# 1-4 s on the CPU); then the ones still waiting are dropped.
MAX_SERVE_WAIT_TICKS = 100
# A line heard from across a border is cut to a line's length here (the
# protocol's), whatever a faulty neighbour sends.
MAX_TEXT = Limits().max_text


class RoutineMinds:
    """NPCs without a model: their routines move them (agents/routine.py);
    their minds hold their memories (the persona's, and what was added or
    brought along), bound to their entities like `MindsSystem`'s."""

    def __init__(self, personas: list[Persona], seed: int) -> None:
        self.minds = {p.name.casefold(): Mind(p, MemoryStream(p.name)) for p in personas}
        self.by_entity: dict[int, Mind] = {}
        self.walker = RoutineWalker(personas, seed)
        self.clock = time.monotonic
        self.embedder = None
        self._seeded = False

    def __call__(self, world: World) -> list[Input]:
        for e in world.entities.values():
            if e.kind == "npc" and e.id not in self.by_entity and e.name.casefold() in self.minds:
                mind = self.by_entity[e.id] = self.minds[e.name.casefold()]
                mind.entity, mind.plan_day = e.id, int(world.game_minutes // 1440)
        if not self._seeded:
            seed_memories(self.minds.values(), world.game_minutes)
            self._seeded = True
        return self.walker.step(world)

    def end(self, world: World, mind: Mind) -> None:
        mind.conversation = None  # it never starts one

    def unsaved_memories(self) -> list[tuple[str, Any]]:
        return take_unsaved_memories(self.minds.values())

    def close(self) -> None:
        pass


class HomeSpawner:
    """Puts the NPCs that are to be born here into the world at their homes' doors, once."""

    def __init__(self, personas: list[Persona]) -> None:
        self.personas = personas

    def __call__(self, world: World) -> list[Input]:
        out: list[Input] = [Join(world.allocate_entity_id(), p.name, *world.map.places[p.home].entry, npc=True)
                            for p in self.personas if world.find_by_name(p.name) is None]
        self.personas = []
        return out


class MemoryMoves:
    """A tick store: the memory rows of NPCs that left (or arrived, whose
    whole stream is written again) are deleted in the tick's transaction,
    before the minds' MemoryStore writes; so a restart loads exactly the
    NPCs that live here. Bounded by the village's NPCs (names, once each)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def has_changes(self) -> bool:
        return bool(self.names)

    def write(self, conn) -> int:
        names, self.names = sorted(self.names), set()
        conn.executemany("DELETE FROM memories WHERE npc=?", [(n,) for n in names])
        conn.executemany("DELETE FROM memory_state WHERE npc=?", [(n,) for n in names])
        return len(names)


class RegionNpcs:
    def __init__(self, minds: Any, personas: list[Persona], places: set[str]) -> None:
        self.minds = minds  # MindsSystem or RoutineMinds
        self.personas = {p.name.casefold(): p for p in personas}
        self.places = places
        self.moves = MemoryMoves()
        self._held: dict[int, int] = {}  # NPC -> tick it first waited on a foreign cell (one per NPC)
        self.dropped_waiting = 0  # people left unanswered by an NPC that moved on

    def bound(self) -> int:
        return len(self.minds.by_entity)

    def ready_to_leave(self, world: World, eid: int) -> bool:
        mind = self.minds.by_entity.get(eid)
        if mind is None or not mind.serving_people:
            self._held.pop(eid, None)
            return True
        first = self._held.setdefault(eid, world.tick)
        return world.tick - first >= MAX_SERVE_WAIT_TICKS

    def leaving(self, world: World, eid: int) -> dict[str, Any] | None:
        """End the NPC's transient things and take its mind out: its state."""
        self._held.pop(eid, None)
        e = world.entities[eid]
        mind = self.minds.by_entity.pop(eid, None) or self.minds.minds.get(e.name.casefold())
        if mind is None:
            return None
        if mind.conversation is not None:
            self.minds.end(world, mind)
        if mind.job is not None:
            mind.job.handle.cancel()
            mind.job = None
        for job in mind.reply_jobs.values():
            job.handle.cancel()
        self.dropped_waiting += len({p.speaker for p in mind.waiting} | set(mind.reply_jobs))
        mind.reply_jobs.clear()
        mind.waiting.clear()
        mind.quizzes.clear()
        mind.queries.clear()
        mind.crowd_context = None
        state = mind_to_dict(mind, self.minds.clock(), world.tick)
        self.minds.minds.pop(e.name.casefold(), None)
        mind.entity = None
        self.moves.names.add(mind.name)
        return state

    def heard_across(self, ev: dict[str, Any], hearers: list[int]) -> None:
        """A neighbour's `say` event (its x, y and text checked by the bus),
        heard by `hearers` here: to the minds, if one of them has one."""
        senses = getattr(self.minds, "senses", None)  # RoutineMinds perceive no speech
        if senses is None or not any(eid in self.minds.by_entity for eid in hearers):
            return
        to = ev.get("to")
        if not isinstance(ev.get("from"), int) or not isinstance(ev.get("name"), str) \
                or not (to is None or isinstance(to, int)):
            return  # a neighbour's garbage: nobody hears it
        senses.hear_across({"kind": "say", "tick": ev.get("tick"), "from": ev["from"], "name": ev["name"][:32],
                            "text": ev["text"][:MAX_TEXT], "to": to, "to_name": ev.get("to_name"),
                            "chat": ev.get("chat"), "x": ev["x"], "y": ev["y"],
                            "who": ev.get("who") if ev.get("who") in ("player", "npc") else None})

    def check_arrival(self, state: dict[str, Any]) -> Mind | None:
        """The mind an arriving NPC brings, built but not bound; BadState if
        it cannot be taken in (then nothing here changed)."""
        if state["kind"] != "npc":
            return None
        persona = self.personas.get(state["name"].casefold())
        if persona is None:
            raise BadState(f"no NPC named {state['name']} in this region's personas")
        if "mind" not in state:
            raise BadState(f"the handoff of NPC {state['name']} carries no mind")
        try:
            return mind_from_dict(state["mind"], persona, self.minds.clock(), self.minds.embedder, self.places)
        except MindStateError as exc:
            raise BadState(f"the mind of {state['name']}: {exc}") from None

    def bind(self, eid: int, mind: Mind) -> None:
        """At the tick boundary, after the entity was put in: the mind is ours."""
        key = mind.name.casefold()
        old = self.minds.minds.get(key)
        if old is not None and old.entity is not None:
            self.minds.by_entity.pop(old.entity, None)
        mind.entity = eid
        self.minds.minds[key] = mind
        self.minds.by_entity[eid] = mind
        mind.memory.unsaved = list(mind.memory.memories)  # written anew in this tick's transaction
        self.moves.names.add(mind.name)

    def came_back(self, state: dict[str, Any]) -> None:
        """A handoff refused by its destination: the NPC is back here with
        the mind it left with."""
        try:
            mind = self.check_arrival(state)
        except BadState as exc:  # our own state: only a persona file changed under us
            log.error("NPC %s came back with a mind we cannot take in (%s); it starts afresh", state["name"], exc)
            persona = self.personas.get(state["name"].casefold())
            mind = Mind(persona, MemoryStream(persona.name, self.minds.embedder)) if persona else None
        if mind is not None:
            self.bind(state["id"], mind)

    def close(self) -> None:
        self.minds.close()


def preload_model(node: Any) -> bool:
    """The NPCs' model, loaded before the region's lease is taken: a slow
    load (a first conversion of the embedded model takes ~17 s, a big model
    longer) never runs while the lease can run out under it, and a standby
    has its model ready when it takes over. Whether it loaded one."""
    if not node.config.npcs or node.llm is not None:
        return False
    from server.npcs import load_model

    node.llm = load_model(node.config, node.metrics.registry)
    return node.llm is not None


def install_region_npcs(node: Any, llm: Any) -> RegionNpcs:
    """Wire the region's NPCs into its game (after its world was opened)."""
    game, cfg, world = node.game, node.config, node.game.world
    personas = load_personas(cfg.personas or None, known_places=set(world.map.places))
    here = {e.name.casefold() for e in world.entities.values() if e.kind == "npc"}
    handed = {state["name"].casefold() for _, kind, _, _, _, _, state in node.hlog.rows_after(-1)
              if kind in ("out", "in", "back") and state.get("kind") == "npc"}
    born = [p for p in personas if p.name.casefold() not in here | handed
            and node.regions.owner_of(*world.map.places[p.home].entry) == node.region.name]
    if llm is None:
        minds: Any = RoutineMinds(personas, world.seed)
    else:
        from agents.budget import MindBudget
        from agents.minds import MindsSystem
        from server.npcs import load_memory_embedder

        minds = MindsSystem(personas, llm, seed=world.seed, embedder=load_memory_embedder(cfg, llm),
                            budget=MindBudget(tokens_per_minute=cfg.npc_tokens_per_minute))
    keep = here | {p.name.casefold() for p in born}
    for key in [k for k in minds.minds if k not in keep]:  # they live in other regions
        del minds.minds[key]
    npcs = RegionNpcs(minds, personas, set(world.map.places))
    store = MemoryStore(minds)
    loaded = store.load(node.db.conn)
    game.stores += [npcs.moves, store]  # in this order: a moved NPC's old rows go before its new ones
    game.agent_systems += [HomeSpawner(born), minds]
    # The NPCs' names are theirs in every region, wherever each NPC is now (in
    # one process the NPCs, spawned first, hold them): a player's hello with
    # one is answered name_taken, so no player's name refuses an NPC at a border.
    reserved, held = frozenset(p.name.casefold() for p in personas), game.sessions.name_is_held
    game.sessions.name_is_held = lambda name: name.casefold() in reserved or held(name)
    if llm is not None:
        if getattr(llm, "runs_in", "remote") != "remote":
            minds.warm_prefixes()
        game.on_tick.append(minds.observe)
        game.metrics.watch_minds(minds.stats)
    log.info("region %s: NPCs %s live here, %s to be born here (%d memories restored)", node.region.name,
             sorted(here), [p.name for p in born], loaded)
    return npcs
