"""Shared fixtures: a real server on 127.0.0.1 with an OS-chosen port and a
database in a temporary directory; the real embedded model, loaded once per
test session for every test that uses it."""
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from server.app import HamletServer  # noqa: E402
from server.config import ServerConfig  # noqa: E402


def make_config(tmp_path, **overrides) -> ServerConfig:
    base = dict(host="127.0.0.1", port=0, db=str(tmp_path / "world.db"), npcs=False,
                tick_rate=50.0, ticks_per_tile=1, snapshot_every_s=3600.0)
    base.update(overrides)
    return ServerConfig(**base)


@pytest.fixture
async def start_server(tmp_path) -> AsyncIterator[Callable]:
    """`await start_server(**config)` starts a server; all are stopped at the end."""
    servers: list[HamletServer] = []

    async def start(llm=None, **overrides) -> HamletServer:
        server = HamletServer(make_config(tmp_path, **overrides), llm=llm)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(start_server) -> HamletServer:
    return await start_server()


@pytest.fixture(scope="session")
def embedded_model():
    """The real embedded model (SmolLM2-135M-Instruct), loaded once per test
    session and shared: wrap it with `agents.inference.client_for(...)` for
    an engine of a test's own. float32: the engine tests compare its output
    exactly against transformers."""
    from agents.inference.model import load_model
    return load_model(dtype="float32", device="cpu")
