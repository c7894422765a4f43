"""Every message type, declared once as data: its fields, their types and
bounds. The codec validates against these tables and PROTOCOL.md documents
them; nothing else in the code base lists message fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from protocol.limits import DEFAULT_LIMITS as L

# Field kinds understood by the validator.
INT, FLOAT, STR, BOOL, TILE, ANY = "int", "float", "str", "bool", "tile", "any"

DIRECTIONS = ("n", "s", "e", "w", "ne", "nw", "se", "sw")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str
    required: bool = True
    lo: float | None = None  # numbers: minimum; strings: minimum length
    hi: float | None = None  # numbers: maximum; strings: maximum length
    choices: tuple[str, ...] = ()
    doc: str = ""


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
    return Field("seq", INT, False, 0, L.max_seq,
                 doc="client-chosen id echoed in the matching `ack` or `error`")


CLIENT_MESSAGES: dict[str, MessageSpec] = {
    spec.type: spec
    for spec in (
        MessageSpec("hello", (
            Field("v", INT, True, 1, 65535, doc="protocol version; this document is version 1"),
            Field("name", STR, True, 1, L.max_name,
                  doc="display name: letters, digits, space, `_`, `-`, `.`; no leading/trailing space"),
            Field("token", STR, False, 1, L.max_token,
                  doc="session token from an earlier `welcome`, to resume that avatar"),
            _seq(),
        ), doc="Join the world (or resume a session). Must be the first message."),
        MessageSpec("move", (
            Field("to", TILE, False, 0, L.max_coord, doc="target tile `[x, y]`; the server finds the path"),
            Field("dir", STR, False, choices=DIRECTIONS, doc="one step in a compass direction"),
            Field("place", STR, False, 1, L.max_short, doc="name of a place from the map, e.g. `market`"),
            Field("stop", BOOL, False, doc="`true`: stop where you are"),
            _seq(),
        ), one_of=("to", "dir", "place", "stop"),
            doc="Walk your own avatar. Exactly one of `to`, `dir`, `place`, `stop`."),
        MessageSpec("say", (
            Field("text", STR, True, 1, L.max_text, doc="what you say; heard by everyone in hearing range"),
            Field("to", INT, False, 1, 2**53, doc="entity id of the one you address (a player or an NPC)"),
            _seq(),
        ), doc="Speak. Acknowledged with `ack` once the line is durably stored."),
        MessageSpec("ping", (
            Field("id", INT, True, 0, L.max_seq, doc="echoed in the `pong`"),
        ), doc="Liveness and round-trip measurement; allowed at any time."),
        MessageSpec("bye", (), doc="Leave now (the avatar leaves at once, no grace period)."),
        MessageSpec("admin", (
            Field("token", STR, True, 1, L.max_token, doc="the server's admin token"),
            Field("action", STR, True, choices=("kick", "broadcast", "snapshot"), doc="what to do"),
            Field("target", INT, False, 1, 2**53, doc="entity to kick"),
            Field("text", STR, False, 1, L.max_text, doc="broadcast text"),
            _seq(),
        ), doc="Operator actions; refused with `forbidden` unless the server has an admin token and it matches."),
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
            Field("map", ANY, doc="the map, see *Map*"),
            Field("limits", ANY, doc="`{max_text, max_name, max_frame}` this server enforces"),
            Field("seq", INT, False),
        ), doc="Reply to `hello`. The first `state` after it carries your surroundings."),
        MessageSpec("state", (
            Field("tick", INT),
            Field("enter", ANY, doc="entities now in view: `[id, kind, name, x, y, flags]` each"),
            Field("move", ANY, doc="known entities whose tile changed: `[id, x, y]` each"),
            Field("leave", ANY, doc="entity ids no longer in view"),
            Field("upd", ANY, doc="known entities whose flags changed: `[id, flags]` each"),
        ), doc="Area-of-interest delta against what this connection was sent before."),
        MessageSpec("event", (
            Field("kind", STR, choices=("say", "arrive", "depart", "broadcast")),
            Field("tick", INT),
            Field("from", INT, doc="speaker (say) or the entity arriving/departing"),
            Field("name", STR, doc="that entity's name"),
            Field("text", STR, False),
            Field("to", INT, False, doc="addressee entity id, for `say`"),
            Field("to_name", STR, False),
            Field("chat", INT, False, doc="chat line id, for `say`"),
        ), doc="Something happened within hearing range."),
        MessageSpec("ack", (
            Field("seq", INT),
            Field("tick", INT),
            Field("chat", INT, False, doc="stored chat line id, for `say`"),
        ), doc="Your message `seq` was applied (and, for `say`, committed)."),
        MessageSpec("error", (
            Field("code", STR),
            Field("msg", STR),
            Field("seq", INT, False),
        ), doc="Your message was rejected; nothing changed."),
        MessageSpec("pong", (
            Field("id", INT),
            Field("tick", INT),
        ), doc="Reply to `ping`."),
    )
}
