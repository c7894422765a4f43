"""`hamlet region` as real processes: two regions with walkers hand
entities back and forth and, stopped, account for every walker exactly
once, each serving /metrics with its region as a label; a bad region name
is refused before anything starts; `hamlet cluster` prints a browser URL
that serves the client."""
from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from server.cli import main
from server.http import DEFAULT_WEB_ROOT


def test_unknown_region_is_refused(capsys):
    assert main(["region", "--nats", "nats://127.0.0.1:1", "--region", "r9", "--regions", "2"]) == 1
    assert "no region 'r9'" in capsys.readouterr().err


def test_two_region_processes_hand_walkers_over(nats_server, tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "server.cli", "region", "--nats", nats_server.url,
                               "--world", "cli", "--region", r, "--regions", "2", "--walkers", "30",
                               "--tick-rate", "20", "--status-every", "0.5", "--db", str(tmp_path / f"{r}.db"),
                               "--http-port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for r in ("r0", "r1")]
    try:
        firsts = [json.loads(p.stdout.readline()) for p in procs]
        time.sleep(5)
        for first in firsts:
            with urllib.request.urlopen(first["http"] + "/metrics", timeout=5) as resp:
                text = resp.read().decode()
            assert f'hamlet_entities{{region="{first["region"]}"}}' in text
            assert f'hamlet_region_handoffs_total{{region="{first["region"]}"}}' in text
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=20)[0] for p in procs]
    finals = [json.loads(line) for out in outs for line in out.splitlines() if '"final"' in line]
    assert [f["region"] for f in finals] == ["r0", "r1"]
    live = [set(f["entities"]) for f in finals]
    assert not live[0] & live[1]                   # none live in both
    everywhere = live[0] | live[1] | set(finals[0]["in_transit"]) | set(finals[1]["in_transit"])
    assert len(everywhere) == 60                   # none lost (live, or in its source's log)
    assert sum(f["handoffs"] for f in finals) > 0  # they did cross


def test_cluster_prints_a_browser_url_that_serves_the_client(nats_server, tmp_path):
    """`hamlet cluster` says where to open the browser client; that URL,
    on the gateway's OS-chosen port, serves the page and its modules."""
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "cluster", "--nats", nats_server.url,
                             "--world", "web", "--data", str(tmp_path), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        said = ""
        while "Open http" not in said and time.monotonic() < deadline:
            try:
                said = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
        found = re.search(r"Open (http://127\.0\.0\.1:\d+/) in a browser, or connect a client to ws://", said)
        assert found, f"no browser URL in {said!r}"
        for name, ctype in (("index.html", "text/html"), ("app.js", "text/javascript")):
            with urllib.request.urlopen(found[1] + ("" if name == "index.html" else name), timeout=5) as resp:
                assert resp.headers["Content-Type"] == f"{ctype}; charset=utf-8"
                assert resp.read() == (DEFAULT_WEB_ROOT / name).read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_a_gateway_on_every_address_gives_a_url_one_can_connect_to():
    from types import SimpleNamespace

    from server.cluster.gateway import Gateway
    from server.http import reachable_host

    assert [reachable_host(h) for h in ("0.0.0.0", "", "::", "10.0.0.5")] == ["127.0.0.1", "127.0.0.1", "[::1]",
                                                                             "10.0.0.5"]
    sock = SimpleNamespace(getsockname=lambda: ("0.0.0.0", 8765))
    gw = SimpleNamespace(config=SimpleNamespace(host="0.0.0.0"), _ws_server=SimpleNamespace(sockets=[sock]))
    gw.port = Gateway.port.fget(gw)
    assert Gateway.url.fget(gw) == "ws://127.0.0.1:8765"  # was ws://0.0.0.0:8765
