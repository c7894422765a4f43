"""Why an NPC said or did what it did.

Each line an NPC says and each choice it makes leaves a `Why`: what it
heard, the facts and memories its prompt carried, the candidates it
scored (with their scores) and the one taken, the gate's verdict and what
became of the turn. A mind keeps its last WHY_KEPT of them; `npc_report`
is the JSON an operator reads (`GET /npc/NAME`, behind the admin token)
and the sim's transcript quotes them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.world.world import World

Mind = Any  # agents.mind.Mind, which keeps these records (and imports this module)

# Records kept per NPC: its last few minutes of talk in a crowd, a whole
# conversation otherwise; about 1 KB each.
WHY_KEPT = 32
# Memories shown in a report: the most recent ones.
REPORT_MEMORIES = 12


@dataclass(frozen=True)
class Why:
    tick: int
    clock: str
    kind: str                 # reply, shop, choice, line
    to: str = ""              # whom it answered or talked to
    heard: str = ""           # the line it answered
    line: str = ""            # what it said ("" for a choice)
    outcome: str = ""         # model, fallback, shop, asleep, held, full, chosen, farewell, ended
    verdict: str = ""         # the reply gate's verdict on the model's line ("" when none was judged)
    facts: tuple[str, ...] = ()
    memories: tuple[str, ...] = ()
    candidates: tuple[tuple[str, float], ...] = ()  # (what it could do, mean log-probability per token)
    chosen: str = ""          # the candidate taken


def scored(labels: list[str], result: Any) -> tuple[tuple[str, float], ...]:
    """(label, mean log-probability per token) for each candidate of a score result."""
    if result is None or not getattr(result, "ok", False) or not result.logprobs:
        return tuple((label, float("nan")) for label in labels)
    out = []
    for i, label in enumerate(labels):
        n = len(result.token_logprobs[i]) if getattr(result, "token_logprobs", None) else 1
        out.append((label, round(result.logprobs[i] / max(1, n), 4)))
    return tuple(out)


def record(world: World, mind: Mind, kind: str, **fields: Any) -> Why:
    why = Why(world.tick, world.clock(), kind, **fields)
    mind.why.append(why)
    if mind.why_log is not None:  # a headless sim keeps them all, for its transcript
        mind.why_log.append(why)
    return why


def because(why: Why) -> str:
    """One line of why, for a transcript: the choice and its scores, the
    facts, what became of the model's line."""
    parts = []
    if why.candidates and len(why.candidates) > 1:
        shown = ", ".join(f"{label} {score:.2f}" if score == score else label for label, score in why.candidates)
        parts.append(f"chose *{why.chosen}* of: {shown}")
    if why.facts:
        parts.append("facts: " + " ".join(why.facts))
    if why.memories:
        parts.append("recalled: " + " | ".join(why.memories[:2]))
    if why.outcome == "fallback":
        parts.append(f"the model's line was refused ({why.verdict}); said from facts or persona")
    return "; ".join(parts)


def _json_number(x: float) -> float | None:
    return None if x != x else x  # NaN is not JSON


def npc_report(world: World, mind: Mind) -> dict[str, Any]:
    """What an operator sees of one NPC: where it is and what it is doing (its
    routine's step now), whom it talks to and who waits, its recent memories,
    and why it said and did its last things."""
    e = world.entities.get(mind.entity) if mind.entity is not None else None
    conv = mind.conversation
    whys = []
    for w in mind.why:
        d = asdict(w)
        d["candidates"] = [[label, _json_number(s)] for label, s in w.candidates]
        whys.append(d)
    return {
        "name": mind.name, "entity": mind.entity, "in_world": e is not None,
        "x": e.x if e else None, "y": e.y if e else None,
        "activity": mind.activity, "heading_to": mind.heading_to,
        "talking_with": conv.log.participants if conv is not None else [],
        "waiting": [p.name for p in mind.waiting],
        "memories": [{"minute": round(m.minute, 1), "kind": m.kind, "text": m.text, "importance": m.importance}
                     for m in mind.memory.memories[-REPORT_MEMORIES:]],
        "why": whys,
    }
