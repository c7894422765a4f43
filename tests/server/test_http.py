"""HTTP on the WebSocket port: /healthz, /metrics, static files."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from client_demo.client import HamletClient
from tests.waiting import until


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


async def fetch(url: str) -> tuple[int, str, bytes]:
    return await asyncio.to_thread(get, url)


async def test_healthz_and_metrics(server):
    base = f"http://127.0.0.1:{server.port}"
    c = await HamletClient.connect(server.url)
    await c.join("ann")
    await c.say("counted")
    await c.send_raw(b"\xc1")
    await until(lambda: c.stats.errors.get("bad_frame"))  # counted before its error went out
    status, ctype, body = await fetch(base + "/healthz")
    assert status == 200 and ctype.startswith("application/json")
    health = json.loads(body)
    assert health["status"] == "ok" and health["players"] == 1 and health["tick"] > 0
    status, ctype, body = await fetch(base + "/metrics")
    text = body.decode()
    assert status == 200 and ctype.startswith("text/plain")
    for name in ("hamlet_tick_duration_seconds_bucket", "hamlet_tick_lateness_seconds_bucket",
                 "hamlet_clients_connected 1.0", "hamlet_bytes_in_total", "hamlet_bytes_out_total"):
        assert name in text, name
    assert 'hamlet_messages_rejected_total{reason="bad_frame"} 1.0' in text
    bytes_out = next(float(line.split()[-1]) for line in text.splitlines()
                     if line.startswith("hamlet_bytes_out_total"))
    assert bytes_out > 10_000  # the welcome alone carries the map


async def test_static_files_and_no_escape(server):
    base = f"http://127.0.0.1:{server.port}"
    status, ctype, body = await fetch(base + "/")
    assert status == 200 and ctype.startswith("text/html") and b"Hamlet" in body
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/nope.js"):
        status, _, _ = await fetch(base + path)
        assert status == 404, path
