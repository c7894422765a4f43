"""Protocol constants and the bounds on everything a peer can send.

Each default says why it is that size; servers may lower (never raise past the
documented maximum) any of them through `Limits`.
"""
from __future__ import annotations

from dataclasses import dataclass

SUBPROTOCOL = "hamlet.v1"
PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True)
class Limits:
    # The largest client message is a `say` with 280 characters of text; in
    # UTF-8 that is at most 1,120 bytes plus ~40 bytes of framing, so 4 KiB
    # leaves room for growth while keeping a hostile peer's frames small.
    max_frame_in: int = 4096
    # Player names are shown over avatars and in chat lines: 24 characters
    # keep a bubble readable.
    max_name: int = 24
    # One line of chat, as long as a short text message.
    max_text: int = 280
    # Session tokens are 32 URL-safe characters; 64 accepts other formats of
    # similar strength without letting a client stream long junk.
    max_token: int = 64
    # Free-form short strings (direction, place name, reason).
    max_short: int = 32
    # Client messages are flat maps of at most this many keys.
    max_keys: int = 8
    # Tile coordinates: maps are far smaller than this; it bounds arithmetic.
    max_coord: int = 65535
    # Client-chosen sequence and ping ids are unsigned 32-bit integers.
    max_seq: int = 2**32 - 1


DEFAULT_LIMITS = Limits()
