"""Engine workers' load over NATS: the load note a worker (`hamlet
llm-worker`, nats_worker.py) publishes, and `WorkerTable`, what a `NatsLLM`
client (nats_llm.py) knows of the workers it can reach directly.

Owns: the load note, {"v": 1, "id": the worker's unique id (the last token
of its direct subject `hamlet.<world>.llm.w.<id>`), "worker": its name,
"jobs": the jobs it holds, "capacity": how many it holds before it answers
busy, "bye": true once it is stopping}, which a worker publishes on
`hamlet.<world>.llm.load` every ANNOUNCE_S and as it stops, and adds to each
reply; checking one (`read_note`: a malformed note is ignored and changes
nothing); and the table: each worker's last announced jobs, the requests
this client sent it since that note and that are still out (the estimate of
its load is the sum), and this client's own outstanding requests there.
`pick` chooses the known worker with room (estimate below capacity) whose
estimate is the smallest share of its capacity, ties at random, and counts
the request against it; None (send to the queue group) when no worker is
known or all are full. A worker is forgotten on its goodbye, when a request
sent to it finds no responders (`forget`), or when not heard from for
FORGET_AFTER_S (checked on each pick, and by `expire`, which the client
calls a few times a second). The last two mean it died, and the table says
so to `on_lost(ids)` (the client resends the jobs it still waits for
there); a goodbye does not: that worker finishes what it holds. The table
is bounded (MAX_KNOWN); it also counts results per worker name for info().
Pure logic under a lock, callable from any thread (`on_lost` is called
from the caller's thread, outside the lock): no asyncio, no NATS; times are
time.monotonic() unless passed in.
"""
from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from .nats_wire import MAX_ID_CHARS, VERSION, direct_subject

# A worker announces this often. An NPC job takes 0.1-2 s, so a client's
# picture of a worker is at most about one short job old (and replies carry
# the note in between, while the client counts its own sends); a handful of
# workers then send a few tiny messages a second per world, nothing for NATS.
ANNOUNCE_S = 0.5
# Three announcements missed: one late or lost note (a busy event loop, a
# reconnect) does not drop a live worker, and a dead one is out within 1.5 s
# (until then a request sent to it finds no responders and goes elsewhere).
FORGET_AFTER_S = 3 * ANNOUNCE_S
# Workers a client keeps: a world runs a handful (pool.py takes 64 URLs);
# this bounds what made-up ids on the load subject can cost. A worker past
# it is still reached through the queue group.
MAX_KNOWN = 64
# A note is ~120 bytes (an id of 32 characters, a name of up to 64, numbers).
MAX_NOTE_BYTES = 512
# A worker's capacity is its engine's max_queue + max_batch (288 by
# default); a million leaves room for any real engine and keeps the sums sane.
MAX_CAPACITY = 1 << 20
# Notes NATS holds for a client before its callback (microseconds each)
# takes them: 64 workers send 128 a second; past it NATS drops notes as to a
# slow consumer, which only leaves the table a little staler.
NOTES_PENDING = 1024
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")     # a subject token (nats_wire.direct_subject)
MAX_NAMES = 256                 # results counted per worker name: a group is a handful of workers


def note(worker_id: str, name: str, jobs: int, capacity: int, bye: bool = False) -> dict:
    """A worker's load note."""
    return {"v": VERSION, "id": worker_id, "worker": name, "jobs": jobs, "capacity": capacity, "bye": bye}


def read_note(data: bytes) -> dict | None:
    """The note in a message on the load subject, None if it is not one."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_NOTE_BYTES:
        return None
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:     # msgpack raises several types for bad input
        return None
    return checked_note(msg)


def checked_note(msg: Any) -> dict | None:
    """`msg` as a note with every field checked (a reply's "load" too), None if it is not one."""
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        return None
    wid, name, jobs, cap, bye = (msg.get(k) for k in ("id", "worker", "jobs", "capacity", "bye"))
    if not (isinstance(wid, str) and _ID.match(wid) and isinstance(name, str) and 1 <= len(name) <= MAX_ID_CHARS):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (jobs, cap)):
        return None
    if not (0 <= jobs <= MAX_CAPACITY and 1 <= cap <= MAX_CAPACITY and isinstance(bye, (bool, type(None)))):
        return None
    return note(wid, name, jobs, cap, bool(bye))


@dataclass(eq=False)
class Known:
    """One worker as a client knows it (changed under the table's lock)."""
    id: str
    subject: str
    name: str
    jobs: int                # in its last note
    capacity: int
    heard: float             # monotonic time of that note
    news: int = 0            # notes heard: a request counts in `since` only until the next one
    since: int = 0           # this client's requests sent after that note, still out
    outstanding: int = 0     # this client's requests out there in all

    def share(self) -> float:
        return (self.jobs + self.since) / self.capacity


class WorkerTable:
    def __init__(self, world: str, *, forget_after_s: float = FORGET_AFTER_S, max_known: int = MAX_KNOWN,
                 rng: random.Random | None = None, on_lost: Callable[[list[str]], object] | None = None):
        self.world, self.forget_after_s, self.max_known = world, forget_after_s, max_known
        self.rng = rng or random.Random()
        self.on_lost = on_lost               # told the ids of workers forgotten as dead
        self.served: dict[str, int] = {}     # results per worker name (at most MAX_NAMES)
        self.lost = 0                        # workers forgotten because a request found nobody there
        self._known: dict[str, Known] = {}   # by id, at most max_known
        self._lock = threading.Lock()

    def heard(self, msg: Any, now: float | None = None) -> None:
        """Take a note (from the load subject or a reply); anything else changes nothing."""
        n = checked_note(msg)
        if n is None:
            return
        now = time.monotonic() if now is None else now
        lost: list[str] = []
        with self._lock:
            if n["bye"]:
                self._known.pop(n["id"], None)        # a clean stop: it drains, nothing to resend
                return
            w = self._known.get(n["id"])
            if w is None:
                lost = self._expire(now)
                if len(self._known) >= self.max_known:
                    w = None             # the ones known keep serving; this one through the queue group
                else:
                    w = self._known[n["id"]] = Known(n["id"], direct_subject(self.world, n["id"]), n["worker"],
                                                     n["jobs"], n["capacity"], now)
            if w is not None:
                w.name, w.jobs, w.capacity, w.heard = n["worker"], n["jobs"], n["capacity"], now
                w.news, w.since = w.news + 1, 0
        self._tell(lost)

    def forget(self, worker_id: str) -> None:
        """A request sent to this worker found no responders: it is gone."""
        with self._lock:
            gone = self._known.pop(worker_id, None) is not None
            if gone:
                self.lost += 1
        self._tell([worker_id] if gone else [])

    def expire(self, now: float | None = None) -> None:
        """Forget the workers silent for forget_after_s (telling on_lost)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            lost = self._expire(now)
        self._tell(lost)

    def pick(self, now: float | None = None) -> tuple[Known, int] | None:
        """The least-loaded known worker with room, with this request counted
        against it (give the pair back to `done`), or None: use the queue group."""
        now = time.monotonic() if now is None else now
        with self._lock:
            lost = self._expire(now)
            room = [w for w in self._known.values() if w.jobs + w.since < w.capacity]
            picked = None
            if room:
                least = min(w.share() for w in room)
                w = self.rng.choice([w for w in room if w.share() == least])
                w.since += 1
                w.outstanding += 1
                picked = w, w.news
        self._tell(lost)
        return picked

    def done(self, w: Known, news: int) -> None:
        """A request `pick` sent to `w` is answered or given up."""
        with self._lock:
            w.outstanding = max(0, w.outstanding - 1)
            if news == w.news and w.since > 0:
                w.since -= 1          # else the note since then counted it already (or not at all)

    def count(self, name: str) -> None:
        """A result from the worker named `name`."""
        with self._lock:
            if name in self.served or len(self.served) < MAX_NAMES:
                self.served[name] = self.served.get(name, 0) + 1

    def known(self, now: float | None = None) -> dict[str, dict]:
        """Worker id -> what this client knows of it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            lost = self._expire(now)
            out = {w.id: {"worker": w.name, "jobs": w.jobs, "capacity": w.capacity, "sent_since": w.since,
                          "outstanding": w.outstanding, "heard_s_ago": round(now - w.heard, 3)}
                   for w in self._known.values()}
        self._tell(lost)
        return out

    def _expire(self, now: float) -> list[str]:
        lost = [wid for wid, w in self._known.items() if now - w.heard > self.forget_after_s]
        for wid in lost:
            del self._known[wid]
        return lost

    def _tell(self, lost: list[str]) -> None:
        if lost and self.on_lost is not None:
            self.on_lost(lost)
