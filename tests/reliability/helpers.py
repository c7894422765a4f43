"""Shared helpers for reliability tests: a real `hamlet serve` process that
can be killed, and the wait-until helper (tests/waiting.py)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from tests.waiting import until

__all__ = ["ROOT", "ServerProcess", "until"]

ROOT = Path(__file__).resolve().parent.parent.parent


class ServerProcess:
    """`hamlet serve` in its own process, on 127.0.0.1 with an OS-chosen port
    (used by the reliability tests and the bench/ scripts)."""

    def __init__(self, db: Path, *extra: str, env: dict[str, str] | None = None, npcs: bool = False) -> None:
        self.db = db
        self.extra = extra + (() if npcs else ("--no-npcs",))
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "HAMLET_MODEL": "none", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.port = 0
        # The server's last lines of output (warnings, a traceback): enough to
        # see why it stopped, bounded so a chatty run cannot grow it.
        self.output: deque[str] = deque(maxlen=200)

    def start(self, timeout: float = 60.0, drain: bool = True) -> ServerProcess:
        """Start and wait for the URL line; `drain`: keep reading the output
        into `output` (False: the caller reads `proc.stdout` itself)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", "0", "--db", str(self.db),
             "--log-level", "WARNING", *self.extra],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
            if m:
                self.url, self.port = m.group(0), int(m.group(1))
                if drain:  # keep reading: a full pipe (64 KiB) would block the server's writes
                    threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
                return self
        self.proc.kill()
        raise AssertionError("server did not start:\n" + "".join(lines))

    def _drain(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.output.append(line)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return -9
        return self.proc.returncode if self.proc else 0

