"""Every message type, declared once as data: its fields, their types and
bounds, and what it means. The codec validates against these tables;
PROTOCOL.md's message and limit tables and /protocol.json are generated
from them; nothing else in the code base lists message fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from protocol.entities import HEARING_RANGE
from protocol.errors import ErrorCode
from protocol.limits import DEFAULT_LIMITS as L, PROTOCOL_VERSION

# Field kinds understood by the validator.
INT, FLOAT, STR, BOOL, TILE, ANY = "int", "float", "str", "bool", "tile", "any"

DIRECTIONS = ("n", "s", "e", "w", "ne", "nw", "se", "sw")
ADMIN_ACTIONS = ("kick", "broadcast", "snapshot")
# Entity ids are allocated from 1 upwards; 2^53 keeps them exact in JavaScript.
MAX_ENTITY_ID = 2**53
# Every string from a client: no control characters but newline (C0, DEL, C1).
STRING_RULE = "no control characters but newline"
NAME_RULE = "letters, digits, space, `_`, `-`, `.`; no leading or trailing space"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str
    required: bool = True
    lo: float | None = None  # numbers: minimum; strings: minimum length
    hi: float | None = None  # numbers: maximum; strings: maximum length
    choices: tuple = ()  # the only values allowed (strings, integers or booleans)
    doc: str = ""
    rule: str = ""  # a further pattern, in words (checked by the codec)
    refuse: ErrorCode = ErrorCode.BAD_VALUE  # the code for a value outside `choices`
    shape: str = ""  # for ANY fields: what the value is, in the docs ("map", "list of rows")


@dataclass(frozen=True, slots=True)
class MessageSpec:
    type: str
    fields: tuple[Field, ...]
    doc: str = ""
    one_of: tuple[str, ...] = ()  # exactly one of these optional fields
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})


def _seq() -> Field:
    # A client-chosen id echoed in the matching answer (see PROTOCOL.md, Session).
    return Field("seq", INT, False, 0, L.max_seq)


CLIENT_MESSAGES: dict[str, MessageSpec] = {
    spec.type: spec
    for spec in (
        MessageSpec("hello", (
            Field("v", INT, True, choices=(PROTOCOL_VERSION,), refuse=ErrorCode.BAD_VERSION,
                  doc=f"protocol version; this document is version {PROTOCOL_VERSION}"),
            Field("name", STR, True, 1, L.max_name, rule=NAME_RULE, doc="display name"),
            Field("token", STR, False, 1, L.max_token,
                  doc="session token from an earlier `welcome`, to resume that avatar"),
            _seq(),
        ), doc="join the world, or resume a session with `token`; must be the first message but `ping` "
               "and `admin`"),
        MessageSpec("move", (
            Field("to", TILE, False, 0, L.max_coord, doc="target tile `[x, y]`; the server finds the path"),
            Field("dir", STR, False, choices=DIRECTIONS, doc="one step in a compass direction"),
            Field("place", STR, False, 1, L.max_short, doc="name of a place from the map, e.g. `market`"),
            Field("stop", BOOL, False, choices=(True,), doc="stop where you are"),
            _seq(),
        ), one_of=("to", "dir", "place", "stop"),
            doc="walk your avatar, with exactly one of: `to` a tile (the server finds a path), `dir` one "
                "step in a direction (`" + " ".join(DIRECTIONS) + "`; up to 4 steps queue), `place` a named "
                "place of the map, or `stop`"),
        MessageSpec("say", (
            Field("text", STR, True, 1, L.max_text, doc="what you say"),
            Field("to", INT, False, 1, MAX_ENTITY_ID, doc="entity id of the one you address (a player or an NPC)"),
            _seq(),
        ), doc=f"speak; heard within {HEARING_RANGE} tiles. `to` addresses an entity (player or NPC), who "
               "must be within hearing range. The `ack` comes once the line is durably stored"),
        MessageSpec("ping", (
            Field("id", INT, True, 0, L.max_seq, doc="echoed in the `pong`"),
            _seq(),
        ), doc="answered at once with `pong {id, tick}` (and `seq` if given); allowed at any time"),
        MessageSpec("bye", (
            _seq(),
        ), doc="leave now: the avatar leaves at once and the server closes with 1000 (the close is "
               "the answer; no `ack`)"),
        MessageSpec("admin", (
            Field("token", STR, True, 1, L.max_token, doc="the server's admin token"),
            Field("action", STR, True, choices=ADMIN_ACTIONS, doc="what to do"),
            Field("target", INT, False, 1, MAX_ENTITY_ID, doc="entity to kick"),
            Field("text", STR, False, 1, L.max_text, doc="broadcast text"),
            _seq(),
        ), doc="operator actions, allowed before joining; see *Admin*"),
    )
}

SERVER_MESSAGES: dict[str, MessageSpec] = {
    spec.type: spec
    for spec in (
        MessageSpec("welcome", (
            Field("v", INT, doc="protocol version"),
            Field("id", INT, doc="your avatar's entity id"),
            Field("token", STR, doc="session token: keep it to resume after a disconnect"),
            Field("resumed", BOOL, doc="true when an existing avatar was resumed"),
            Field("tick", INT, doc="current tick number"),
            Field("tick_rate", FLOAT, doc="ticks per second"),
            Field("grace_s", FLOAT, doc="seconds a disconnected avatar waits for its owner"),
            Field("map", ANY, shape="map", doc="see *Map*"),
            Field("limits", ANY, shape="map", doc="`{max_text, max_name, max_frame}` this server enforces"),
            Field("seq", INT, False),
        ), doc="reply to `hello`; the first `state` after it carries your surroundings"),
        MessageSpec("state", (
            Field("tick", INT),
            Field("enter", ANY, shape="list of `enter` rows", doc="entities now in view"),
            Field("move", ANY, shape="list of `move` rows", doc="known entities whose tile changed"),
            Field("leave", ANY, shape="list of int", doc="entity ids no longer in view"),
            Field("upd", ANY, shape="list of `upd` rows", doc="known entities whose flags changed"),
        ), doc="area-of-interest delta against what this connection was sent before (see *Rows*)"),
        MessageSpec("event", (
            Field("kind", STR, choices=("say", "arrive", "depart", "broadcast")),
            Field("tick", INT),
            Field("from", INT, doc="speaker (say) or the entity arriving/departing; 0 for the server"),
            Field("name", STR, doc="that entity's name (`server` for a broadcast)"),
            Field("text", STR, False, doc="for `say` and `broadcast`"),
            Field("to", INT, False, doc="addressee entity id, for `say`"),
            Field("to_name", STR, False, doc="addressee name, for `say`"),
            Field("chat", INT, False, doc="chat line id, for `say`"),
        ), doc="something happened within hearing range, or an operator's broadcast"),
        MessageSpec("ack", (
            Field("seq", INT),
            Field("tick", INT),
            Field("chat", INT, False, doc="stored chat line id, for `say`"),
        ), doc="your message `seq` was applied (and, for `say`, committed)"),
        MessageSpec("error", (
            Field("code", STR, doc="see *Error codes*"),
            Field("msg", STR, doc="for people"),
            Field("seq", INT, False),
        ), doc="your message was rejected; nothing changed"),
        MessageSpec("pong", (
            Field("id", INT),
            Field("tick", INT),
            Field("seq", INT, False),
        ), doc="reply to `ping`"),
    )
}
