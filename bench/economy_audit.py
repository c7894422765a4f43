"""The economy bench's audit (bench/economy.py runs the bench, then this):
a finished run's database replayed from tick 0, with the goods and coins
over all purses checked against the starting purses plus logged production,
less what production used and what was consumed, after every tick in which
a purse could change; the worlds loaded at the restarts and the final
snapshot checked against the replay; and the bots' trade records and
purse mirrors checked against the log. `audit` returns what it found;
bench/economy.py's docstring says what each count means.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack

from protocol.codec import Message
from protocol.trade import COINS
from server.persistence import Database
from server.restore import ReplayMismatch, open_world, replay_into, world_catalog
from server.trade import trade_input
from server.world.inputs import Consume, Join, Produce, to_record
from server.world.village import village
from server.world.world import Rejection, World, WorldRules

TRADE_KINDS = ("give", "buy", "sell", "offer", "accept", "decline")
# Inputs after which a purse may have changed (a join opens one).
PURSE_KINDS = ("join", *TRADE_KINDS, "produce", "consume")


def _hash(snap: dict[str, Any]) -> str:
    return hashlib.sha256(msgpack.packb(snap, use_bin_type=True)).hexdigest()


def _totals(purses: Any) -> Counter:
    """Item (and coins) -> total over all purses (a world's, or a snapshot's rows)."""
    out: Counter = Counter()
    if isinstance(purses, dict):
        rows = [(p.coins, p.goods.items()) for p in purses.values()]
    else:
        rows = [(coins, goods) for _, coins, goods in purses]
    for coins, goods in rows:
        out[COINS] += coins
        for item, n in goods:
            out[item] += n
    return out


def _diff(a: dict[str, Any], b: dict[str, Any], limit: int = 5) -> list[str]:
    """Where two world snapshots differ, in a few words."""
    out = []
    for key in sorted(set(a) | set(b)):
        if key == "economy" or _norm(a.get(key)) == _norm(b.get(key)):
            continue
        out.append(f"{key} differs")
    ea, eb = a.get("economy", {}), b.get("economy", {})
    pa = {row[0]: row[1:] for row in ea.get("purses", [])}
    pb = {row[0]: row[1:] for row in eb.get("purses", [])}
    for eid in sorted(set(pa) | set(pb)):
        if _norm(pa.get(eid)) != _norm(pb.get(eid)):
            out.append(f"purse {eid}: {pa.get(eid)} vs {pb.get(eid)}")
    for key in ("offers", "next_offer_id"):
        if _norm(ea.get(key)) != _norm(eb.get(key)):
            out.append(f"economy {key} differs")
    return out[:limit]


def _norm(x: Any) -> Any:
    return json.loads(json.dumps(x)) if x is not None else None


def _canon(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class _Replay:
    """The world replayed from tick 0 with the audit's hooks: the expected
    totals (starting purses + production - use - consumption) checked after
    every tick in which a purse may have changed, and the world's state
    taken at the ticks asked for."""

    def __init__(self, world: World, watch: set[int]) -> None:
        self.world = world
        self.eco = world.economy
        self.expected: Counter = Counter()
        self.flow = Counter()  # started, produced, used, consumed (all items, coins counted apart)
        self.dirty = False
        self.checked = 0
        self.violations: list[dict[str, Any]] = []
        self.watch = watch
        self.states: dict[int, dict[str, Any]] = {}  # tick -> snapshot at the watched ticks
        self._apply, self._simulate = world.apply, world.simulate
        world.apply = self.apply  # replay_into calls these on the instance
        world.simulate = self.simulate

    def apply(self, inp: Any) -> Any:
        is_new = isinstance(inp, Join) and inp.entity not in self.eco.purses
        result = self._apply(inp)
        if isinstance(result, Rejection):
            return result
        if is_new and inp.entity in self.eco.purses:
            p = self.eco.purses[inp.entity]
            self.expected[COINS] += p.coins
            self.flow["start_coins"] += p.coins
            for item, n in p.goods.items():
                self.expected[item] += n
                self.flow["start_goods"] += n
        elif isinstance(inp, Produce):
            r = self.eco.catalog.recipes[inp.recipe]
            for item, n in r.makes:
                self.expected[item] += n
                self.flow["produced"] += n
            for item, n in r.uses:
                self.expected[item] -= n
                self.flow["used"] += n
        elif isinstance(inp, Consume):
            self.expected[inp.item] -= inp.n
            self.flow["consumed"] += inp.n
        if inp.kind in PURSE_KINDS:
            self.dirty = True
        return result

    def simulate(self) -> None:
        self._simulate()
        tick = self.world.tick
        if self.dirty:
            self.check(_totals(self.eco.purses), f"tick {tick}")
            self.dirty = False
        if tick in self.watch:
            self.states[tick] = self.world.snapshot()

    def check(self, totals: Counter, where: str) -> int:
        """Compare totals with what is expected; a drift is counted once (the
        expectation follows it)."""
        self.checked += 1
        bad = 0
        for item in sorted(set(totals) | set(self.expected)):
            if totals.get(item, 0) != self.expected.get(item, 0):
                bad += 1
                if len(self.violations) < 50:
                    self.violations.append({"at": where, "item": item, "expected": self.expected.get(item, 0),
                                            "found": totals.get(item, 0)})
                self.expected[item] = totals.get(item, 0)
        return bad


def audit(db_path: Path, restart_copies: list[Path] = (), ticks_per_tile: int = 4,
          records: list[dict[str, Any]] = (), purses: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """Audit a finished run's database (its server stopped, so that its
    last snapshot is the final state), the copies taken at its restarts, and
    the bots' trade records and last purses. See bench/economy.py's docstring."""
    rules = WorldRules(ticks_per_tile=ticks_per_tile)
    out: dict[str, Any] = {}
    # what each restarted server loaded
    restarts = []
    for copy in restart_copies:
        db = Database(str(copy))
        try:
            w = open_world(db, village(), 0, rules)
            restarts.append({"tick": w.tick, "last_logged_tick": db.last_tick(), "snapshot": w.snapshot()})
        finally:
            db.close()
    db = Database(str(db_path))
    try:
        final = db.latest_snapshot()
        final_tick = max(db.last_tick(), final["tick"] if final else 0)
        world = World(village(), db.get_meta("seed"), rules, world_catalog(db))
        rp = _Replay(world, {r["tick"] for r in restarts})
        replay_error = None
        try:
            applied = replay_into(world, db, final_tick, from_tick=0)
        except ReplayMismatch as exc:
            replay_error, applied = str(exc), None
        out["replay"] = {"ok": replay_error is None, "error": replay_error, "inputs": applied, "ticks": world.tick,
                         "checks": rp.checked}
        # the restart points: the loaded world against the replay, and its totals
        points = []
        for r in restarts:
            mine = rp.states.get(r["tick"])
            same = mine is not None and _hash(mine) == _hash(r["snapshot"])
            point = {"tick": r["tick"], "equals_replay": same}
            if not same and mine is not None:
                point["diff"] = _diff(mine, r["snapshot"])
                if _totals(r["snapshot"]["economy"]["purses"]) != _totals(mine["economy"]["purses"]):
                    point["totals_differ"] = True
                    out.setdefault("restart_totals_violations", 0)
                    out["restart_totals_violations"] += 1
            points.append(point)
        out["restart_points"] = points
        # the end: the final snapshot against the replay
        end = {"tick": final_tick, "has_final_snapshot": final is not None and final["tick"] == final_tick}
        if final is not None and replay_error is None:
            end["equals_replay"] = final["tick"] == world.tick and _hash(final) == _hash(world.snapshot())
            if not end["equals_replay"]:
                end["diff"] = _diff(world.snapshot(), final)
            rp.check(_totals(final["economy"]["purses"]), "final snapshot")
        out["final"] = end
        out["totals"] = {"flow": dict(rp.flow), "final": dict(sorted(_totals(world.economy.purses).items()))}
        violations = len(rp.violations) + out.get("restart_totals_violations", 0)
        out["conservation"] = rp.violations[:10]
        # the bots' records against the log
        logged: Counter = Counter()      # (tick, kind, data) -> rows
        applied_keys: Counter = Counter()  # (kind, data) -> rows, for bots' entities
        accepts: Counter = Counter()
        bots = {r["e"] for r in records}
        rows = db.conn.execute(
            f"SELECT tick, kind, data FROM events WHERE kind IN ({','.join('?' * len(TRADE_KINDS))})", TRADE_KINDS)
        for tick, kind, data in rows:
            d = msgpack.unpackb(data, raw=False)
            key = _canon(d)
            logged[(tick, kind, key)] += 1
            if d.get("entity") in bots:
                applied_keys[(kind, key)] += 1
            if kind == "accept":
                accepts[d["offer"]] += 1
        lost, examples, possible = 0, [], Counter()
        for r in records:
            kind, data = to_record(trade_input(r["e"], Message(r["k"], r["f"])))
            key = _canon(json.loads(json.dumps(data)))
            if r["o"] in ("ack", "lost"):
                possible[(kind, key)] += 1
            if r["o"] == "ack":
                k = (r["t"], kind, key)
                if logged[k] > 0:
                    logged[k] -= 1
                else:
                    lost += 1
                    if len(examples) < 5:
                        examples.append(r)
        dup = sum(max(0, n - possible[k]) for k, n in applied_keys.items())
        dup_examples = [k for k, n in applied_keys.items() if n > possible[k]][:5]
        twice = sum(n - 1 for n in accepts.values() if n > 1)
        # the bots' mirrors of their purses against the final state
        mismatches = []
        if final is not None:
            fp = {row[0]: (row[1], {k: v for k, v in row[2]}) for row in final["economy"]["purses"]}
            for p in purses:
                if p.get("connected") and fp.get(p["e"]) != (p["coins"], p["items"]):
                    mismatches.append({"bot": p["name"], "mirror": [p["coins"], p["items"]], "server": fp.get(p["e"])})
        out["bots"] = {"records": len(records), "acked": sum(1 for r in records if r["o"] == "ack"),
                       "lost_examples": examples, "duplicate_examples": dup_examples,
                       "purse_mirror_mismatches": len(mismatches), "mirror_examples": mismatches[:3]}
        out["conservation_violations"] = violations
        out["acked_trades_lost"] = lost
        out["duplicated_items"] = dup + twice
        ok = (replay_error is None and violations == 0 and lost == 0 and dup + twice == 0
              and all(p["equals_replay"] for p in points) and end.get("equals_replay", False))
        out["ok"] = ok
    finally:
        db.close()
    return out
