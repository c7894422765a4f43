"""Taking an entity out of one region's world and putting it into another's,
with everything the world holds for it: its row (position, path, walking
cooldown, flags), its purse, what it learned at the school and an NPC's
plan for the day. `hop` counts the entity's handoffs; the receiving region
keeps the highest hop it saw per entity, so a repeated or stale delivery
of a handoff it already applied is recognised and applied once only.

Both are world changes made at a tick boundary by the region (see
`region.py`), which logs them in the tick's transaction (`handoffs.py`) and
repeats them in the same places when it replays its log, so a region's
world still replays bit for bit. Open offers an entity made or received
are withdrawn when it leaves: an offer binds two parties in one region.
"""
from __future__ import annotations

from typing import Any

from server.world.economy import Purse
from server.world.entity import Entity
from server.world.world import World

# Bounds on a handoff's state read from the network (another region's
# message): an entity's path is at most WorldRules.max_path steps; goods
# kinds come from a catalog of a few dozen; a learner's topics and plan
# steps are bounded by the school and the plan rules.
MAX_PATH = 400
MAX_GOODS = 64
MAX_TOPICS = 32
MAX_QUESTIONS = 64
MAX_PLAN_STEPS = 24


class BadState(ValueError):
    """A handoff state that does not fit this world: refused, nothing changed."""


def take_out(world: World, eid: int, hop: int) -> dict[str, Any]:
    """Remove `eid` from the world and return its state (tagged `hop`)."""
    e = world.entities.pop(eid)
    del world.by_name[e.name.casefold()]
    world._changed(world.grid.where[eid])
    world.grid.remove(eid)
    eco = world.economy
    for o in [o for o in eco.offers.values() if eid in (o.maker, o.to)]:
        eco._close(o, "withdrawn")
    purse = eco.purses.pop(eid, None) or Purse()
    eco.changed.pop(eid, None)
    topics = world.progress.by_learner.pop(eid, {})
    world.progress.changed.discard(eid)
    plan = world.plans.pop(eid, ())
    return {
        "id": e.id, "kind": e.kind, "name": e.name, "x": e.x, "y": e.y, "flags": e.flags,
        "path": [list(p) for p in e.path], "cooldown": e.cooldown,
        "coins": purse.coins, "goods": sorted([k, v] for k, v in purse.goods.items()),
        "progress": [[t, sorted([q, r] for q, r in qs.items())] for t, qs in sorted(topics.items())],
        "plan": [list(s) for s in plan], "hop": hop,
    }


def seen(s: Any, hops: dict[int, int]) -> bool:
    """Whether this hop of the entity was applied here already (or a later
    one was): a repeated delivery, to confirm again and not apply."""
    if not isinstance(s, dict) or not isinstance(s.get("id"), int) or not isinstance(s.get("hop"), int):
        return False
    return s["hop"] <= hops.get(s["id"], 0)


def check(world: World, s: Any) -> dict[str, Any]:
    """The state, checked against this world's map and bounds; BadState if not."""
    try:
        if not isinstance(s, dict):
            raise BadState("state is not a map")
        eid, kind, name = s["id"], s["kind"], s["name"]
        if not isinstance(eid, int) or not 1 <= eid <= 2 ** 53 or kind not in ("player", "npc"):
            raise BadState("bad id or kind")
        if not isinstance(name, str) or not 0 < len(name) <= 24:
            raise BadState("bad name")
        if not world.map.walkable(s["x"], s["y"]):
            raise BadState(f"({s['x']}, {s['y']}) is not walkable here")
        path = s["path"]
        if len(path) > MAX_PATH or not all(world.map.walkable(int(x), int(y)) for x, y in path):
            raise BadState("bad path")
        if len(s["goods"]) > MAX_GOODS or len(s["progress"]) > MAX_TOPICS or len(s["plan"]) > MAX_PLAN_STEPS:
            raise BadState("too many goods, topics or plan steps")
        if any(len(qs) > MAX_QUESTIONS for _, qs in s["progress"]):
            raise BadState("too many questions")
        if not isinstance(s["hop"], int) or s["hop"] < 1:
            raise BadState("bad hop")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadState):
            raise
        raise BadState(f"malformed state: {exc!r}") from None
    held = world.by_name.get(name.casefold())
    if held is not None and held != eid:
        raise BadState(f"the name {name} is held here by entity {held}")
    if eid in world.entities:
        raise BadState(f"entity {eid} is already here")
    return s


def put_in(world: World, s: dict[str, Any]) -> Entity:
    """Insert a checked state into the world."""
    e = Entity(s["id"], s["kind"], s["name"], s["x"], s["y"], s["flags"],
               [(int(x), int(y)) for x, y in s["path"]], s["cooldown"])
    world.entities[e.id] = e
    world.by_name[e.name.casefold()] = e.id
    world.grid.insert(e.id, e.x, e.y)
    world._changed(world.grid.where[e.id])
    world.economy.purses[e.id] = Purse(s["coins"], {k: v for k, v in s["goods"] if v > 0})
    if s["progress"]:
        world.progress.by_learner[e.id] = {t: {q: bool(r) for q, r in qs} for t, qs in s["progress"]}
    if s["plan"]:
        world.plans[e.id] = tuple((h, p, a) for h, p, a in s["plan"])
    return e
