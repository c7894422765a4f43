"""`hamlet cluster --standbys`: two processes for each region, one owning
it and one waiting for the lease. An owner killed with SIGKILL is replaced
by its standby within the lease, the cluster starts a new standby, and the
world stays reachable through the gateway's URL."""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from client_demo.client import HamletClient


def _region_children(parent: int) -> set[int]:
    """The `hamlet region` processes whose parent is `parent` (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue                                          # it ended meanwhile
        if ppid == parent and b"region" in argv and b"server.cli" in argv:
            found.add(int(entry.name))
    return found


def _until(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


async def _say_and_hear(url: str, name: str) -> bool:
    c = await HamletClient.connect(url)
    try:
        await c.join(name)
        await c.say(f"hello from {name}")
        await c.wait_for(lambda m: m.type == "event" and m.data["kind"] == "say"
                         and m.data["text"] == f"hello from {name}", timeout=15)
        return True
    finally:
        await c.close()


@pytest.mark.parametrize("more", [[], ["--replicate"]], ids=["shared_db", "replicated"])
def test_a_killed_owner_is_replaced_by_its_standby_and_a_new_standby_starts(nats_server, tmp_path, more):
    world = "sb" + "".join(m.strip("-")[:3] for m in more)
    ran: set[int] = set()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "cluster", "--nats", nats_server.url, "--world",
                             world, "--data", str(tmp_path), "--port", "0", "--regions", "1", "--standbys", *more],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    seen: list[str] = []

    def find(pred, timeout: float, start: int = 0) -> int:
        """Index in `seen` of the first line from `start` on that matches, reading more as they come."""
        deadline, i = time.monotonic() + timeout, start
        while True:
            for i in range(i, len(seen)):
                if pred(seen[i]):
                    return i
            i = len(seen)
            try:
                seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                said = "".join(line[:160] for line in seen[-12:])
                raise AssertionError(f"no such line in {timeout} s; the cluster said: {said}") from None

    def owner_line(line: str) -> bool:
        return line.startswith("{") and "owner" in json.loads(line)
    try:
        ws = re.search(r"connect a client to (ws://\S+)", seen[find(lambda s: "Open http" in s, 60)])[1]
        at = find(owner_line, 60)                               # (said before or after the URL)
        first = json.loads(seen[at])
        owner = int(first["owner"].split("-")[1])               # <region>-<pid>-<random>
        assert _until(lambda: len(_region_children(proc.pid)) == 2, 30), _region_children(proc.pid)
        assert owner in _region_children(proc.pid)
        assert asyncio.run(_say_and_hear(ws, "Ana"))

        os.kill(owner, signal.SIGKILL)
        took = json.loads(seen[find(owner_line, 30, at + 1)])   # the new owner's first line: the lease is its
        new_owner = int(took["owner"].split("-")[1])
        # the standby, or the killed owner's replacement if it asked first once the lease ran out
        assert took["region"] == "r0" and new_owner != owner and new_owner in _region_children(proc.pid)
        exited = f"region r0 exited with -9 (pid {owner}); starting it again"
        find(lambda s: exited in s, 10)                         # said before or after the new owner's line
        assert _until(lambda: len(_region_children(proc.pid)) == 2, 30)   # and another waits
        assert owner not in _region_children(proc.pid)
        ran = _region_children(proc.pid) | {owner}
        assert asyncio.run(_say_and_hear(ws, "Bea"))            # the world, through the same URL
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert not [pid for pid in ran if Path(f"/proc/{pid}").exists()]     # Ctrl-C (SIGTERM) stopped them all
    # with --replicate the standby kept a database of its own; else one file
    assert sorted(p.name for p in tmp_path.glob("r0*.db")) == (["r0-b.db", "r0.db"] if more else ["r0.db"])
