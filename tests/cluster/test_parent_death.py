"""Children that die with their parent (server/cluster/parent_death.py): a
parent started like `hamlet sim --regions N` starts its child in a session
of its own; `kill -9` of the parent takes the child with it (SIGTERM), while
a child started without the helper runs on. Linux only: elsewhere the
helper does nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from server.cluster.parent_death import die_with_parent

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

# The parent: one child with the helper, one without (to show the kill alone
# would not stop it), both in sessions of their own; each sleeps 60 s at most.
PARENT = """
import json, subprocess, sys, time
from server.cluster.parent_death import die_with_parent
sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
kept = subprocess.Popen(sleeper, start_new_session=True, preexec_fn=die_with_parent())
left = subprocess.Popen(sleeper, start_new_session=True)
print(json.dumps([kept.pid, left.pid]), flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by whoever adopted it, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_a_child_dies_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = json.loads(parent.stdout.readline())
        kept, left = pids
        assert alive(kept) and alive(left)
        parent.kill()   # kill -9: no handler of its own runs
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(kept) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(kept)   # sent SIGTERM as its parent died
        assert alive(left)       # without the helper, orphaned and running
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        parent.stdout.close()


def test_a_child_whose_parent_died_before_it_asked_ends_at_once():
    # the parent can die between the fork and the prctl: then the child is
    # already someone else's and no signal would come; it ends itself.
    # Here a process plays the child: its parent seems to be another already.
    child = subprocess.run([sys.executable, "-c", "import os\n"
                            "from server.cluster.parent_death import die_with_parent\n"
                            "in_child = die_with_parent()\n"
                            "os.getppid = lambda: 1\n"
                            "in_child()\n"
                            "print('ran on')"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert child.returncode == -signal.SIGTERM and "ran on" not in child.stdout


def test_only_the_main_thread_asks_for_it():
    # the signal comes when the forking *thread* ends: a child started from a
    # worker thread would die with that thread, so none is asked for there
    assert callable(die_with_parent())
    seen = []
    worker = threading.Thread(target=lambda: seen.append(die_with_parent()))
    worker.start()
    worker.join()
    assert seen == [None]
