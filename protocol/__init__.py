"""Hamlet's wire protocol, sans-I/O: message declarations, the MessagePack
codec with validation, limits, error and close codes, and the per-connection
state machine. Depends on msgpack only: no asyncio, no sockets, no torch.
"""
from __future__ import annotations

from protocol.codec import decode_client, decode_server, encode
from protocol.errors import CloseCode, ErrorCode, ProtocolError
from protocol.limits import PROTOCOL_VERSION, SUBPROTOCOL, Limits

__all__ = [
    "CloseCode",
    "ErrorCode",
    "Limits",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "SUBPROTOCOL",
    "decode_client",
    "decode_server",
    "encode",
]
