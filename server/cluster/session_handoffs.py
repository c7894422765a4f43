"""A player's session travelling with its avatar, mixed into `RegionNode`
beside `RegionSessions` (region_sessions.py), whose table of sessions
(`remote`, `_departed`, `_moved_away`) it moves sessions in and out of.

- Leaving: the session goes out in the handoff state (gateway, session id,
  `n`, the highest message number received, and the view last sent); the
  gateway is told `moved` with that tick's frames, and the session is
  remembered as departed (its late messages are the next region's).
- Arriving: the next region attaches it (a `RemoteClient` that carries on
  the view, so the client's next delta is exact) and tells the gateway
  `attached`, which then sends it what the old region did not apply. So
  the client's acks and deltas run on unbroken.
- After a restart: players found in the world get a session in its grace
  period, for their owners to resume.
"""
from __future__ import annotations

import time
from typing import Any

from protocol.codec import Message
from server.cluster.remote_client import RemoteClient, flatten_view, view_from_rows
from server.cluster.walkers import PREFIX
from server.persistence import Account
from server.world.world import FLAG_AWAY

# Sessions that left with their avatar lately: a message that reaches us
# after they left is dropped quietly (the gateway sends it on to the next
# region); older ones are forgotten, and reported unknown.
MAX_DEPARTED = 8192


class SessionHandoffs:
    def ready_to_leave(self, eid: int) -> bool:
        """A player whose welcome is not out yet leaves a tick later."""
        session = self.game.sessions.by_entity.get(eid)
        conn = session.conn if session is not None else None
        return not isinstance(conn, RemoteClient) or conn.welcomed or conn.closed

    def session_leaving(self, eid: int, dest: str, hop: int, x: int, y: int) -> dict[str, Any] | None:
        """Take the entity's session out with it: what the next region needs
        to carry it on, or None for an entity without a session."""
        game = self.game
        session = game.sessions.by_entity.pop(eid, None)
        if session is None:
            return None
        game.sessions._away.pop(eid, None)
        game.clients.pop(eid, None)
        a = session.account  # our row now says it went on (see _on_find)
        game.sessions.dirty_accounts.append(Account(a.id, a.name, a.token_hash, eid, x, y))
        conn = session.conn
        if not isinstance(conn, RemoteClient) or conn.closed:
            return {"away": True}
        conn.news(["moved", dest, hop])
        conn.closed = True  # its messages still queued here are dropped; the gateway sends them on
        conn.entity = None
        key = (conn.gw, conn.sid)
        self.remote.pop(key, None)
        self._moved_away.append(conn)
        self._departed[key] = None
        while len(self._departed) > MAX_DEPARTED:
            self._departed.popitem(last=False)
        return {"gw": conn.gw, "sid": conn.sid, "n": conn.n_in, "known": flatten_view(conn.known)}

    def session_arrived(self, eid: int, account: Account, sess: Any, hop: int) -> None:
        game = self.game
        if not isinstance(sess, dict):
            return
        try:
            gw, sid, n = sess["gw"], sess["sid"], sess["n"]
            if not (isinstance(gw, str) and isinstance(sid, int) and isinstance(n, int)):
                raise ValueError("bad session")
            known = view_from_rows(sess.get("known"), self.regions.cell)
        except (KeyError, TypeError, ValueError):
            game.sessions.attach(account, None)  # away, or a session we cannot carry on: it may resume
            game.sessions.detach(eid, time.monotonic())
            return
        client = RemoteClient(self, gw, sid, n)
        client.entity, client.known, client.welcomed = eid, known, True
        self.remote[(gw, sid)] = client
        self._departed.pop((gw, sid), None)
        game.sessions.attach(account, client)
        game.clients[eid] = client
        client.news(["attached", hop])

    def adopt_players(self) -> None:
        """After a restart: players in our world get a session in its grace
        period (their owners may resume); walkers need none."""
        game = self.game
        now = time.monotonic()
        for e in list(game.world.entities.values()):
            if e.kind != "player" or e.name.startswith(PREFIX) or e.id in game.sessions.by_entity:
                continue
            account = self.db.account_by_entity(e.id)
            if account is None:
                continue
            game.sessions.attach(account, None)
            game.sessions.detach(e.id, now)
            if not e.flags & FLAG_AWAY:
                game.inbox.append((None, Message("_away", {"entity": e.id})))
