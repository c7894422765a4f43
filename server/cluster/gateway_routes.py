"""Where each client's session goes: the gateway's routing table, sans I/O.

A `Route` is one socket's session: the region its messages go to, the
messages sent but not yet reported applied by a region (`unconfirmed`,
numbered), and the hop of the avatar's last handoff. What regions report
(`out` items: `[sid, n, frames, news]`) moves it:

    joined / refused   the hello's answer (the socket's protocol state moves)
    moved dest hop     the avatar left with this session: hold new messages
    attached hop       a region took the avatar (and session) in: route there
                       and send it every message it has not applied (> n)
    close code why     the world closed the session (bye, kick, resumed elsewhere)
    unknown            the region does not know the session (it restarted)

`Routes` does no I/O: it returns what to send where, and the gateway does it.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

# Messages of one session sent to a region and not yet reported applied:
# the region holds at most 16 waiting for its tick (the protocol's bound),
# the rest are in flight (a tick or two) or held during a handoff (about a
# tick). Past it the client gets `rate_limited`, as from a busy server.
MAX_UNCONFIRMED = 64


class Route:
    __slots__ = ("sid", "client", "region", "owner", "moving_to", "moving_since", "hop", "n", "unconfirmed",
                 "since", "joined")

    def __init__(self, sid: int, client: Any) -> None:
        self.sid = sid
        self.client = client
        self.region: str | None = None     # where its messages go now (None: finding, or moving)
        self.owner: str | None = None      # that region's owner process when we routed there
        self.moving_to: str | None = None  # handed off, not attached yet
        self.moving_since = 0.0
        self.hop = 0
        self.n = 0
        self.unconfirmed: deque[tuple[int, bytes]] = deque()
        self.since = time.monotonic()
        self.joined = False

    @property
    def where(self) -> str | None:
        return self.region or self.moving_to


class Routes:
    def __init__(self) -> None:
        self.by_sid: dict[int, Route] = {}
        self._next_sid = 1

    def open(self, client: Any) -> Route:
        route = Route(self._next_sid, client)
        self._next_sid += 1
        self.by_sid[route.sid] = route
        return route

    def close(self, route: Route) -> None:
        self.by_sid.pop(route.sid, None)

    def message(self, route: Route, raw: bytes) -> list[Any] | None:
        """Number a client's message; the item to send now, or None while
        the session is between regions (it is sent on attach)."""
        route.n += 1
        route.unconfirmed.append((route.n, raw))
        return [route.sid, route.n, raw] if route.region is not None else None

    def report(self, region: str, owner: str, item: Any,
               now: float) -> tuple[Route | None, list[Any], list[list[Any]] | None]:
        """One `out` item from `region`: (its route or None, the news to act
        on in order, the items to send again to `region` if the session was
        attached there, else None)."""
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], int)
                and isinstance(item[1], int) and isinstance(item[2], list) and isinstance(item[3], list)):
            return None, [], None
        sid, n, _, news = item
        route = self.by_sid.get(sid)
        if route is None:
            return None, [x for x in news if isinstance(x, list) and x[:1] == ["attached"]], None
        while route.unconfirmed and route.unconfirmed[0][0] <= n:
            route.unconfirmed.popleft()  # applied (or answered) there
        act: list[Any] = []
        resend: list[list[Any]] | None = None
        for x in news:
            if not isinstance(x, list) or not x or not isinstance(x[0], str):
                continue
            kind = x[0]
            if kind == "attached" and len(x) == 2 and isinstance(x[1], int) and x[1] >= route.hop:
                route.region, route.owner, route.hop, route.moving_to = region, owner, x[1], None
                resend = [[sid, k, raw] for k, raw in route.unconfirmed]
            elif kind == "moved" and len(x) == 3 and isinstance(x[2], int):
                if x[2] > route.hop and route.region == region:
                    route.region, route.moving_to, route.hop, route.moving_since = None, str(x[1]), x[2], now
            elif kind == "unknown":
                if route.region == region and route.joined:
                    act.append(["close", 1011, f"session lost by region {region}"])
            elif kind == "joined":
                route.joined = True
                act.append(x)
            elif kind in ("refused", "close"):
                act.append(x)
        return route, act, resend
