"""`hamlet region --replicate` as real processes: a standby with a database
of its own (no shared disk) takes a region over from an owner killed with
SIGKILL, with every walker the owner had made, each once."""
from __future__ import annotations

import json
import signal
import subprocess
import sys


def region(url: str, db: str, *more: str) -> subprocess.Popen:
    with open(db + ".log", "ab") as log:  # its log, beside its database
        return subprocess.Popen([sys.executable, "-m", "server.cli", "region", "--nats", url, "--world", "cli",
                                 "--region", "r0", "--regions", "2", "--replicate", "--lease-ttl", "1",
                                 "--tick-rate", "20", "--status-every", "0.5", "--db", db, *more],
                                stdout=subprocess.PIPE, stderr=log, text=True)


def test_a_standby_process_takes_over_from_a_killed_owner(nats_server, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    owner = region(nats_server.url, str(tmp_path / "a" / "r0.db"), "--walkers", "10")
    standby = None
    try:
        first = json.loads(owner.stdout.readline())
        assert first["region"] == "r0"
        line = json.loads(owner.stdout.readline())     # a status line: the walkers joined, acknowledged
        assert line["replica"]["acked_n"] >= 1 and line["replica"]["unacked"] >= 0   # what waits for JetStream
        standby = region(nats_server.url, str(tmp_path / "b" / "r0.db"))    # makes no walkers
        owner.kill()                                    # kill -9: no snapshot, no goodbye
        owner.wait(10)
        took = json.loads(standby.stdout.readline())   # its first line: the lease is its
        assert took["region"] == "r0" and took["owner"] != first["owner"]
        json.loads(standby.stdout.readline())          # a status line: it runs (and stops on SIGTERM)
    finally:
        for p in (owner, standby):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        out = standby.communicate(timeout=20)[0] if standby is not None else ""
        owner.communicate(timeout=5)
    finals = [json.loads(line) for line in out.splitlines() if '"final"' in line]
    assert len(finals) == 1
    held = set(finals[0]["entities"]) | set(finals[0]["in_transit"])
    # every walker once, from its own copy; those that stepped into r1, which
    # is not running, wait in transit
    assert len(held) == 10
