"""`hamlet serve` as a newcomer runs it: a real process, from any directory,
that prints its URL and on SIGTERM saves the world, tells clients why, and
exits cleanly."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

from client_demo.client import HamletClient
from tests.waiting import until


def start_serve(cwd, *args: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", "0", "--no-npcs", *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, m.group(0)
    proc.kill()
    raise AssertionError("server did not print its URL:\n" + "".join(lines))


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "serve" in out.stdout
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--db" in out.stdout and "--port" in out.stdout


def test_bad_config_file_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nportt = 3\n")
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "portt" in out.stderr
    # a nice value the worker could not take: refused before anything starts
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--llm-nice", "25", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "llm_nice" in out.stderr and "0 to 19" in out.stderr
    # so is a negative thread count, from the environment as from a flag
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--port", "0"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "HAMLET_LLM_THREADS": "-2"})
    assert out.returncode == 2 and "llm_threads" in out.stderr
    # a goods file with a bad item is named, with the problem, before anything starts
    goods = tmp_path / "goods.toml"
    goods.write_text('[goods]\nBread = 2\n')
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--port", "0", "--no-npcs", "--goods", str(goods),
                          "--db", str(tmp_path / "w.db")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "bad item name 'Bread'" in out.stderr and not (tmp_path / "w.db").exists()


async def test_sigterm_saves_tells_clients_and_exits(tmp_path):
    proc, url = await asyncio.to_thread(start_serve, tmp_path)
    try:
        c = await HamletClient.connect(url)
        await c.join("ann")
        await c.say("before the shutdown")
        proc.send_signal(signal.SIGTERM)
        await until(lambda: c.closed)
        assert c.close_code == 1001 and "shutting down" in c.close_reason
        rc = await asyncio.to_thread(proc.wait, 15)
        assert rc == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    # the default database went under the directory it was started from
    db = tmp_path / "hamlet-data" / "world.db"
    assert db.exists()
    from server.persistence import Database
    d = Database(str(db))
    assert d.latest_snapshot() is not None
    assert [c["text"] for c in d.chat_history()] == ["before the shutdown"]
    d.close()
