"""Error codes (sent in `error` messages) and WebSocket close codes, each
with its meaning in words.

Every way a peer can get something wrong maps to exactly one of these. The
tables in PROTOCOL.md and the `errors`/`closes` sections of /protocol.json
are generated from `ERROR_DOCS` and `CLOSE_DOCS` (a test keeps them equal).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.limits import DEFAULT_LIMITS as L


class ErrorCode(enum.StrEnum):
    # Decoding and validation: the frame is dropped, the connection stays.
    BAD_FRAME = "bad_frame"
    TEXT_FRAME = "text_frame"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    BAD_TYPE = "bad_type"
    OUT_OF_RANGE = "out_of_range"
    NOT_FINITE = "not_finite"
    TOO_LONG = "too_long"
    BAD_VALUE = "bad_value"
    # Session state.
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    BAD_VERSION = "bad_version"
    NAME_TAKEN = "name_taken"
    BAD_TOKEN = "bad_token"
    # World rules.
    BAD_MOVE = "bad_move"
    NO_SUCH_ENTITY = "no_such_entity"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    FORBIDDEN = "forbidden"
    # The economy.
    NOT_ENOUGH = "not_enough"
    NO_SUCH_ITEM = "no_such_item"
    NO_SHOP = "no_shop"
    PRICE_CHANGED = "price_changed"
    OFFER_EXPIRED = "offer_expired"
    FULL = "full"
    QUEST_CLOSED = "quest_closed"
    INTERNAL = "internal"


ERROR_DOCS: dict[ErrorCode, str] = {
    ErrorCode.BAD_FRAME: (
        "not a single MessagePack map with string keys: malformed, truncated, trailing bytes, "
        f"nested over {L.max_depth} deep, over {L.max_values} values, an extension type, a non-string key, "
        "or a key given twice"),
    ErrorCode.TEXT_FRAME: "a text frame; send binary",
    ErrorCode.UNKNOWN_TYPE: "`t` missing or not a client message type",
    ErrorCode.MISSING_FIELD: "a required field is absent",
    ErrorCode.UNKNOWN_FIELD: "a field this message does not have",
    ErrorCode.BAD_TYPE: "a field has the wrong type",
    ErrorCode.OUT_OF_RANGE: "a number outside its bounds, or the other party of a trade too far away to hand over",
    ErrorCode.NOT_FINITE: "NaN or infinity where a number is expected (in any numeric field)",
    ErrorCode.TOO_LONG: "a string over its limit, or too many fields",
    ErrorCode.BAD_VALUE: (
        "a value outside its allowed set or pattern (an empty string, a bad name or item, a control character, "
        "an unknown direction, `stop` other than `true`, not exactly one move target, "
        "an addressee out of hearing range, a trade with yourself, an empty offer or one naming an item twice)"),
    ErrorCode.NOT_JOINED: "this message is not allowed before joining",
    ErrorCode.ALREADY_JOINED: "`hello` on a joined connection",
    ErrorCode.BAD_VERSION: "`v` is an integer but not a version this server speaks",
    ErrorCode.NAME_TAKEN: "the name is held by an account, a player or an NPC",
    ErrorCode.BAD_TOKEN: "unknown session token",
    ErrorCode.BAD_MOVE: "move target off the map, blocked, unreachable, too far, or unknown place",
    ErrorCode.NO_SUCH_ENTITY: "the addressed entity is not in the world (or is yourself)",
    ErrorCode.RATE_LIMITED: "too many messages; this one was dropped",
    ErrorCode.OVERLOADED: "the server's input queue is full; retry later",
    ErrorCode.FORBIDDEN: "not allowed for this connection",
    ErrorCode.NOT_ENOUGH: "you (or, for `buy` and `accept`, the other side) do not have that many of it, or the coins",
    ErrorCode.NO_SUCH_ITEM: "no item kind of that name exists in this world",
    ErrorCode.NO_SHOP: "that entity keeps no shop, or its shop does not sell (or buy) that",
    ErrorCode.PRICE_CHANGED: "the price is over your `max_price` (or under your `min_price`); ask `shop` again",
    ErrorCode.OFFER_EXPIRED: "no open offer with that id for you: it lapsed, was answered or never existed",
    ErrorCode.FULL: "the receiver cannot hold more of it (or, for `turn_in`, the quest's poster or you), or you have too many open offers",
    ErrorCode.QUEST_CLOSED: "no open quest with that id: it was done, withdrawn, expired or never posted",
    ErrorCode.INTERNAL: "a server bug while handling this message; the connection is closed with 1011",
}


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL = 1006  # never sent: what a client sees when TCP ends without a close frame
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    SLOW_READER = 4001
    SESSION_REPLACED = 4002
    KICKED = 4003
    JOIN_TIMEOUT = 4004
    TOO_MANY_ERRORS = 4005


@dataclass(frozen=True, slots=True)
class CloseDoc:
    reason: str  # what it means, for the peer's developer and (in clients) its user
    reconnect: bool  # whether a client should reconnect (with backoff) after it


CLOSE_DOCS: dict[CloseCode, CloseDoc] = {
    CloseCode.NORMAL: CloseDoc("normal (after `bye`)", False),
    CloseCode.GOING_AWAY: CloseDoc("server shutting down", True),
    CloseCode.PROTOCOL_ERROR: CloseDoc("protocol error (WebSocket level)", True),
    CloseCode.UNSUPPORTED_DATA: CloseDoc("unsupported data (WebSocket level)", True),
    CloseCode.ABNORMAL: CloseDoc(
        "never sent by the server: the TCP connection ended without a close frame (the network, a "
        "keepalive timeout, or a slow reader whose close frame could not be delivered in time)", True),
    CloseCode.INVALID_DATA: CloseDoc("a text frame that is not valid UTF-8 (WebSocket level)", True),
    CloseCode.POLICY_VIOLATION: CloseDoc("too many connections from your address", True),
    CloseCode.MESSAGE_TOO_BIG: CloseDoc(f"a frame (binary or text) over {L.max_frame_in} bytes", True),
    CloseCode.INTERNAL_ERROR: CloseDoc(
        "internal error, or keepalive ping timeout (the peer stopped answering pings)", True),
    CloseCode.TRY_AGAIN_LATER: CloseDoc("server full: try again later", True),
    CloseCode.SLOW_READER: CloseDoc(
        "slow reader: the client did not read its updates in time (outbox over its bound, or a state "
        "update waiting too long); the close frame is sent if the connection can take it, and the "
        "connection is cut a moment later either way", True),
    CloseCode.SESSION_REPLACED: CloseDoc("session resumed on another connection", False),
    CloseCode.KICKED: CloseDoc("kicked by an administrator", False),
    CloseCode.JOIN_TIMEOUT: CloseDoc("no `hello` within the join deadline", True),
    CloseCode.TOO_MANY_ERRORS: CloseDoc("too many rejected messages", True),
}


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A typed, recoverable description of bad input. Never raised."""

    code: ErrorCode
    message: str
    seq: int | None = None
    close: CloseCode | None = None  # set when the connection must close

    def __bool__(self) -> bool:  # so `if err:` reads naturally
        return True
