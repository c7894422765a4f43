"""What the network layer (server/net.py) and the HTTP endpoints
(server/http.py) use of the server that hosts them, as a Protocol.

`server/app.py` composes the server from those modules; they type against
this instead of importing the app back, so the imports run one way:
app -> net, http -> hosting.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from server.config import ServerConfig
    from server.game import Game
    from server.metrics import ServerMetrics


class Host(Protocol):
    config: ServerConfig
    metrics: ServerMetrics
    game: Game
    connections: set[Any]            # the open connections (server.net.Client)
    tick_stats: deque[tuple[float, float]]  # (duration, lateness) of recent ticks, for /stats
    batching: bool                   # a tick is running: frames wait for its end
    batched: list[Any]               # connections with frames waiting for the tick's end
    minds: Any                       # the NPC minds (agents.minds.MindsSystem), or None without NPCs

    def framed(self, payload: bytes) -> bytes:
        """The WebSocket frame of a payload, framed once per tick."""
        ...
