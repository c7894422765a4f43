"""What the message handlers (joining in server/joins.py, operator actions
in server/admin.py) use of the game, as a Protocol: the game calls them,
and they type against this rather than importing the game back."""
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from protocol.codec import Message
    from server.config import ServerConfig
    from server.metrics import ServerMetrics
    from server.persistence import Database
    from server.sessions import Sessions
    from server.world.inputs import Input
    from server.world.world import Rejection, World


class GameApi(Protocol):
    config: ServerConfig
    world: World
    db: Database
    metrics: ServerMetrics
    sessions: Sessions
    clients: dict[int, Any]                  # entity -> welcomed connection
    inbox: deque[tuple[Any, Message]]        # (connection or None for internal, message)
    spawn_rng: random.Random

    def apply(self, inp: Input) -> Rejection | int | None:
        """Apply an input to the world and log it if accepted."""
        ...

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once this tick's transaction is committed."""
        ...

    def end_session(self, eid: int) -> None: ...

    def snapshot(self) -> None: ...
