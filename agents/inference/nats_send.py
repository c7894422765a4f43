"""One `NatsLLM` request's way to an answer (nats_llm.py owns the client,
its handles and its connection; this module one job's sends).

Owns: `Trip`, a job's sends: each copy goes to the least-loaded known
worker's direct subject, or to the queue group when none is known with
room (nats_load.py picks); a "busy" or "closing" answer is tried again
(BUSY_RETRIES, backing off); no responders on a direct subject forgets that
worker and sends again without counting a try; and when the worker holding
the job is lost (silent for FORGET_AFTER_S, or no responders to another
request: `Waiting` hears it from the table), the job is sent again to the
next worker, once per loss and at most MAX_RESENDS times, without counting
a try. A resend carries its own id (`<job>-r<n>`), so a cancel meant for an
earlier copy never stops it; the earlier copy is still listened to, and the
first answer wins: the copies left are cancelled (their late replies go
nowhere) and told to stop at their workers. The deadline is the job's, not
a copy's: each send carries what is left of it, and the job gives up at the
deadline plus REPLY_GRACE_S (DEFAULT_TIMEOUT_S after its first send without
one). Runs on the client's event loop; nothing here raises into a caller.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from .api import GenerationResult, ScoreResult, Status
from .jobs import failed
from .nats_load import MAX_KNOWN, Known
from .nats_wire import RETRY_CODES, pack, read_reply, result_of
from .remote_exchange import UNREACHABLE
from .replies import BadAnswer

# A request with no deadline waits this long for its reply, as RemoteLLM's
# timeout_s: a 64-token line takes seconds even on a loaded CPU worker, and
# past a minute it is stale. NATS never tells a requester that the worker
# holding its request died; the client resends when it notices (a worker
# silent for FORGET_AFTER_S), and this bounds the rest (a worker that still
# announces but never answers).
DEFAULT_TIMEOUT_S = 60.0
# With a deadline the worker's engine answers "deadline" itself when it
# passes; this long after it the requester stops waiting (a reply crosses a
# LAN in milliseconds; 2 s covers a busy worker's event loop).
REPLY_GRACE_S = 2.0
# Tries after a "busy" or "closing" answer, BUSY_BACKOFF_S doubling between
# them: a busy worker's reply says it is full, so the next try goes to
# another (through the queue group, a random one); when every worker is
# full the job fails "overloaded" in ~0.35 s and the NPC shows that it is
# thinking, as with a full local engine.
BUSY_RETRIES = 3
BUSY_BACKOFF_S = 0.05
# Resends of one job after the worker holding it was lost. One covers a
# dead worker, two a second one dying (a rack losing power); a job that
# kills every worker it lands on (a prompt that crashes the engine) must not
# go on to take the whole group down, and each resend leaves a copy that is
# still listened to, so this also bounds a job's copies to 1 + MAX_RESENDS.
MAX_RESENDS = 2


@dataclass(eq=False)
class Copy:
    """One send of a job: its id at the worker, and the worker (None: the queue group)."""
    trip: Trip
    id: str
    sent: tuple[Known, int] | None
    lost: bool = False       # its worker died while it was out

    @property
    def worker(self) -> str | None:
        return None if self.sent is None else self.sent[0].id


class Waiting:
    """Which copies wait for a reply at which worker, so that a worker's
    loss reaches the jobs it held, in the order they were sent (so they are
    sent again in that order). The client's event loop only; bounded by the
    client's max_outstanding x (1 + MAX_RESENDS) copies."""

    def __init__(self) -> None:
        self._at: dict[str, dict[Copy, None]] = {}     # worker id -> its copies, oldest first

    def add(self, copy: Copy) -> None:
        if copy.worker is not None:
            self._at.setdefault(copy.worker, {})[copy] = None

    def discard(self, copy: Copy) -> None:
        copies = self._at.get(copy.worker) if copy.worker is not None else None
        if copies is not None:
            copies.pop(copy, None)
            if not copies:
                del self._at[copy.worker]

    def __bool__(self) -> bool:
        return bool(self._at)

    def lost(self, worker_ids: list[str]) -> None:
        """These workers died: each job still waiting at one sends again."""
        for wid in worker_ids:
            for copy in self._at.pop(wid, {}):
                copy.trip.lost(copy)


class Trip:
    """One job's sends until its answer (`run`), for the client `c` (a NatsLLM)."""

    def __init__(self, c: Any, kind: str, req: dict, submitted: float):
        self.c, self.kind, self.req, self.submitted = c, kind, req, submitted
        self.copies: dict[asyncio.Task, Copy] = {}    # at most 1 + MAX_RESENDS
        self.current: asyncio.Task | None = None      # the copy retries and resends replace
        self.resends = 0
        self.wake: asyncio.Future = asyncio.get_running_loop().create_future()

    def lost(self, copy: Copy) -> None:
        """`copy`'s worker died (from Waiting.lost, on the loop)."""
        copy.lost = True
        if not self.wake.done():
            self.wake.set_result(None)

    async def run(self) -> GenerationResult | ScoreResult:
        c, kind, submitted = self.c, self.kind, self.submitted
        deadline = None if self.req["deadline_s"] is None else submitted + self.req["deadline_s"]
        give_up = time.monotonic() + c.timeout_s if deadline is None else deadline + REPLY_GRACE_S
        attempt = gone = 0
        try:
            while True:
                if self.current is None:
                    unsent = self._send(deadline, give_up)
                    if unsent is not None:
                        return unsent
                done, _ = await asyncio.wait({*self.copies, self.wake}, return_when=asyncio.FIRST_COMPLETED,
                                             timeout=max(0.0, give_up - time.monotonic()) + 1.0)
                if not done:            # each copy's own timeout ends first; this is a backstop
                    return failed(kind, Status.ERROR, "no reply from a worker in time", submitted)
                for task in done - {self.wake}:
                    copy = self.copies.pop(task)
                    if task is not self.current:          # an earlier copy, its worker thought dead
                        result = self._answer(task, quiet=True)
                        if result is not None:
                            return result                 # it was only slow: the first answer wins
                        continue
                    self.current = None
                    if task.cancelled():        # not by this trip: the connection closed under it
                        return failed(kind, Status.ERROR, f"{UNREACHABLE}the request was cut off", submitted)
                    exc = task.exception()
                    if exc is not None:
                        if _no_responders(exc) and copy.sent is not None and gone < MAX_KNOWN:
                            c.seen.forget(copy.worker)    # died: the others waiting there are resent too
                            gone += 1
                            continue
                        if isinstance(exc, _timeout()):
                            c._cancel_at_worker(copy.id)
                        return self._failure(exc, deadline)
                    result = self._answer(task)
                    if result is not None:
                        return result
                    if attempt >= c.busy_retries:
                        return failed(kind, Status.OVERLOADED,
                                      f"every worker tried was busy ({c.busy_retries + 1} tries)", submitted)
                    await asyncio.sleep(c.backoff_s * (2 ** attempt))
                    attempt += 1
                if self.wake.done():
                    self.wake = asyncio.get_running_loop().create_future()
                    copy = self.copies.get(self.current) if self.current is not None else None
                    if copy is not None and copy.lost and not self.current.done() and self.resends < MAX_RESENDS:
                        self.resends += 1               # it stays in self.copies, still heard
                        self.current = None             # sent again on the next turn, no try counted
        finally:
            self._drop()

    def _send(self, deadline: float | None, give_up: float):
        """Send a copy (the current one); a failed result when it cannot be sent."""
        c, kind, submitted = self.c, self.kind, self.submitted
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return failed(kind, Status.DEADLINE, "deadline passed", submitted)
        if now >= give_up:          # no deadline: DEFAULT_TIMEOUT_S since the first send, spent on retries
            return failed(kind, Status.ERROR, f"no reply from a worker within {c.timeout_s:g} s", submitted)
        nc = c._nc
        if nc is None or not nc.is_connected:
            return failed(kind, Status.ERROR, f"{UNREACHABLE}no connection to NATS at {c.nats_url}", submitted)
        req = dict(self.req)
        if self.resends:
            req["id"] = f"{req['id']}-r{self.resends}"
        if deadline is not None:
            req["deadline_s"] = deadline - now          # relative: the worker's clock may differ
        sent = c.seen.pick()                            # None: the queue group
        task = asyncio.get_running_loop().create_task(
            nc.request(c.subject if sent is None else sent[0].subject, pack(req), timeout=give_up - now))
        copy = self.copies[task] = Copy(self, req["id"], sent)
        c._waiting.add(copy)
        task.add_done_callback(lambda _t: self._ended(copy))
        self.current = task
        return None

    def _ended(self, copy: Copy) -> None:
        self.c._waiting.discard(copy)
        if copy.sent is not None:
            self.c.seen.done(*copy.sent)

    def _answer(self, task: asyncio.Task, quiet: bool = False):
        """The job's result in the reply `task` got; None: send again
        (refused busy or closing; with `quiet`, anything but a result)."""
        kind, submitted = self.kind, self.submitted
        if task.cancelled() or task.exception() is not None:
            return None                 # only an earlier copy's (the current one's are handled above)
        try:
            reply = read_reply(task.result().data)
            self.c.seen.heard(reply.get("load"))
            refused = reply.get("refused")
            if refused is None:
                candidates = len(self.req["candidates"]) if kind == "score" else 0
                result = result_of(reply, kind, candidates)
                self.c.seen.count(reply["worker"])
                return adjusted(result, submitted)
        except BadAnswer as exc:
            return None if quiet else failed(kind, Status.ERROR, f"bad reply from a worker: {exc}", submitted)
        if quiet or refused["code"] in RETRY_CODES:
            return None
        return failed(kind, Status.ERROR, f"{refused['code']}: {refused['message']}", submitted)

    def _failure(self, exc: BaseException, deadline: float | None):
        import nats.errors
        kind, submitted = self.kind, self.submitted
        if _no_responders(exc):
            return failed(kind, Status.ERROR, f"{UNREACHABLE}no engine worker listens on {self.c.subject}", submitted)
        if isinstance(exc, nats.errors.TimeoutError):
            if deadline is not None and time.monotonic() >= deadline:
                return failed(kind, Status.DEADLINE, "deadline passed (no reply from the worker)", submitted)
            return failed(kind, Status.ERROR, f"no reply from a worker within {self.c.timeout_s:g} s", submitted)
        if isinstance(exc, nats.errors.MaxPayloadError):     # this NATS takes less than MAX_MESSAGE
            return failed(kind, Status.ERROR, f"too_large: {exc}", submitted)
        if isinstance(exc, nats.errors.Error):       # connection closed, draining, its buffer full...
            return failed(kind, Status.ERROR, f"{UNREACHABLE}{type(exc).__name__}: {exc}", submitted)
        raise exc                   # a bug: the client fails the job with its name

    def _drop(self) -> None:
        """The job has its answer (or was cancelled): stop every copy still out."""
        for task, copy in self.copies.items():
            task.cancel()               # its reply, if one comes, goes nowhere
            self.c._cancel_at_worker(copy.id)
        self.copies.clear()


def adjusted(result, submitted: float):
    """The worker's result with latencies from this client's submit (the
    worker measured from its own arrival: add the time before and in transit)."""
    now = time.monotonic()
    if isinstance(result, GenerationResult) and result.ttft_s is not None and result.latency_s is not None:
        result.ttft_s = max(0.0, (now - submitted) - (result.latency_s - result.ttft_s))
    result.latency_s = now - submitted
    return result


def _no_responders(exc: BaseException) -> bool:
    import nats.errors
    return isinstance(exc, nats.errors.NoRespondersError)


def _timeout() -> type:
    import nats.errors
    return nats.errors.TimeoutError
