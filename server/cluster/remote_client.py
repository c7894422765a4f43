"""The region's stand-in for a player's connection that a gateway holds.

The one-process `Game` talks to connections (`server.net.Client`) through
a few attributes and methods: `send`, `put_state`, `close`, `entity`,
`known`, `protocol.join_accepted()`... A `RemoteClient` offers the same,
but what is sent is gathered per tick and published to the session's
gateway after the tick (its commit included), with the session's news
(`ctl`): joined, refused, closed, moved to another region, attached here.

Messages are numbered by the gateway (`n`); the region applies each
number once and reports the highest it received with every batch, so the
gateway knows what to send again to the next region after a handoff.
"""
from __future__ import annotations

from typing import Any

from server.replication import EMPTY_VIEW, View

# A handed-off client's view (what it was last sent), carried to the next
# region: a 3 x 3 block of 16 x 16 cells holds at most 2,304 walkable
# tiles, one entity each at most.
MAX_KNOWN_ROWS = 2304


class JoinNews:
    """What `server/joins.py` tells a connection's protocol state: here it
    becomes news for the gateway, whose own `ServerConnection` moves."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def join_accepted(self) -> None:
        c = self.client
        c.welcomed = True
        c.news(["joined", c.entity])

    def join_refused(self) -> None:
        self.client.news(["refused"])


class RemoteClient:
    def __init__(self, sink: Any, gw: str, sid: int, n: int = 0) -> None:
        self.sink = sink            # the region: sink.dirty(client) when there is something to send
        self.gw = gw
        self.sid = sid
        self.n_in = n               # highest message number received (all of them answered by the tick's end)
        self.entity: int | None = None
        self.known: View = EMPTY_VIEW
        self.known_cell: tuple[int, int] | None = None
        self.pending = 0
        self.closed = False
        self.close_code: int | None = None
        self.welcomed = False
        self.live = True            # frames still go out (False once moved away and flushed)
        self.outbox: tuple = ()     # never backlogged here: the gateway holds the socket's bounds
        self.state_frame = None
        self.state_since = None
        self.protocol = JoinNews(self)
        self.frames: list[bytes] = []
        self.ctl: list[list[Any]] = []

    def __repr__(self) -> str:
        return f"<RemoteClient {self.gw}/{self.sid} entity={self.entity}>"

    backlogged = False

    def send(self, frame: bytes) -> None:
        if self.live:
            if not self.frames and not self.ctl:
                self.sink.dirty(self)
            self.frames.append(frame)

    put_state = send

    def state_slot_free(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def news(self, item: list[Any]) -> None:
        if self.live:
            if not self.frames and not self.ctl:
                self.sink.dirty(self)
            self.ctl.append(item)

    def close(self, code: int, reason: str) -> None:
        """Closed by the world (bye, kick, resumed elsewhere, a bug): the
        gateway closes the socket with this code after the frames before it."""
        if self.closed:
            return
        self.closed = True
        self.close_code = int(code)
        self.news(["close", int(code), reason[:120]])
        self.sink.closed(self)

    def take(self) -> list[Any]:
        """This tick's item for the gateway: [sid, n, frames, news]."""
        item = [self.sid, self.n_in, self.frames, self.ctl]
        self.frames, self.ctl = [], []
        return item


def flatten_view(view: View) -> list[list[int]]:
    return [[eid, x, y, f] for _, piece in view for eid, (x, y, f) in piece.items()]


def view_from_rows(rows: Any, cell: int) -> View:
    """A view rebuilt from flattened rows (another region's message): the
    pieces are new objects, so the first delta here compares them by content."""
    if not isinstance(rows, list) or len(rows) > MAX_KNOWN_ROWS:
        raise ValueError("bad known view")
    cells: dict[tuple[int, int], dict[int, tuple[int, int, int]]] = {}
    for r in rows:
        eid, x, y, f = (int(v) for v in r)
        if x < 0 or y < 0:
            raise ValueError("bad known view")
        cells.setdefault((x // cell, y // cell), {})[eid] = (x, y, f)
    return tuple(sorted(cells.items()))
