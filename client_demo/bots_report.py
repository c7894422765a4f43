"""The load report: merging bots' figures (from one or several processes),
reading the server's Prometheus metrics before and after, and printing a
table and JSON."""
from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from typing import Any


def pct(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    if not values:
        return {"count": 0}
    v = sorted(values)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(p * len(v)))] * scale, 2)
    return {"count": len(v), "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": round(v[-1] * scale, 2)}


# Trades whose ack means goods or coins changed hands (client_demo/bot_trade.py).
MOVING_KINDS = ("give", "buy", "sell", "accept")


def bots_part(bots: list, duration: float, trade_log: bool = False) -> dict[str, Any]:
    """The raw, mergeable figures of the bots of one process; with
    `trade_log`, every trade request and each trading bot's last purse."""
    fails = Counter(b.stats.connect_error for b in bots if b.stats.connect_error)
    errors: Counter = Counter()
    closes: Counter = Counter()
    for b in bots:
        errors.update(b.stats.errors)
        if b.stats.close_code is not None:
            closes[str(b.stats.close_code)] += 1
    traders = [b.trader for b in bots if getattr(b, "trader", None) is not None]
    trade: dict[str, Counter] = {k: Counter() for k in ("requests", "acked", "refused", "lost")}
    for t in traders:
        for k, counter in trade.items():
            counter.update(getattr(t.stats, k))
    return {
        "attempted": len(bots), "succeeded": sum(b.stats.connected for b in bots),
        "failed_reasons": dict(fails), "errors": dict(errors), "closes": dict(closes),
        "ping": [x for b in bots for x in b.ping_rtt.values],
        "action": [x for b in bots for x in b.action_rtt.values],
        "bytes_in": sum(b.stats.bytes_in for b in bots), "bytes_out": sum(b.stats.bytes_out for b in bots),
        "state_updates": sum(b.stats.state_updates for b in bots),
        "bot_seconds": sum(b.stats.connected_s for b in bots if b.stats.connected),
        "resumes_ok": sum(b.stats.resumes_ok for b in bots), "resumes_failed": sum(b.stats.resumes_failed for b in bots),
        "sent": sum(b.stats.sent for b in bots), "duration": duration,
        "reconnects_ok": sum(b.stats.reconnects_ok for b in bots),
        "reconnects_failed": sum(b.stats.reconnects_failed for b in bots),
        "traders": len(traders), "shop_asks": sum(t.stats.shop_asks for t in traders),
        "trade_requests": dict(trade["requests"]), "trade_acked": dict(trade["acked"]),
        "trade_refused": dict(trade["refused"]), "trade_lost": dict(trade["lost"]),
        "trade_rtt": [x for b in bots for x in b.trade_rtt.values],
        "trade_log": [r for t in traders for r in t.stats.records] if trade_log else [],
        "trade_purses": [t.stats.final for t in traders if t.stats.final] if trade_log else [],
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"attempted": 0, "succeeded": 0, "failed_reasons": Counter(), "errors": Counter(),
                           "closes": Counter(), "ping": [], "action": [], "bytes_in": 0, "bytes_out": 0,
                           "state_updates": 0, "bot_seconds": 0.0, "resumes_ok": 0, "resumes_failed": 0,
                           "sent": 0, "duration": 0.0, "reconnects_ok": 0, "reconnects_failed": 0, "traders": 0,
                           "shop_asks": 0, "trade_requests": Counter(), "trade_acked": Counter(),
                           "trade_refused": Counter(), "trade_lost": Counter(), "trade_rtt": [], "trade_log": [],
                           "trade_purses": []}
    for p in parts:
        for k, v in p.items():
            if isinstance(out.get(k), Counter):
                out[k].update(v)
            elif k == "duration":
                out[k] = max(out[k], v)
            else:
                out[k] += v
    return out


def summarise(raw: dict[str, Any], server_before: dict | None, server_after: dict | None) -> dict[str, Any]:
    bs = max(raw["bot_seconds"], 1e-9)
    report = {
        "connects": {"attempted": raw["attempted"], "succeeded": raw["succeeded"],
                     "failed": raw["attempted"] - raw["succeeded"], "failed_reasons": dict(raw["failed_reasons"])},
        "ping_rtt_ms": pct(raw["ping"]),
        "action_rtt_ms": pct(raw["action"]),
        "state_updates_per_bot_s": round(raw["state_updates"] / bs, 2),
        "bytes_in_per_bot_s": round(raw["bytes_in"] / bs, 1),
        "bytes_out_per_bot_s": round(raw["bytes_out"] / bs, 1),
        "messages_sent": raw["sent"],
        "errors_by_code": dict(raw["errors"]),
        "closes_by_code": dict(raw["closes"]),
        "resumes": {"ok": raw["resumes_ok"], "failed": raw["resumes_failed"]},
        "reconnects": {"ok": raw.get("reconnects_ok", 0), "failed": raw.get("reconnects_failed", 0)},
        "duration_s": round(raw["duration"], 1),
    }
    if raw.get("traders"):
        acked = dict(raw["trade_acked"])
        report["trades"] = {
            "traders": raw["traders"],
            "done": sum(acked.get(k, 0) for k in MOVING_KINDS),  # acknowledged: goods or coins moved
            "requests": dict(raw["trade_requests"]), "acked": acked, "refused_by_code": dict(raw["trade_refused"]),
            "lost": dict(raw["trade_lost"]), "shop_asks": raw["shop_asks"],
        }
        report["trade_rtt_ms"] = pct(raw["trade_rtt"])
    if server_before is not None and server_after is not None:
        report["server"] = server_delta(server_before, server_after)
    return report


# -- the server's /metrics -----------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$')


def read_metrics(base_url: str, timeout: float = 10.0) -> dict[str, float]:
    with urllib.request.urlopen(base_url.rstrip("/") + "/metrics", timeout=timeout) as r:
        text = r.read().decode()
    return parse_prometheus(text)


def parse_prometheus(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def histogram_quantile(before: dict[str, float], after: dict[str, float], name: str, q: float) -> float | None:
    """q-quantile (in ms) of the observations between two scrapes, by linear
    interpolation inside the bucket, as Prometheus does."""
    buckets = []
    for key, value in after.items():
        if key.startswith(name + "_bucket{"):
            le = re.search(r'le="([^"]+)"', key).group(1)
            bound = float("inf") if le == "+Inf" else float(le)
            buckets.append((bound, value - before.get(key, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return round(prev_bound * 1000, 2)
            span = count - prev_count
            frac = (rank - prev_count) / span if span > 0 else 1.0
            return round((prev_bound + (bound - prev_bound) * frac) * 1000, 2)
        prev_bound, prev_count = bound, count
    return None


def server_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, label in (("hamlet_tick_duration_seconds", "tick_ms"), ("hamlet_tick_lateness_seconds", "lateness_ms")):
        out[label] = {f"p{int(q * 100)}": histogram_quantile(before, after, name, q) for q in (0.5, 0.95, 0.99)}
    rejected = {}
    for key, value in after.items():
        if key.startswith("hamlet_messages_rejected_total{"):
            reason = re.search(r'reason="([^"]+)"', key).group(1)
            delta = value - before.get(key, 0.0)
            if delta:
                rejected[reason] = int(delta)
    out["rejected_by_reason"] = rejected
    out["ticks_skipped"] = int(after.get("hamlet_ticks_skipped_total", 0) - before.get("hamlet_ticks_skipped_total", 0))
    out["clients_connected_after"] = after.get("hamlet_clients_connected")
    return out


def table(report: dict[str, Any]) -> str:
    rows = [("connects", f"{report['connects']['succeeded']}/{report['connects']['attempted']} ok, "
                         f"{report['connects']['failed']} failed {report['connects']['failed_reasons'] or ''}")]
    for key in ("ping_rtt_ms", "action_rtt_ms"):
        r = report[key]
        rows.append((key, "no samples" if not r.get("count") else
                     f"p50 {r['p50']}  p95 {r['p95']}  p99 {r['p99']}  max {r['max']}  (n={r['count']})"))
    rows += [("state updates/bot/s", report["state_updates_per_bot_s"]),
             ("bytes in/bot/s", report["bytes_in_per_bot_s"]), ("bytes out/bot/s", report["bytes_out_per_bot_s"]),
             ("errors by code", report["errors_by_code"] or "none"), ("closes by code", report["closes_by_code"] or "none"),
             ("resumes", report["resumes"]), ("reconnects", report["reconnects"])]
    if "trades" in report:
        t, r = report["trades"], report["trade_rtt_ms"]
        rows += [("trades", f"{t['done']} done by {t['traders']} traders; acked {t['acked']}"),
                 ("trades refused", t["refused_by_code"] or "none"), ("trades lost", t["lost"] or "none"),
                 ("trade_rtt_ms", "no samples" if not r.get("count") else
                  f"p50 {r['p50']}  p95 {r['p95']}  p99 {r['p99']}  max {r['max']}  (n={r['count']})")]
    if "server" in report:
        s = report["server"]
        rows += [("server tick ms", s["tick_ms"]), ("server lateness ms", s["lateness_ms"]),
                 ("server rejected", s["rejected_by_reason"] or "none")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:>{width}}  {v}" for k, v in rows)


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, default=lambda o: dict(o) if isinstance(o, Counter) else str(o))
