"""What a NATS client of ours logs about its connection: one warning when
the server goes away (nats-py's default logs an ERROR with a traceback on
every reconnect attempt, twice a second while a region or worker waits for
a nats-server that died) and one line when it is back. Used by the regions,
the gateway, the engine workers and `NatsLLM`."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable



def connection_callbacks(log: logging.Logger, url: str) -> dict[str, Callable[..., Awaitable[None]]]:
    """`error_cb`, `disconnected_cb` and `reconnected_cb` for `nats.connect(**...)`."""
    state = {"down": False}

    async def on_error(exc: Exception) -> None:
        if not state["down"]:    # once per outage
            state["down"] = True
            log.warning("NATS at %s: %s: %s (retrying)", url, type(exc).__name__, exc)

    async def on_disconnect() -> None:
        if not state["down"]:
            state["down"] = True
            log.warning("NATS at %s: disconnected (retrying)", url)

    async def on_reconnect() -> None:
        state["down"] = False
        log.info("NATS at %s: connected again", url)

    return {"error_cb": on_error, "disconnected_cb": on_disconnect, "reconnected_cb": on_reconnect}

