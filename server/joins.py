"""Joining: resuming a session with its token or creating an account for a
new name, where newcomers appear, and giving the avatars found in the world
after a restart back to their accounts for the grace period."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from protocol.codec import Message, encode
from protocol.errors import CloseCode, ErrorCode
from protocol.limits import DEFAULT_LIMITS, PROTOCOL_VERSION
from server.replication import EMPTY_VIEW
from server.trade import welcome_purse
from server.world.inputs import Join, SetFlags
from server.world.world import FLAG_AWAY, Rejection

if TYPE_CHECKING:
    from server.game_api import GameApi


def handle_join(game: GameApi, client: Any, msg: Message) -> None:
    """A `hello`: resume a session by token, or create an account for a new
    name; the `welcome` goes out after this tick's commit."""
    def refuse(code: ErrorCode, why: str) -> None:
        client.protocol.join_refused()
        client.send(encode("error", code=str(code), msg=why, seq=msg.seq))
        game.metrics.rejected.labels(str(code)).inc()

    if msg.data["v"] != PROTOCOL_VERSION:
        return refuse(ErrorCode.BAD_VERSION, f"this server speaks protocol version {PROTOCOL_VERSION}")
    token = msg.get("token")
    world = game.world
    if token is not None:
        account = game.sessions.find_by_token(token)
        if account is None:
            return refuse(ErrorCode.BAD_TOKEN, "unknown or expired session token")
        previous = game.clients.pop(account.entity, None)
        if previous is not None:
            previous.close(CloseCode.SESSION_REPLACED, "session resumed on another connection")
        e = world.entities.get(account.entity)
        resumed = e is not None
        if e is None:
            x, y = (account.x, account.y) if world.map.walkable(account.x, account.y) else spawn_point(game)
            result = game.apply(Join(account.entity, account.name, x, y))
            if isinstance(result, Rejection):
                return refuse(ErrorCode(result.code), result.message)
        elif e.flags & FLAG_AWAY:
            game.apply(SetFlags(e.id, e.flags & ~FLAG_AWAY))
    else:
        name = msg.data["name"]
        if world.find_by_name(name) is not None or game.sessions.name_is_held(name):
            return refuse(ErrorCode.NAME_TAKEN, f"the name {name!r} is taken; pick another or resume with your token")
        eid = world.allocate_entity_id()
        x, y = spawn_point(game)
        result = game.apply(Join(eid, name, x, y))
        if isinstance(result, Rejection):
            return refuse(ErrorCode(result.code), result.message)
        account, token = game.sessions.create_account(name, eid, x, y)
        resumed = False
    game.sessions.attach(account, client)
    client.entity = account.entity
    welcome = encode(
        "welcome", v=PROTOCOL_VERSION, id=account.entity, token=token, resumed=resumed,
        tick=world.tick, tick_rate=game.config.tick_rate, grace_s=game.config.grace_s,
        map=world.map.to_wire(), seq=msg.seq,
        limits={"max_text": DEFAULT_LIMITS.max_text, "max_name": DEFAULT_LIMITS.max_name,
                "max_frame": DEFAULT_LIMITS.max_frame_in},
    )

    def deliver() -> None:
        if client.closed:  # it went away while its join was being committed
            game.sessions.detach(account.entity, time.monotonic())
            game.inbox.append((None, Message("_away", {"entity": account.entity})))
            return
        client.protocol.join_accepted()
        client.send(welcome)
        for frame in welcome_purse(world, account.entity):
            client.send(frame)
        client.known, client.known_cell = EMPTY_VIEW, None
        game.clients[account.entity] = client

    game.after_commit(deliver)


def spawn_point(game: GameApi) -> tuple[int, int]:
    tilemap = game.world.map
    if game.config.spawn == "anywhere":
        for _ in range(1000):
            x, y = game.spawn_rng.randrange(tilemap.width), game.spawn_rng.randrange(tilemap.height)
            if tilemap.walkable(x, y):
                return x, y
    square = game.world.map.places.get("square")
    if square is None:
        return next((x, y) for y in range(game.world.map.height) for x in range(game.world.map.width)
                    if game.world.map.walkable(x, y))
    cx, cy = square.entry
    for _ in range(50):  # near the middle, so newcomers hear each other
        x = game.spawn_rng.randint(cx - 4, cx + 4)
        y = game.spawn_rng.randint(cy - 3, cy + 3)
        if game.world.map.walkable(x, y):
            return x, y
    return square.entry


def adopt_orphans(game: GameApi) -> None:
    """After a restart, players in the world have no connection: give
    each a session in its grace period, so its owner can resume."""
    now = time.monotonic()
    for e in list(game.world.entities.values()):
        if e.kind != "player":
            continue
        account = game.db.account_by_entity(e.id)
        if account is None:
            continue
        game.sessions.attach(account, None)
        game.sessions.detach(e.id, now)
        if not e.flags & FLAG_AWAY:
            game.inbox.append((None, Message("_away", {"entity": e.id})))
