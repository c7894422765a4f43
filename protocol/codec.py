"""MessagePack encoding and validated decoding of Hamlet messages.

`decode_client` turns untrusted bytes into a `Message` or a `ProtocolError`;
it never raises. `encode` turns a message into bytes. The frame's structure
is checked by `protocol.wire`; its fields entirely by the tables in
`protocol.schema`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgpack

from protocol.errors import CloseCode, ErrorCode, ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.schema import (ANY, BOOL, CLIENT_MESSAGES, FLOAT, GOODS, INT, SERVER_MESSAGES, STR, TILE, Field,
                             MessageSpec)
from protocol.trade import ITEM_RULE, MAX_ITEM_NAME, MAX_OFFER_LINES
from protocol.wire import FrameError, unpack_client


@dataclass(frozen=True, slots=True)
class Message:
    type: str
    data: dict[str, Any]

    @property
    def seq(self) -> int | None:
        return self.data.get("seq")

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def encode(type_: str, **fields: Any) -> bytes:
    """Encode one message; `None` fields are omitted."""
    body = {"t": type_}
    body.update((k, v) for k, v in fields.items() if v is not None)
    return msgpack.packb(body, use_bin_type=True)


# Control characters (Unicode category Cc: C0, DEL and C1) but newline.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _is_name(s: str) -> bool:
    return s == s.strip() and all(ch.isalnum() or ch in " _-." for ch in s)


_ITEM = re.compile("[a-z][a-z0-9_]*")


def _is_item(s: str) -> bool:
    return _ITEM.fullmatch(s) is not None


def _check_goods(f: Field, value: Any) -> tuple[ErrorCode, str] | None:
    """An offer's side: a list of at most MAX_OFFER_LINES [item, n] pairs."""
    if not isinstance(value, list):
        return ErrorCode.BAD_TYPE, f"{f.name} must be a list of [item, n]"
    if len(value) > MAX_OFFER_LINES:
        return ErrorCode.TOO_LONG, f"{f.name} has more than {MAX_OFFER_LINES} lines"
    for line in value:
        if not isinstance(line, list) or len(line) != 2:
            return ErrorCode.BAD_TYPE, f"each line of {f.name} must be [item, n]"
        item, n = line
        if _not_finite(n):
            return ErrorCode.NOT_FINITE, f"{f.name} counts must be finite"
        if not isinstance(item, str) or isinstance(n, bool) or not isinstance(n, int):
            return ErrorCode.BAD_TYPE, f"each line of {f.name} must be [item, n]: a string and an integer"
        if len(item) > MAX_ITEM_NAME:
            return ErrorCode.TOO_LONG, f"an item in {f.name} is longer than {MAX_ITEM_NAME} characters"
        if not _is_item(item):
            return ErrorCode.BAD_VALUE, f"items are {ITEM_RULE}"
        if (f.lo is not None and n < f.lo) or (f.hi is not None and n > f.hi):
            return ErrorCode.OUT_OF_RANGE, f"{f.name} counts must be in [{f.lo:g}, {f.hi:g}]"
    return None


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _check_field(f: Field, value: Any) -> tuple[ErrorCode, str] | None:
    kind = f.kind
    if _not_finite(value) and kind in (INT, FLOAT, TILE):
        return ErrorCode.NOT_FINITE, f"{f.name} must be finite"
    if kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return ErrorCode.BAD_TYPE, f"{f.name} must be an integer"
        if (f.lo is not None and value < f.lo) or (f.hi is not None and value > f.hi):
            return ErrorCode.OUT_OF_RANGE, f"{f.name} must be in [{f.lo:g}, {f.hi:g}]"
    elif kind == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return ErrorCode.BAD_TYPE, f"{f.name} must be a number"
        if (f.lo is not None and value < f.lo) or (f.hi is not None and value > f.hi):
            return ErrorCode.OUT_OF_RANGE, f"{f.name} must be in [{f.lo:g}, {f.hi:g}]"
    elif kind == STR:
        if not isinstance(value, str):
            return ErrorCode.BAD_TYPE, f"{f.name} must be a string"
        if f.hi is not None and len(value) > f.hi:
            return ErrorCode.TOO_LONG, f"{f.name} is longer than {f.hi:g} characters"
        if f.lo is not None and len(value) < f.lo:
            return ErrorCode.BAD_VALUE, f"{f.name} must not be empty"
        if _CONTROL.search(value):
            return ErrorCode.BAD_VALUE, f"{f.name} contains control characters"
        if f.name == "name" and not _is_name(value):
            return ErrorCode.BAD_VALUE, "name may hold letters, digits, space, _ - . only"
        if f.rule == ITEM_RULE and not _is_item(value):
            return ErrorCode.BAD_VALUE, f"{f.name}: items are {ITEM_RULE}"
    elif kind == BOOL:
        if not isinstance(value, bool):
            return ErrorCode.BAD_TYPE, f"{f.name} must be true or false"
    elif kind == TILE:
        if not isinstance(value, list) or len(value) != 2:
            return ErrorCode.BAD_TYPE, f"{f.name} must be [x, y]"
        for v in value:
            if _not_finite(v):
                return ErrorCode.NOT_FINITE, f"{f.name} must be finite"
            if isinstance(v, bool) or not isinstance(v, int):
                return ErrorCode.BAD_TYPE, f"{f.name} must hold two integers"
            if (f.lo is not None and v < f.lo) or (f.hi is not None and v > f.hi):
                return ErrorCode.OUT_OF_RANGE, f"{f.name} is off the map"
    elif kind == GOODS:
        return _check_goods(f, value)
    if f.choices and value not in f.choices:
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in f.choices)
        if f.refuse is ErrorCode.BAD_VERSION:
            return f.refuse, f"this server speaks protocol version {shown}"
        return f.refuse, f"{f.name} must be {'one of ' if len(f.choices) > 1 else ''}{shown}"
    return None


def _validate(obj: Any, table: dict[str, MessageSpec], limits: Limits,
              strict: bool) -> Message | ProtocolError:
    if not isinstance(obj, dict):
        return ProtocolError(ErrorCode.BAD_FRAME, "a message must be a map")
    seq = obj.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= limits.max_seq else None
    type_ = obj.get("t")
    spec = table.get(type_) if isinstance(type_, str) else None
    if spec is None:
        shown = repr(type_)[:40]
        return ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {shown}", seq)
    if strict and len(obj) > limits.max_keys + 1:
        return ProtocolError(ErrorCode.TOO_LONG, "too many fields", seq)
    data: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "t":
            continue
        f = spec.by_name.get(key)
        if f is None:
            if strict:
                return ProtocolError(ErrorCode.UNKNOWN_FIELD, f"{spec.type} has no field {key[:32]!r}", seq)
            continue
        if f.kind != ANY:
            problem = _check_field(f, value)
            if problem is not None:
                return ProtocolError(problem[0], problem[1], seq)
        data[key] = value
    for f in spec.fields:
        if f.required and f.name not in data:
            return ProtocolError(ErrorCode.MISSING_FIELD, f"{spec.type} needs {f.name}", seq)
    if spec.one_of and sum(1 for k in spec.one_of if k in data) != 1:
        return ProtocolError(ErrorCode.BAD_VALUE, f"{spec.type} needs exactly one of {', '.join(spec.one_of)}", seq)
    return Message(spec.type, data)


def decode_client(data: bytes | bytearray | memoryview | str,
                  limits: Limits = DEFAULT_LIMITS) -> Message | ProtocolError:
    """Decode and validate one client frame. Never raises."""
    # Size first, text or binary: a text frame is measured in bytes of UTF-8
    # (code points are at most 4 bytes each, so only long ones are encoded).
    size = len(data)
    if isinstance(data, str) and 4 * size > limits.max_frame_in:
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_frame_in:
        return ProtocolError(ErrorCode.TOO_LONG, f"frame larger than {limits.max_frame_in} bytes",
                             close=CloseCode.MESSAGE_TOO_BIG)
    if isinstance(data, str):
        return ProtocolError(ErrorCode.TEXT_FRAME, "send binary MessagePack frames, not text")
    try:
        obj = unpack_client(bytes(data), limits)
    except FrameError as exc:
        return ProtocolError(ErrorCode.BAD_FRAME, str(exc))
    try:
        return _validate(obj, CLIENT_MESSAGES, limits, strict=True)
    except Exception as exc:  # defensive: a validator bug must not escape
        return ProtocolError(ErrorCode.BAD_FRAME, f"invalid message ({type(exc).__name__})")


def decode_server(data: bytes) -> Message | ProtocolError:
    """Decode a server frame (for clients). Unknown fields are ignored so that
    clients keep working when a server adds fields. Never raises."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return _validate(obj, SERVER_MESSAGES, DEFAULT_LIMITS, strict=False)
    except Exception as exc:
        return ProtocolError(ErrorCode.BAD_FRAME, f"bad server frame ({type(exc).__name__})")
