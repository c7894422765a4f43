"""Putting the village's NPCs into a game: the composition root of the
minds, shared by `hamlet serve` (server/app.py) and `hamlet sim`
(server/sim.py). `install_minds` is the one place that wires minds into
the tick: the spawner and the minds in the agents phase, their memories
restored and then committed in each tick's transaction, their observer at
the end of the tick. With no model, `install_npcs` drives the NPCs with
their routines alone."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from agents.inference.api import LLM
from agents.memory_store import MemoryStore
from agents.minds import MindBudget, MindsSystem
from agents.personas import Persona, load_personas
from agents.routine import RoutineWalker
from server.config import ServerConfig
from server.game import Game
from server.world.inputs import Input, Join
from server.world.world import World

log = logging.getLogger("hamlet.npcs")


class NpcSpawner:
    """Puts each persona's NPC into the world, once, where its routine
    says it is at the current game hour."""

    def __init__(self, personas: list[Persona]) -> None:
        self.personas = personas

    def __call__(self, world: World) -> list[Input]:
        out: list[Input] = []
        for p in self.personas:
            if world.find_by_name(p.name) is None:
                now = p.activity_at(world.game_minutes / 60.0 % 24).place
                place = world.map.places.get(now) or world.map.places.get(p.workplace)
                x, y = place.entry if place else (world.map.width // 2, world.map.height // 2)
                out.append(Join(world.allocate_entity_id(), p.name, x, y, npc=True))
        self.personas = []  # once per start
        return out


def install_minds(game: Game, personas: list[Persona], llm: LLM, budget: MindBudget,
                  embedder: Any = None, clock: Callable[[], float] | None = None) -> MindsSystem:
    """Spawn the personas' NPCs and drive them with minds over `llm`.
    `clock` is the minds' budget clock (wall time by default; the fast sim
    passes game time)."""
    extra = {} if clock is None else {"clock": clock}
    minds = MindsSystem(personas, llm, seed=game.world.seed, budget=budget, embedder=embedder, **extra)
    if getattr(llm, "runs_in", "remote") != "remote":   # a remote server keeps its own cache
        minds.warm_prefixes()
    store = MemoryStore(minds)
    loaded = store.load(game.db.conn)
    log.info("minds for %d NPCs (%d memories restored)", len(personas), loaded)
    game.agent_systems += [NpcSpawner(personas), minds]
    game.stores.append(store)
    game.on_tick.append(minds.observe)
    game.metrics.watch_minds(minds.stats)
    return minds


def install_npcs(game: Game, config: ServerConfig, llm: LLM | None = None) -> MindsSystem | None:
    """The server's NPCs: minds over `llm`, or routines alone when there is
    no model. Returns the minds system (None on routines)."""
    personas = load_personas(config.personas or None, known_places=set(game.world.map.places))
    if llm is None:
        game.agent_systems += [NpcSpawner(personas), RoutineWalker(personas, game.world.seed).step]
        return None
    budget = MindBudget(tokens_per_minute=config.npc_tokens_per_minute)
    return install_minds(game, personas, llm, budget, embedder=load_memory_embedder(config, llm))


def load_memory_embedder(config: ServerConfig, llm: LLM) -> Any:
    """The memories' sentence embedder the config asks for (None: lexical
    relevance); also used by a region's NPCs (server/cluster/region_npcs.py)."""
    if not config.embeddings:
        return None
    from agents.embeddings import load_embedder

    if llm.runs_in in ("process", "remote"):
        # The language model runs elsewhere: torch in this process only embeds
        # memories, on one core, leaving the other to the tick loop (measured
        # with 1,000 bots, two embedding threads pushed tick p99 past 150 ms).
        import torch
        torch.set_num_threads(1)
    return load_embedder()


def load_model(config: ServerConfig, registry) -> Any:
    """The language model the config names, or None for "none"."""
    if config.model in ("", "none"):
        return None
    from agents.inference import load_llm

    model = None if config.model == "embedded" else config.model
    return load_llm(model, runner=config.llm_runner, registry=registry, policy=config.llm_policy,
                    nice=config.llm_nice, threads=config.llm_threads or None)
