"""What a Hamlet client knows of the world from what the server sent: the
decoding of server frames, the entity mirror (views of the entities in
sight, kept exact by applying each `state` delta), the purse, open offers
and school progress. `HamletClient` (client.py) is a `ClientMirror` that
also talks: requests, replies and the message stream."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from protocol.codec import Message, decode_server
from protocol.entities import ROWS
from protocol.errors import ProtocolError


def decode_frame(data: bytes | str) -> Message | None:
    """Decode a server frame (None if it is not one). State updates, most of
    the traffic, take a fast path (their rows are checked as they are
    applied); everything else is validated against the schema."""
    if not isinstance(data, bytes):
        return None
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return None
    if isinstance(obj, dict) and obj.get("t") == "state" and isinstance(obj.get("tick"), int) and all(
            isinstance(obj.get(k), list) for k in ("enter", "move", "leave", "upd")):
        del obj["t"]
        return Message("state", obj)
    msg = decode_server(data)
    return None if isinstance(msg, ProtocolError) else msg


@dataclass(slots=True)
class EntityView:
    id: int
    kind: str
    name: str
    x: int
    y: int
    flags: int = 0


@dataclass(slots=True)
class ClientStats:
    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    state_updates: int = 0
    dropped_messages: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class ClientMirror:
    """The client's picture of the world, updated by `apply(msg)`."""

    def __init__(self) -> None:
        self.entity: int | None = None
        self.token: str | None = None
        self.name: str | None = None
        self.map: dict[str, Any] | None = None
        self.welcome: dict[str, Any] | None = None
        self.tick = 0
        self.entities: dict[int, EntityView] = {}
        # Your purse as the server last told it (`inv`), and the open offers
        # made by or to you (`offer`), by id. Offers are bounded by the server
        # (a few per maker, and they lapse).
        self.coins = 0
        self.items: dict[str, int] = {}
        self.offers: dict[int, dict[str, Any]] = {}
        # topic -> [right, wrong] at the school (`progress`)
        self.progress: dict[str, list[int]] = {}
        self.stats = ClientStats()

    def apply(self, msg: Message) -> None:
        """Update the mirror from one message. A malformed one raises
        TypeError, ValueError or KeyError (rows before the bad one stay
        applied); the caller skips it."""
        t = msg.type
        d = msg.data
        if t == "state":
            self.stats.state_updates += 1
            self.tick = d["tick"]
            ents = self.entities
            for eid, kind, name, x, y, flags in d["enter"]:
                ents[eid] = EntityView(eid, kind, name, x, y, flags)
            for eid, x, y in d["move"]:
                e = ents.get(eid)
                if e is not None:
                    e.x, e.y = x, y
            for eid, flags in d["upd"]:
                e = ents.get(eid)
                if e is not None:
                    e.flags = flags
            for eid in d["leave"]:
                ents.pop(eid, None)
        elif t == "welcome":
            self.entity, self.token, self.map, self.welcome = d["id"], d["token"], d["map"], d
            self.tick = d["tick"]
            self.entities.clear()
        elif t == "error":
            self.stats.errors[d["code"]] = self.stats.errors.get(d["code"], 0) + 1
        elif t == "inv":
            if d["full"]:
                self.items = {}
            self.coins = d["coins"]
            for item, n in d["items"].items():
                if n:
                    self.items[item] = n
                else:
                    self.items.pop(item, None)
        elif t == "offer":
            if d["state"] == "open":
                self.offers[d["id"]] = d
            else:
                self.offers.pop(d["id"], None)
        elif t == "progress":
            self.progress = {str(k): list(v) for k, v in d["topics"].items()}

    # -- conveniences --------------------------------------------------------
    @property
    def me(self) -> EntityView | None:
        return self.entities.get(self.entity) if self.entity is not None else None

    def find(self, name: str) -> EntityView | None:
        key = name.casefold()
        return next((e for e in self.entities.values() if e.name.casefold() == key), None)

    def place(self, name: str) -> dict[str, Any] | None:
        for row in (self.map or {}).get("places", []):
            if row[0] == name:
                return dict(zip(ROWS["place"], row))
        return None
