"""What regions say to each other over NATS: subject names and bounded
MessagePack messages (decoded strictly; a bad one is refused, never
half-applied).

    hamlet.<world>.region.<region>.handoff   request/reply: an entity's state
                                             -> ok (with the tick it arrived at)
                                             / refused (why) / busy (retry)
    hamlet.<world>.cell.<cx>.<cy>            a border cell's entities, and its
                                             owner's in transit that left beside
                                             it ("cell"), and the speech heard
                                             there ("say")
    hamlet.<world>.region.<region>.client    gateway -> region: its sessions'
                                             messages ("in") and closed sockets ("gone")
    hamlet.<world>.region.<region>.find      request/reply: where a session
                                             token's avatar is ("find" -> "found")
    hamlet.<world>.gw.<gateway>              region -> gateway: each tick's frames
                                             and session news per session ("out")
    hamlet.<world>.alive                     heartbeats of regions and gateways
"""
from __future__ import annotations

import re
from typing import Any

import msgpack

# Largest message a region accepts from another: a handoff state is a few KB
# (a 400-step path is the bulk), an NPC's up to agents/mind_state.py's 512
# KiB bound on its mind (a full memory stream: ~300 KB); a border cell's rows
# are ~40 bytes each. NATS's own default max_payload (1 MiB) is above it.
MAX_MESSAGE = 768 * 1024

_WORLD = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class WireError(ValueError):
    pass


def check_world_name(world: str) -> str:
    if not _WORLD.match(world):
        raise ValueError(f"world name {world!r}: letters, digits, '_' and '-', 1-32")
    return world


def handoff_subject(world: str, region: str) -> str:
    return f"hamlet.{world}.region.{region}.handoff"


def cell_subject(world: str, cell: tuple[int, int]) -> str:
    return f"hamlet.{world}.cell.{cell[0]}.{cell[1]}"


def client_subject(world: str, region: str) -> str:
    return f"hamlet.{world}.region.{region}.client"


def find_subject(world: str, region: str) -> str:
    return f"hamlet.{world}.region.{region}.find"


def gateway_subject(world: str, gateway: str) -> str:
    return f"hamlet.{world}.gw.{gateway}"


def alive_subject(world: str) -> str:
    return f"hamlet.{world}.alive"


def pack(msg: dict[str, Any]) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def unpack(data: bytes, kinds: tuple[str, ...]) -> dict[str, Any]:
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes is over {MAX_MESSAGE}")
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for bad input
        raise WireError(f"not MessagePack: {exc}") from None
    if not isinstance(msg, dict) or msg.get("t") not in kinds:
        raise WireError(f"expected a map with t in {kinds}")
    return msg
