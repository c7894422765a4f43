"""What a region reports of itself for `hamlet sim --regions`
(server/cluster/sim_cluster.py): its tick times, the NPCs it holds and
sends, its NPC handoffs in and out, and, with a model, its minds' talk and
tokens. Served live at `GET /figures` (region_http.py) and printed once
more in the region's final status line when it stops (commands.py), taken
between two ticks so it is one consistent picture of this region.

Exactly-once across regions is checked from these pictures: an NPC is in
one region's world, or in transit (`npcs_in_transit`, its handoff id) and
not yet applied by its destination (whose `npc_arrivals` holds the ids it
applied).
"""
from __future__ import annotations

from typing import Any


def _quantile(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else 0.0


def _npc_handoffs(node) -> tuple[int, list[str]]:
    """(NPC departures logged here, handoff ids of NPC arrivals applied here)."""
    out, arrivals = 0, []
    for _, kind, hid, _, _, _, state in node.hlog.rows_after(-1):
        if state.get("kind") != "npc":  # `done` rows carry no state: they are counted by their `out`
            continue
        if kind == "out":
            out += 1
        elif kind == "in":
            arrivals.append(hid)
    return out, arrivals


def _minds(node) -> dict[str, Any]:
    minds: Any = node.npcs.minds if node.npcs is not None else None
    transcripts = getattr(minds, "transcripts", None)
    if minds is None or transcripts is None:  # no NPCs here, or NPCs without a model (RoutineMinds)
        return {"conversations": None, "lines": None, "tokens": None, "jobs": None}
    tally = minds.tally  # every job of this region's minds (agents/job_tally.py)
    talks = [c for c in transcripts if c.lines]
    return {"conversations": len(talks), "lines": sum(len(c.lines) for c in talks),
            "tokens": tally.tokens, "jobs": dict(tally.by_status)}


def region_figures(node) -> dict[str, Any]:
    world = node.game.world
    ticks = sorted(node.tick_ms)  # the last 20,000 ticks at most (RegionNode.tick_ms)
    outs, arrivals = _npc_handoffs(node)
    transit = [{"name": state["name"], "handoff": hid, "to": dest}
               for hid, (dest, state) in sorted(node.hlog.outgoing.items()) if state.get("kind") == "npc"]
    return {
        "region": node.region.name, "tick": world.tick, "game_clock": world.clock(),
        "tick_ms": {"count": len(ticks), "p50": _quantile(ticks, 0.5), "p99": _quantile(ticks, 0.99),
                    "max": round(ticks[-1], 3) if ticks else 0.0},
        "npcs": sorted(e.name for e in world.entities.values() if e.kind == "npc"),
        "npcs_in_transit": transit,
        "npc_handoffs_out": outs, "npc_handoffs_in": len(arrivals), "npc_arrivals": arrivals,
        "handoffs_confirmed": len(node.handoff_ms),
        "people_left_waiting": node.npcs.dropped_waiting if node.npcs is not None else 0,
        **_minds(node),
    }
