"""A region's database records on JetStream (`hamlet region --replicate`):
the stream, its messages, and the owner's publisher.

Owns: the stream `hamlet_db_<world>` (subjects `hamlet.<world>.db.>`, one
subject per region, file storage, bounded in bytes with discard=new: a full
stream refuses the next record, so the owner stops, rather than the stream
silently dropping the history a standby is built from); a record's messages
(split into parts under the connection's payload limit, each with headers
saying its record's number n, the part i/k and the owner); the fence a new
owner writes before its first record; and `Publisher`, the owner's task
that publishes its records in n order and says which are acknowledged.

Every message an owner publishes carries Nats-Expected-Last-Subject-Sequence
= the last sequence it saw on its subject, so once a new owner wrote its
fence, an old owner that still runs (it lost its lease while stalled) can
write nothing more: its publish is refused and it stops.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import DiscardPolicy, StorageType
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

log = logging.getLogger("hamlet.region")

H_N = "Hamlet-Db-N"
H_PART = "Hamlet-Db-Part"
H_OWNER = "Hamlet-Db-Owner"
H_FENCE = "Hamlet-Db-Fence"
EXPECT = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's error codes for a failed expected-last-sequence check

# The stream's bound, for all the regions of a world together. Measured: a
# region with 100 walkers at 20 Hz writes 6.5 KiB/s of records, so 8 GiB
# holds about two weeks of two such regions (the stream is never compacted:
# it is the regions' whole history, which a new standby replays). A world
# that fills it stops its regions with the stream's error (publishing a
# record fails) instead of losing the oldest records a standby is built
# from. Raise it (`RegionNode(stream_max_bytes=)`) for a bigger world.
DEFAULT_STREAM_MAX_BYTES = 8 * 1024 ** 3
# Room for a part's headers under the connection's max_payload.
HEADER_ROOM = 1024
# Records committed and not yet acknowledged. A tick waits for its own
# records before anything is told, so a healthy region holds one tick's
# (a tick, a snapshot) and the arrivals committed between ticks: a handful.
# Thousands mean JetStream is not keeping up; past either bound the region
# stops (it cannot show its writes are kept), rather than holding memory
# without end.
MAX_UNACKED_RECORDS = 4096
MAX_UNACKED_BYTES = 256 * 1024 ** 2
# One publish's wait for its acknowledgement before it is tried again (the
# whole record's wait is bounded by the lease, see `Publisher.synced`).
PUBLISH_TIMEOUT_S = 1.0
# The wait before trying again when no JetStream server answered (no stream
# leader for a moment). A refusal (503 too: a full stream) is not retried.
RETRY_WAIT_S = 0.1


def stream_name(world: str) -> str:
    return f"hamlet_db_{world}"


def db_subject(world: str, region: str) -> str:
    return f"hamlet.{world}.db.{region}"


async def db_stream(js, world: str, max_bytes: int = DEFAULT_STREAM_MAX_BYTES) -> str:
    """The world's stream, created on first use; its name."""
    name = stream_name(world)
    try:
        await js.stream_info(name)
        return name
    except NotFoundError:
        pass
    try:
        await js.add_stream(name=name, subjects=[f"hamlet.{world}.db.>"], storage=StorageType.FILE,
                            max_bytes=max_bytes, discard=DiscardPolicy.NEW,
                            description=f"database records of world {world}'s regions (--replicate)")
    except APIError as exc:
        if exc.err_code != 10058:  # 10058: created by another region meanwhile
            raise
    return name


def split_parts(data: bytes, part_bytes: int) -> list[bytes]:
    return [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)] or [b""]


def part_size(nc, part_bytes: int | None) -> int:
    return part_bytes if part_bytes else max(1024, nc.max_payload - HEADER_ROOM)


class Fenced(RuntimeError):
    """Another process wrote on our subject: we no longer own the region."""


async def publish_fenced(js, stream: str, subject: str, data: bytes, headers: dict[str, str],
                         last_seq: int) -> int:
    """Publish one message expecting `last_seq` last on the subject; its
    sequence. A lost acknowledgement (or JetStream unavailable a moment) is
    tried again, without end: the caller's wait for the record is bounded
    (`Publisher.synced`); a retry that finds our message already stored
    (the subject's last, with our headers) takes it. Raises Fenced if
    someone else wrote since `last_seq`."""
    hdrs = dict(headers, **{EXPECT: str(last_seq)})
    while True:
        try:
            ack = await js.publish(subject, data, headers=hdrs, timeout=PUBLISH_TIMEOUT_S)
            return ack.seq
        except (NatsTimeout, asyncio.TimeoutError):
            log.warning("publishing on %s: no acknowledgement in %.1f s; trying again", subject, PUBLISH_TIMEOUT_S)
        except NoStreamResponseError:  # no responder: JetStream electing a stream leader, restarting...
            log.warning("publishing on %s: JetStream is not answering; trying again", subject)
            await asyncio.sleep(RETRY_WAIT_S)
        except APIError as exc:
            if exc.err_code not in WRONG_LAST_SEQUENCE:
                raise
            landed = await _last_is(js, stream, subject, headers, last_seq)
            if landed is None:
                raise Fenced(f"{subject}: another process wrote after sequence {last_seq}") from None
            return landed


async def publish_record(js, stream: str, subject: str, owner: str, n: int, data: bytes, part_bytes: int,
                         last_seq: int) -> int:
    """Record n's parts, in order; the last one's sequence."""
    parts = split_parts(data, part_bytes)
    for i, part in enumerate(parts, 1):
        headers = {H_N: str(n), H_PART: f"{i}/{len(parts)}", H_OWNER: owner}
        last_seq = await publish_fenced(js, stream, subject, part, headers, last_seq)
    return last_seq


async def _last_is(js, stream: str, subject: str, headers: dict[str, str], last_seq: int) -> int | None:
    """The subject's last message's sequence if it is ours (sent again after
    a lost acknowledgement), else None."""
    try:
        msg = await js.get_last_msg(stream, subject)  # the leader's: what our publish expected
    except NotFoundError:
        return None
    h = msg.headers or {}
    same = all(h.get(k) == v for k, v in headers.items())
    return msg.seq if same and msg.seq > last_seq else None


class Publisher:
    """The owner's records to its subject, in n order, one at a time: each
    part expects the previous one last on the subject."""

    def __init__(self, js, world: str, region: str, owner: str, last_seq: int, acked_n: int, part_bytes: int,
                 on_fail: Callable[[str], None]) -> None:
        self.js = js
        self.stream = stream_name(world)
        self.subject = db_subject(world, region)
        self.owner = owner
        self.last_seq = last_seq  # our subject's last sequence: the next publish expects it
        self.acked_n = acked_n  # every record up to this one is on the stream
        self.part_bytes = part_bytes
        self.on_fail = on_fail
        self.on_acked: Callable[[int, int], None] | None = None  # the recording connection's `acked`
        self.failed: str | None = None
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set and replaced at each acknowledgement or failure

    def add(self, n: int, data: bytes) -> None:
        """A committed record (called by the recording connection, in the
        commit): published by `run`. Never raises: the commit happened."""
        if self.failed:
            return
        if len(self._queue) >= MAX_UNACKED_RECORDS or self._queued_bytes + len(data) > MAX_UNACKED_BYTES:
            self._fail(f"{len(self._queue)} records ({self._queued_bytes} bytes) wait for JetStream")
            return
        self._queue.append((n, data))
        self._queued_bytes += len(data)
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                while not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                n, data = self._queue[0]
                self.last_seq = await publish_record(self.js, self.stream, self.subject, self.owner, n, data,
                                                     self.part_bytes, self.last_seq)
                self._queue.popleft()
                self._queued_bytes -= len(data)
                self.acked_n = n
                if self.on_acked is not None:
                    self.on_acked(n, self.last_seq)
                self._tell()
        except asyncio.CancelledError:
            raise
        except Fenced as exc:
            self._fail(f"{exc}: a new owner took the region over")
        except Exception as exc:  # a full stream, no stream, NATS gone for good...
            self._fail(f"{type(exc).__name__}: {getattr(exc, 'description', None) or exc}")

    async def synced(self, n: int, timeout_s: float) -> bool:
        """Whether every record up to n is acknowledged, waiting up to
        `timeout_s` (the lease's length: past it, a standby may own the region)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.acked_n < n and self.failed is None:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), left)
            except asyncio.TimeoutError:
                return False
        return self.acked_n >= n

    def _tell(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    def _fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            log.error("%s: records cannot be published (%s); stopping without telling anyone more",
                      self.subject, why)
            asyncio.get_running_loop().call_soon(self.on_fail, why)
        self._tell()

    def pending(self) -> int:
        return len(self._queue)
