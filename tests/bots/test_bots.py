"""A short, bounded bot run against a test server: everyone connects, the
report's figures are sane, churn bots resume their avatars, garbage bots are
refused with error codes while the others keep getting updates; trading
bots trade at the NPCs' shops and among themselves with every acknowledged
trade in the log and goods and coins conserved (bench/economy_audit.py,
which is shown to catch planted faults); and the loopback guard."""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3

import msgpack
import pytest

from client_demo import bots_report as rep
from client_demo.bots import _run_bots, check_args, is_loopback


def args_for(url: str, **kw) -> argparse.Namespace:
    base = dict(url=url, count=50, ramp=1.0, duration=4.0, behaviour="mixed", seed=3, procs=1, churn=False,
                slow_readers=0, garbage=0, json=None, allow_remote=False, quiet=True, part=None, nice=0,
                reconnect=False, trade_log=None)
    base.update(kw)
    return argparse.Namespace(**base)


async def run_bots(server, **kw) -> dict:
    base = f"http://127.0.0.1:{server.port}"
    before = await asyncio.to_thread(rep.read_metrics, base)
    raw = await _run_bots(args_for(server.url, **kw), range(kw.get("count", 50)), progress=False)
    after = await asyncio.to_thread(rep.read_metrics, base)
    return rep.summarise(rep.merge([raw]), before, after)


async def test_fifty_bots_connect_and_the_report_is_sane(start_server):
    server = await start_server(tick_rate=20.0, ticks_per_tile=4)
    report = await run_bots(server, garbage=3)
    assert report["connects"] == {"attempted": 50, "succeeded": 50, "failed": 0, "failed_reasons": {}}
    ping = report["ping_rtt_ms"]
    assert ping["count"] > 50 and 0 < ping["p50"] <= ping["p95"] <= ping["p99"] <= ping["max"] < 5000
    action = report["action_rtt_ms"]
    assert action["count"] > 10 and action["p50"] > 0
    assert report["bytes_in_per_bot_s"] > 100 and report["bytes_out_per_bot_s"] > 1
    assert report["state_updates_per_bot_s"] > 1
    # garbage bots got their documented codes and were cut off (and the
    # trading bots among the mixed, the economy's refusals) ...
    assert report["errors_by_code"].get("bad_frame", 0) > 0
    assert set(report["errors_by_code"]) <= {"bad_frame", "unknown_type", "missing_field", "too_long",
                                             "not_finite", "text_frame", "already_joined", "bad_move", "bad_value",
                                             "not_enough", "out_of_range", "offer_expired", "full", "no_such_entity",
                                             "price_changed"}
    assert report["trades"]["traders"] > 0  # mixed has trading bots
    assert report["closes_by_code"].get("4005") == 3
    # ... and the server's own figures were read before and after
    server_part = report["server"]
    assert server_part["tick_ms"]["p99"] is not None and server_part["tick_ms"]["p99"] > 0
    assert server_part["rejected_by_reason"].get("bad_frame", 0) > 0


async def test_churn_bots_resume_their_avatars(start_server):
    server = await start_server(tick_rate=20.0)
    report = await run_bots(server, count=20, churn=True, duration=6.0)
    assert report["connects"]["succeeded"] == 20
    assert report["resumes"]["ok"] > 0 and report["resumes"]["failed"] == 0
    players = [e for e in server.game.world.entities.values() if e.kind == "player"]
    assert len(players) == 20  # nobody was duplicated or lost


async def test_trading_bots_come_back_after_a_restart(start_server, tmp_path):
    """A server stopped mid-run and started again on the same port: the
    bots resume their avatars and trade on, and the audit still holds."""
    from bench.economy_audit import audit

    config = dict(npcs=True, model="none", tick_rate=50.0, ticks_per_tile=1)
    server = await start_server(**config)
    port = server.port
    args = args_for(server.url, count=10, behaviour="trade", ramp=0.5, duration=8.0, reconnect=True, trade_log=True)
    running = asyncio.create_task(_run_bots(args, range(10), progress=False))
    await asyncio.sleep(3.0)
    await server.stop()
    stopped_at = server.game.world.tick
    await asyncio.sleep(0.5)
    server = await start_server(port=port, **config)
    raw = await running
    await server.stop()
    report = rep.summarise(rep.merge([raw]), None, None)
    assert report["reconnects"] == {"ok": 10, "failed": 0}
    assert len(raw["trade_purses"]) == 10 and all(p["connected"] for p in raw["trade_purses"])
    after = [r for r in raw["trade_log"] if r["o"] == "ack" and r["t"] > stopped_at]
    assert after  # they traded on
    result = audit(tmp_path / "world.db", ticks_per_tile=1, records=raw["trade_log"], purses=raw["trade_purses"])
    assert result["ok"] and result["bots"]["purse_mirror_mismatches"] == 0, result


def test_trade_figures_merge_across_processes():
    def part(acked: dict, rtt: list) -> dict:
        return {**rep.merge([]), "attempted": 2, "succeeded": 2, "traders": 2, "trade_requests": dict(acked),
                "trade_acked": acked, "trade_refused": {"price_changed": 1}, "trade_rtt": rtt,
                "trade_log": [{"k": "buy"}], "failed_reasons": {}, "errors": {}, "closes": {}}
    merged = rep.merge([part({"buy": 2, "offer": 1}, [0.01, 0.02]), part({"buy": 1, "accept": 1}, [0.03])])
    report = rep.summarise(merged, None, None)
    assert report["trades"]["acked"] == {"buy": 3, "offer": 1, "accept": 1}
    assert report["trades"]["done"] == 4  # offers move nothing until accepted
    assert report["trades"]["refused_by_code"] == {"price_changed": 2}
    assert report["trade_rtt_ms"]["count"] == 3 and report["trade_rtt_ms"]["max"] == 30.0
    assert len(merged["trade_log"]) == 2 and "trade_log" not in report
    assert "trade_rtt_ms" in rep.table(report)


def test_loopback_guard():
    assert is_loopback("ws://127.0.0.1:8765") and is_loopback("ws://localhost:1")
    assert not is_loopback("ws://10.1.2.3:8765")
    assert not is_loopback("ws://192.168.0.10:80")
    problem = check_args(args_for("ws://10.1.2.3:8765"))
    assert problem and "loopback" in problem
    assert check_args(args_for("ws://10.1.2.3:8765", allow_remote=True)) is None
    assert check_args(args_for("http://127.0.0.1:1")) is not None
    assert check_args(args_for("ws://127.0.0.1:1", count=0)) is not None


@pytest.mark.parametrize("q, expected", [(0.5, 1.5), (0.99, 2.0 - 0.02 * 1)])
def test_histogram_quantile_from_two_scrapes(q, expected):
    before = {'h_bucket{le="0.001"}': 0, 'h_bucket{le="0.002"}': 0, 'h_bucket{le="+Inf"}': 0}
    after = {'h_bucket{le="0.001"}': 0, 'h_bucket{le="0.002"}': 100, 'h_bucket{le="+Inf"}': 100}
    assert rep.histogram_quantile(before, after, "h", q) == pytest.approx(expected, abs=0.05)


async def test_trading_bots_trade_and_nothing_is_made_or_lost(start_server, tmp_path):
    """Trading bots against a server with its shopkeepers (routines, no
    model): they buy and sell at the shops and trade among themselves; every
    acknowledged trade is in the log, the log replays to the server's final
    state, and goods and coins are conserved (production on a squeezed clock
    included)."""
    from bench.economy import squeezed_goods
    from bench.economy_audit import audit

    goods = squeezed_goods(tmp_path / "goods.toml", window_min=3)
    server = await start_server(npcs=True, model="none", tick_rate=50.0, ticks_per_tile=1, goods=str(goods))
    raw = await _run_bots(args_for(server.url, count=12, behaviour="trade", duration=8.0, trade_log=True),
                          range(12), progress=False)
    report = rep.summarise(rep.merge([raw]), None, None)
    await server.stop()
    trades = report["trades"]
    assert report["connects"]["succeeded"] == 12 and trades["traders"] == 12
    assert trades["acked"].get("buy", 0) > 0 and trades["done"] >= trades["acked"]["buy"]
    assert report["trade_rtt_ms"]["count"] == sum(trades["acked"].values()) and report["trade_rtt_ms"]["p50"] > 0
    result = audit(tmp_path / "world.db", ticks_per_tile=1, records=raw["trade_log"], purses=raw["trade_purses"])
    assert result["replay"]["ok"] and result["final"]["equals_replay"]
    assert result["conservation_violations"] == 0
    assert result["acked_trades_lost"] == 0 and result["duplicated_items"] == 0
    assert result["bots"]["acked"] == sum(trades["acked"].values())
    assert result["bots"]["purse_mirror_mismatches"] == 0
    assert result["totals"]["flow"].get("produced", 0) > 0  # the squeezed clock ran the workplaces
    # ... and the audit sees what it is there to see: an acknowledged trade
    # missing from the log, a trade logged twice, coins that appeared
    buy = next(r for r in raw["trade_log"] if r["k"] == "buy" and r["o"] == "ack")

    def planted(name: str, change) -> dict:
        copy = tmp_path / name / "world.db"
        copy.parent.mkdir()
        shutil.copyfile(tmp_path / "world.db", copy)
        conn = sqlite3.connect(copy)
        row = next((seq, data) for seq, data in conn.execute(
            "SELECT seq, data FROM events WHERE tick=? AND kind='buy'", (buy["t"],))
            if msgpack.unpackb(data)["entity"] == buy["e"])
        change(conn, *row)
        conn.commit()
        conn.close()
        return audit(copy, ticks_per_tile=1, records=raw["trade_log"], purses=raw["trade_purses"])

    lost = planted("lost", lambda conn, seq, data: conn.execute(
        "DELETE FROM events WHERE tick=? AND seq=?", (buy["t"], seq)))
    assert lost["acked_trades_lost"] == 1 and not lost["ok"]
    twice = planted("twice", lambda conn, seq, data: conn.execute(
        "INSERT INTO events VALUES (?, 999, 'buy', ?)", (buy["t"], data)))
    assert twice["duplicated_items"] == 1 and not twice["ok"]

    def more_coins(conn, seq, data) -> None:
        tick, blob = conn.execute("SELECT tick, data FROM snapshots ORDER BY tick DESC LIMIT 1").fetchone()
        snap = msgpack.unpackb(blob, strict_map_key=False)
        snap["economy"]["purses"][-1][1] += 5
        conn.execute("UPDATE snapshots SET data=? WHERE tick=?", (msgpack.packb(snap), tick))
    appeared = planted("appeared", more_coins)
    assert appeared["conservation_violations"] == 1 and not appeared["final"]["equals_replay"]
    assert appeared["conservation"][0]["item"] == "coins"
