"""Error codes (sent in `error` messages) and WebSocket close codes.

Every way a peer can get something wrong maps to exactly one of these; the
table in PROTOCOL.md is generated from the same names.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorCode(enum.StrEnum):
    # Decoding and validation: the frame is dropped, the connection stays.
    BAD_FRAME = "bad_frame"  # not MessagePack, trailing bytes, or not a map
    TEXT_FRAME = "text_frame"  # a text frame; only binary frames are accepted
    UNKNOWN_TYPE = "unknown_type"  # `t` missing or not a known message type
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    BAD_TYPE = "bad_type"  # a field has the wrong type
    OUT_OF_RANGE = "out_of_range"  # a number outside its bounds
    NOT_FINITE = "not_finite"  # NaN or an infinity
    TOO_LONG = "too_long"  # a string or list over its limit
    BAD_VALUE = "bad_value"  # a value outside its allowed set or pattern
    # Session state.
    NOT_JOINED = "not_joined"  # a message other than hello/ping before hello
    ALREADY_JOINED = "already_joined"
    BAD_VERSION = "bad_version"
    NAME_TAKEN = "name_taken"
    BAD_TOKEN = "bad_token"
    # World rules.
    BAD_MOVE = "bad_move"  # target off the map, blocked or unreachable
    NO_SUCH_ENTITY = "no_such_entity"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"  # the server's input queue is full; retry later
    FORBIDDEN = "forbidden"
    INTERNAL = "internal"


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # server full
    SLOW_READER = 4001  # the client did not read fast enough
    SESSION_REPLACED = 4002  # the same session was resumed on another connection
    KICKED = 4003
    JOIN_TIMEOUT = 4004  # no hello within the join deadline
    TOO_MANY_ERRORS = 4005  # too many rejected frames in a short time


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A typed, recoverable description of bad input. Never raised."""

    code: ErrorCode
    message: str
    seq: int | None = None
    close: CloseCode | None = None  # set when the connection must close

    def __bool__(self) -> bool:  # so `if err:` reads naturally
        return True
