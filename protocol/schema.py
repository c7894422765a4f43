"""Every message type, declared once as data: its fields, their types and
bounds, and what it means. The codec validates against these tables;
PROTOCOL.md's message and limit tables and /protocol.json are generated
from them; nothing else in the code base lists message fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from protocol.board import BOARD_PLACE, BOARD_RANGE
from protocol.entities import HEARING_RANGE
from protocol.errors import ErrorCode
from protocol.limits import DEFAULT_LIMITS as L, PROTOCOL_VERSION
from protocol.trade import (COINS, HANDOVER_RANGE, ITEM_RULE, MAX_COUNT, MAX_ITEM_NAME, MAX_OFFER_LINES, MAX_PRICE,
                            OFFER_STATES, OFFER_TTL_TICKS)

# Field kinds understood by the validator.
INT, FLOAT, STR, BOOL, TILE, ANY = "int", "float", "str", "bool", "tile", "any"
# A list of at most MAX_OFFER_LINES `[item, n]` pairs (an offer's side).
GOODS = "goods"

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


def _item(doc: str) -> Field:
    return Field("item", STR, True, 1, MAX_ITEM_NAME, rule=ITEM_RULE, doc=doc)


def _count(doc: str) -> Field:
    return Field("n", INT, True, 1, MAX_COUNT, doc=doc)


def _entity(name: str, doc: str, required: bool = True) -> Field:
    return Field(name, INT, required, 1, MAX_ENTITY_ID, doc=doc)


def _goods(name: str, doc: str) -> Field:
    return Field(name, GOODS, False, 1, MAX_COUNT, shape=f"list of [item, n], at most {MAX_OFFER_LINES}", doc=doc)


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
        MessageSpec("give", (
            _entity("to", "entity id of the one you hand it to (a player or an NPC)"),
            _item(f"what you give: an item kind, or `{COINS}`"),
            _count("how many"),
            _seq(),
        ), doc=f"hand goods or coins to someone within {HANDOVER_RANGE} tiles; the `ack` comes once it is "
               "stored, with your purse's change in an `inv` before it"),
        MessageSpec("buy", (
            _entity("from", "the shopkeeper (an NPC with a shop)"),
            _item("what you buy"),
            _count("how many"),
            Field("max_price", INT, True, 0, MAX_PRICE, doc="the most you pay for one"),
            _seq(),
        ), doc=f"buy from a shop within {HANDOVER_RANGE} tiles at its current price (n times the price for "
               "one; `price_changed` if that is over `max_price`)"),
        MessageSpec("sell", (
            _entity("to", "the shopkeeper (an NPC whose shop buys this)"),
            _item("what you sell"),
            _count("how many"),
            Field("min_price", INT, True, 0, MAX_PRICE, doc="the least you take for one"),
            _seq(),
        ), doc=f"sell to a shop within {HANDOVER_RANGE} tiles at the price it offers (`price_changed` if "
               "that is under `min_price`)"),
        MessageSpec("shop", (
            _entity("at", "the shopkeeper"),
            _seq(),
        ), doc="ask a shop's price list; answered with `shop` (from anywhere: prices are public)"),
        MessageSpec("offer", (
            _entity("to", "the player you offer a trade to"),
            _goods("give", "goods you give"),
            Field("coins", INT, False, 0, MAX_PRICE, doc="coins you give"),
            _goods("want", "goods you want in return"),
            Field("want_coins", INT, False, 0, MAX_PRICE, doc="coins you want in return"),
            _seq(),
        ), doc=f"offer a trade to a player within {HANDOVER_RANGE} tiles; it stays open {OFFER_TTL_TICKS} "
               "ticks. The `ack` carries the offer's id; both of you get an `offer` message"),
        MessageSpec("accept", (
            _entity("offer", "the offer's id"),
            _seq(),
        ), doc="accept an offer made to you: both sides change hands in one tick, or neither does"),
        MessageSpec("decline", (
            _entity("offer", "the offer's id"),
            _seq(),
        ), doc="decline an offer made to you, or withdraw one you made"),
        MessageSpec("board", (
            _seq(),
        ), doc="read the notice board: answered with `board` (from anywhere: the board is public)"),
        MessageSpec("turn_in", (
            _entity("quest", "the quest's id (from `board`)"),
            _seq(),
        ), doc=f"bring what a quest asks for, at the {BOARD_PLACE} (within {BOARD_RANGE} tiles of its entry) or "
               f"within {HANDOVER_RANGE} tiles of whoever posted it: the goods go to the poster and the reward to "
               "you in one tick, or nothing changes"),
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
            Field("kind", STR, choices=("say", "arrive", "depart", "broadcast", "trade")),
            Field("tick", INT),
            Field("from", INT, doc="speaker (say) or the entity arriving/departing; 0 for the server"),
            Field("name", STR, doc="that entity's name (`server` for a broadcast)"),
            Field("text", STR, False, doc="for `say` and `broadcast`; for `trade`, what changed hands, in words"),
            Field("to", INT, False, doc="addressee entity id, for `say`; the other party, for `trade`"),
            Field("to_name", STR, False, doc="addressee name, for `say`; the other party's, for `trade`"),
            Field("chat", INT, False, doc="chat line id, for `say`"),
        ), doc="something happened within hearing range (a `trade`: goods or coins changed hands), or an "
               "operator's broadcast"),
        MessageSpec("ack", (
            Field("seq", INT),
            Field("tick", INT),
            Field("chat", INT, False, doc="stored chat line id, for `say`"),
            Field("offer", INT, False, doc="the new offer's id, for `offer`"),
        ), doc="your message `seq` was applied and committed"),
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
        MessageSpec("inv", (
            Field("tick", INT),
            Field("coins", INT, doc="your coins"),
            Field("items", ANY, shape="map item -> n", doc="your goods (with `full`: all of them; else only "
                                                           "those that changed, 0 for none left)"),
            Field("full", BOOL, doc="true: the whole inventory; false: a delta"),
        ), doc="your purse, to you only: whole after `welcome`, then whenever it changes, before the `ack` of "
               "what changed it"),
        MessageSpec("shop", (
            Field("at", INT, doc="the shopkeeper"),
            Field("name", STR, doc="the shopkeeper's name"),
            Field("goods", ANY, shape="list of `shop` rows", doc="what it sells or buys, now"),
            Field("seq", INT, False),
        ), doc="a shop's price list, in answer to `shop`"),
        MessageSpec("offer", (
            Field("id", INT, doc="the offer's id"),
            Field("state", STR, choices=OFFER_STATES, doc="where it stands"),
            Field("from", INT, doc="who made it"),
            Field("from_name", STR),
            Field("to", INT, doc="to whom"),
            Field("to_name", STR),
            Field("give", ANY, shape="list of [item, n]", doc="what its maker gives"),
            Field("coins", INT),
            Field("want", ANY, shape="list of [item, n]", doc="what its maker wants"),
            Field("want_coins", INT),
            Field("expires", INT, doc="the tick it lapses at"),
        ), doc="an offer made by you or to you, and each change of its state (see *Economy*)"),
        MessageSpec("progress", (
            Field("tick", INT),
            Field("topics", ANY, shape="map topic -> [right, wrong]",
                  doc="each topic you had questions in at the school: answers judged right and wrong"),
        ), doc="what you learned at the school, to you only: after `welcome` when there is any, then whenever "
               "a teacher judges an answer of yours (see *School*)"),
        MessageSpec("board", (
            Field("tick", INT),
            Field("quests", ANY, shape="list of `quest` rows", doc="the open quests, oldest first"),
            Field("notices", ANY, shape="list of `notice` rows", doc="the notices, newest first"),
            Field("seq", INT, False),
        ), doc="the notice board, in answer to `board` (see *Notice board*)"),
    )
}
