"""An NPC's mind as plain data, to move it to another process (a region
handoff, server/cluster/region_npcs.py): `mind_to_dict` and `mind_from_dict`.

What travels: the persona's name, the memory stream (each memory's id, game
minute, kind, text, importance, last access; the ids go on, and the
importance summed since the last reflection), the day it last planned, a
meeting it was asked to, the events it knows (and whom it told), its
cooldowns with partners and the neighbours it chose to keep to its work
rather than greet (world ticks: every region runs the same clock,
server/cluster/clock.py, and entity ids are unique across regions),
when it may take the initiative next (as seconds from now: each process
has its own clock), its activity, where it is heading, a guided walk and
its recent lines. Its plan for the day is the world's (`World.plans`) and
travels with the entity.

What does not: anything tied to this process's engine or to people here.
The caller ends those first (region_npcs.py: a job in flight is
cancelled, a conversation ended, a quiz dropped); this module does not
carry them. Embeddings are not carried either: they follow from the text
and the receiving embedder computes them again in the background, as
after a restart (with them a full stream would pass NATS's 1 MiB message).

`mind_from_dict` checks everything before it builds a new Mind: a bad state
raises MindStateError and changes nothing.
"""
from __future__ import annotations

import json
import math
from typing import Any

from agents.events import MAX_EVENTS, KnownEvent
from agents.memory import MAX_MEMORIES, Memory, MemoryStream
from agents.mind import RECENT_LINES, Mind
from agents.personas import Persona

# 2 added "weighed" (the keep cooldowns); a version 1 state (a handoff logged
# before an upgrade, sent again after it) is taken in with none.
VERSION = 2
VERSIONS = (1, 2)
# A memory's text: lines said in the world are at most 280 characters and
# the minds' own memories quote one or two of them; 2,000 leaves room.
MAX_TEXT = 2000
MAX_KIND = 32  # "observation", "reflection", ...: short words
MAX_NAME = 64  # names and places (the world's names are at most 24)
# Partners it keeps a cooldown with (only those still running are sent): a
# busy square gives a few dozen; 256 bounds a flood.
MAX_COOLDOWNS = 256
# Neighbours it chose to keep to its work rather than greet (agents/npc_talk.py),
# those still running: like cooldowns, a few dozen at most on a busy square.
MAX_WEIGHED = 256
# Told (event, partner) pairs: MAX_EVENTS events, each told to a few dozen people.
MAX_TOLD = 512
# The whole state, as compact JSON bytes (MessagePack is smaller): under the
# region wire's 768 KiB message bound, itself under NATS's 1 MiB default
# payload. 2,000 memories of ~100 characters take about 300 KB; a stream
# past the bound sheds its least important old memories when it is sent.
MAX_STATE_BYTES = 512 * 1024


KEYS = frozenset({"v", "name", "memories", "next_id", "since_reflection", "plan_day", "meeting", "events", "told",
                  "pending", "cooldowns", "weighed", "initiative_in", "activity", "heading_to", "guiding",
                  "recent_lines"})
KEYS_BY_VERSION = {1: KEYS - {"weighed"}, 2: KEYS}


class MindStateError(ValueError):
    """A mind state that cannot be taken in: refused, nothing changed."""


def state_bytes(d: dict[str, Any]) -> int:
    """The state's size as compact JSON (an upper bound of its MessagePack size)."""
    return len(json.dumps(d, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())


def mind_to_dict(mind: Mind, now_s: float, tick: int) -> dict[str, Any]:
    """The mind's state. `now_s`: the minds' clock (budget seconds); `tick`:
    the world's tick (cooldowns that have run out are left behind)."""
    mem = mind.memory
    cooldowns = sorted((p, t) for p, t in mind.cooldown_until.items() if t > tick)[-MAX_COOLDOWNS:]
    weighed = sorted((p, t) for p, t in mind.weighed_until.items() if t > tick)[-MAX_WEIGHED:]
    ev = mind.events
    d = {
        "v": VERSION, "name": mind.name,
        "memories": [[m.id, m.minute, m.kind, m.text[:MAX_TEXT], m.importance, m.last_access]
                     for m in mem.memories[-MAX_MEMORIES:]],
        "next_id": mem.next_id, "since_reflection": mem.importance_since_reflection,
        "plan_day": mind.plan_day, "meeting": list(mind.meeting) if mind.meeting else None,
        "events": [[e.what, e.place, e.day, e.hour, e.source] for e in ev.events.values()],
        "told": sorted([k[0], k[1], k[2], who] for k, who in ev.told if k in ev.events)[:MAX_TOLD],
        "pending": list(ev.pending.key) if ev.pending is not None and ev.pending.key in ev.events else None,
        "cooldowns": [list(c) for c in cooldowns],
        "weighed": [list(w) for w in weighed],
        "initiative_in": max(0.0, mind.next_initiative_at - now_s),
        "activity": mind.activity, "heading_to": mind.heading_to,
        "guiding": list(mind.guiding) if mind.guiding else None,
        "recent_lines": list(mind.recent_lines),
    }
    size = state_bytes(d)
    if size > MAX_STATE_BYTES:  # shed the least important of the oldest, as the stream forgets
        rows = d["memories"]
        order = sorted(range(len(rows)), key=lambda i: (rows[i][4], rows[i][1]))
        drop: set[int] = set()
        for i in order:
            if size <= MAX_STATE_BYTES:
                break
            drop.add(i)
            size -= len(json.dumps(rows[i], separators=(",", ":"), ensure_ascii=False).encode()) + 1
        d["memories"] = [r for i, r in enumerate(rows) if i not in drop]
    return d


# -- taking a state in ------------------------------------------------------------
def _str(v: Any, what: str, limit: int = MAX_NAME, empty: bool = False) -> str:
    if not isinstance(v, str) or len(v) > limit or (not v and not empty):
        raise MindStateError(f"{what}: expected a string of 1-{limit} characters")
    return v


def _int(v: Any, what: str, lo: int = 0, hi: int = 2 ** 53) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise MindStateError(f"{what}: expected an integer in {lo}..{hi}")
    return v


def _num(v: Any, what: str, lo: float = -1e15, hi: float = 1e15) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise MindStateError(f"{what}: expected a finite number in {lo}..{hi}")
    return float(v)


def _list(v: Any, what: str, limit: int, width: int | None = None) -> list:
    if not isinstance(v, list) or len(v) > limit:
        raise MindStateError(f"{what}: expected a list of at most {limit}")
    if width is not None and not all(isinstance(x, list) and len(x) == width for x in v):
        raise MindStateError(f"{what}: expected rows of {width}")
    return v


def _place(v: Any, what: str, places: set[str] | None) -> str:
    v = _str(v, what)
    if places is not None and v not in places:
        raise MindStateError(f"{what}: unknown place {v!r}")
    return v


def mind_from_dict(d: Any, persona: Persona, now_s: float, embedder: Any = None,
                   places: set[str] | None = None) -> Mind:
    """A new Mind for `persona` holding the state `d` (from mind_to_dict).
    `places`: the map's place names, when known, to check places against."""
    if not isinstance(d, dict):
        raise MindStateError("a mind state is a map")
    try:
        return _build(d, persona, now_s, embedder, places)
    except MindStateError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise MindStateError(f"malformed mind state: {exc!r}") from None


def _build(d: dict[str, Any], persona: Persona, now_s: float, embedder: Any, places: set[str] | None) -> Mind:
    v = d.get("v")
    if type(v) is not int or v not in VERSIONS:
        raise MindStateError(f"mind state version {v!r}, expected one of {VERSIONS}")
    keys = KEYS_BY_VERSION[v]
    if set(d) != keys:
        raise MindStateError(f"malformed mind state: keys {sorted(map(str, set(d) ^ keys))} missing or unknown")
    if d["name"] != persona.name:
        raise MindStateError(f"the state is {d['name']!r}'s mind, not {persona.name!r}'s")
    memories: list[Memory] = []
    last_id = 0
    for i, row in enumerate(_list(d["memories"], "memories", MAX_MEMORIES, 6)):
        mid = _int(row[0], f"memory {i} id", 1)
        if mid <= last_id:
            raise MindStateError(f"memory {i}: ids must increase")
        last_id = mid
        memories.append(Memory(mid, _num(row[1], f"memory {i} minute", 0), _str(row[2], f"memory {i} kind", MAX_KIND),
                               _str(row[3], f"memory {i} text", MAX_TEXT, empty=True),
                               _num(row[4], f"memory {i} importance", 0, 10), _num(row[5], f"memory {i} access", 0)))
    next_id = _int(d["next_id"], "next_id", last_id + 1 if memories else 1)
    since = _num(d["since_reflection"], "since_reflection", 0)
    plan_day = _int(d["plan_day"], "plan_day", -1, 10 ** 6)
    meeting = None
    if d["meeting"] is not None:
        m = _list(d["meeting"], "meeting", 3)
        if len(m) != 3:
            raise MindStateError("meeting: expected [name, place, hour]")
        meeting = (_str(m[0], "meeting name"), _place(m[1], "meeting place", places), _int(m[2], "meeting hour", 0, 23))
    events: dict[tuple[str, int, int], KnownEvent] = {}
    for i, row in enumerate(_list(d["events"], "events", MAX_EVENTS, 5)):
        ev = KnownEvent(_str(row[0], f"event {i} what"), _place(row[1], f"event {i} place", places),
                        _int(row[2], f"event {i} day", 0, 10 ** 6), _int(row[3], f"event {i} hour", 0, 23),
                        _str(row[4], f"event {i} source", MAX_TEXT, empty=True))
        events[ev.key] = ev
    told = set()
    for i, row in enumerate(_list(d["told"], "told", MAX_TOLD, 4)):
        key = (_str(row[0], f"told {i} place"), _int(row[1], f"told {i} day", 0, 10 ** 6),
               _int(row[2], f"told {i} hour", 0, 23))
        if key not in events:
            raise MindStateError(f"told {i}: an event it does not know")
        told.add((key, _str(row[3], f"told {i} partner").casefold()))
    pending = None
    if d["pending"] is not None:
        p = _list(d["pending"], "pending", 3)
        key = (p[0], p[1], p[2]) if len(p) == 3 else None
        if key not in events:
            raise MindStateError("pending: an event it does not know")
        pending = events[key]
    cooldowns = {_int(p, f"cooldown {i} partner", 1): _int(t, f"cooldown {i} tick")
                 for i, (p, t) in enumerate(_list(d["cooldowns"], "cooldowns", MAX_COOLDOWNS, 2))}
    weighed = {_int(p, f"weighed {i} neighbour", 1): _int(t, f"weighed {i} tick")
               for i, (p, t) in enumerate(_list(d.get("weighed", []), "weighed", MAX_WEIGHED, 2))}
    initiative_in = _num(d["initiative_in"], "initiative_in", 0, 86400)
    activity = _str(d["activity"], "activity", MAX_TEXT)
    heading_to = None if d["heading_to"] is None else _place(d["heading_to"], "heading_to", places)
    guiding = None
    if d["guiding"] is not None:
        g = _list(d["guiding"], "guiding", 4)
        if len(g) != 4:
            raise MindStateError("guiding: expected [person, name, place, tick]")
        guiding = (_int(g[0], "guiding person", 1), _str(g[1], "guiding name"), _place(g[2], "guiding place", places),
                   _int(g[3], "guiding tick"))
    lines = [_str(t, f"recent line {i}", MAX_TEXT, empty=True)
             for i, t in enumerate(_list(d["recent_lines"], "recent_lines", RECENT_LINES))]
    size = state_bytes(d)  # every field checked (finite numbers...): its size as it would be sent
    if size > MAX_STATE_BYTES:
        raise MindStateError(f"mind state of {size} bytes is over {MAX_STATE_BYTES}")
    # -- all checked: build it ----------------------------------------------------
    stream = MemoryStream(persona.name, embedder)
    for m in memories:
        stream.load(m)  # the embedder (if any) embeds them again in the background
    stream.next_id = next_id
    stream.importance_since_reflection = since
    mind = Mind(persona, stream)
    mind.plan_day, mind.meeting = plan_day, meeting
    mind.events.events, mind.events.told, mind.events.pending = events, told, pending
    mind.cooldown_until, mind.weighed_until = cooldowns, weighed
    mind.next_initiative_at = now_s + initiative_in
    mind.activity, mind.heading_to, mind.guiding = activity, heading_to, guiding
    mind.recent_lines.extend(lines)
    return mind
