"""Operator actions over the protocol's `admin` message: kick a player,
broadcast a line to everyone, take a snapshot now. Every action needs the
server's admin token; a server without one refuses them all."""
from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from protocol.codec import Message, encode
from protocol.errors import CloseCode, ErrorCode

if TYPE_CHECKING:
    from server.game_api import GameApi

log = logging.getLogger("hamlet.admin")


def handle_admin(game: GameApi, client: Any, msg: Message) -> None:
    def refuse(code: ErrorCode, why: str) -> None:
        game.metrics.rejected.labels(str(code)).inc()
        client.send(encode("error", code=str(code), msg=why, seq=msg.seq))

    expected = game.config.admin_token
    if not expected:
        return refuse(ErrorCode.FORBIDDEN, "admin actions are disabled on this server")
    if not hmac.compare_digest(msg.data["token"].encode(), expected.encode()):
        log.warning("admin action with a wrong token from %s", client)
        return refuse(ErrorCode.FORBIDDEN, "wrong admin token")
    action = msg.data["action"]
    if action == "kick":
        target = msg.get("target")
        e = game.world.entities.get(target) if target is not None else None
        if e is None or e.kind != "player":
            return refuse(ErrorCode.NO_SUCH_ENTITY, "kick needs the entity id of a player in the world")
        victim = game.clients.get(e.id)
        game.end_session(e.id)
        if victim is not None:
            victim.close(CloseCode.KICKED, "kicked by an administrator")
    elif action == "broadcast":
        text = msg.get("text")
        if not text:
            return refuse(ErrorCode.MISSING_FIELD, "broadcast needs text")
        frame = encode("event", kind="broadcast", tick=game.world.tick, **{"from": 0}, name="server", text=text)
        for c in list(game.clients.values()):
            c.send(frame)
    elif action == "snapshot":
        game.snapshot()
    log.info("admin %s by %s", action, client)
    if msg.seq is not None:
        client.send(encode("ack", seq=msg.seq, tick=game.world.tick))
