"""Protocol constants and the bounds on everything a peer can send.

Each default says why it is that size; servers may lower (never raise past the
documented maximum) any of them through `Limits`. `ServerBounds` lists the
bounds the server enforces outside the codec, as PROTOCOL.md documents them
(server/config.py holds the same defaults; a test checks they agree).
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
    # Text frames are measured in bytes of UTF-8 too.
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
    # Client messages are flat maps of at most this many keys besides `t`.
    max_keys: int = 8
    # Tile coordinates: maps are far smaller than this; it bounds arithmetic.
    max_coord: int = 65535
    # Client-chosen sequence and ping ids are unsigned 32-bit integers.
    max_seq: int = 2**32 - 1
    # Containers nested in one frame. The deepest legal client message is 2
    # (the message map holding a tile `[x, y]`); 4 leaves room for a field a
    # later version may add, and is checked before anything is decoded, so a
    # frame of a thousand nested arrays costs a few steps, not a recursion.
    max_depth: int = 4
    # Values in one frame, counting every key, value and list item. The
    # largest legal client message holds 21 (`t` and 8 fields, one of them a
    # tile); 64 is three times that, and bounds the work one hostile frame
    # can cost (thousands of tiny values in 4 KiB took milliseconds to build).
    max_values: int = 64


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ServerBounds:
    """Defaults of the bounds the server enforces around the codec (the
    reasons for each value are in server/config.py, which owns them)."""

    max_pending_per_client: int = 16  # messages waiting for the next tick
    max_clients_per_ip: int = 64      # connections from one address
    join_timeout_s: float = 10.0      # time to send `hello`
    slow_reader_timeout_s: float = 10.0  # a state update waiting this long closes with 4001
    ping_interval_s: float = 20.0     # WebSocket keepalive pings
    ping_timeout_s: float = 20.0      # ... and how long a pong may take


SERVER_BOUNDS = ServerBounds()
