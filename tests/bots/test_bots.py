"""A short, bounded bot run against a test server: everyone connects, the
report's figures are sane, churn bots resume their avatars, garbage bots are
refused with error codes while the others keep getting updates; and the
loopback guard."""
from __future__ import annotations

import argparse
import asyncio

import pytest

from client_demo import bots_report as rep
from client_demo.bots import _run_bots, check_args, is_loopback


def args_for(url: str, **kw) -> argparse.Namespace:
    base = dict(url=url, count=50, ramp=1.0, duration=4.0, behaviour="mixed", seed=3, procs=1, churn=False,
                slow_readers=0, garbage=0, json=None, allow_remote=False, quiet=True, part=None, nice=0)
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
    # garbage bots got their documented codes and were cut off ...
    assert report["errors_by_code"].get("bad_frame", 0) > 0
    assert set(report["errors_by_code"]) <= {"bad_frame", "unknown_type", "missing_field", "too_long",
                                             "not_finite", "text_frame", "already_joined", "bad_move", "bad_value"}
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
