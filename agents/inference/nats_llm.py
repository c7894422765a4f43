"""`NatsLLM`: the `LLM` interface over a world's engine workers on NATS
(`hamlet llm-worker`, nats_worker.py), selected by a model string
`nats://host:port/<world>` (load_llm).

Owns: the client: its connection, its handles and their bound, hearing the
workers' load notes (nats_load.py keeps the table and chooses; a worker
silent for FORGET_AFTER_S is checked for a few times a second, so a dead
one is noticed while nothing new is sent), cancelling (a broadcast on
`hamlet.<world>.llm.cancel` that the worker holding the job acts on), and
an outstanding-job bound past which handles complete at once as
"overloaded". Each generate or score call is one `Trip` (nats_send.py: the
subjects and messages are nats_wire.py's): sent to the least-loaded worker
it knows of, on that worker's direct subject, or, while it knows of none
with room (at start, or all full), to the queue group on
`hamlet.<world>.llm` (NATS hands it to one worker); retried when refused
as busy or closing; sent again, without counting a try, when its worker
dies (no responders on the direct subject, or the worker is forgotten by
silence or by another request's no responders while it holds the job: at
most MAX_RESENDS times, the first answer of any copy wins); its deadline
holds across all of it (else DEFAULT_TIMEOUT_S). A worker that says
goodbye is not a loss: it finishes what it holds. Nothing raises into the
caller's tick: no responders on the queue group, a timeout, a lost
connection or a bad reply completes the handle as failed (no responders and
a lost connection with remote_exchange.py's UNREACHABLE prefix, as `is_unreachable`
reads it). Requests run on a private event loop in a daemon thread, as
RemoteLLM's do, with the same handles (handle.py).

Priorities: requests leave in the order they were sent, each to the worker
using the smallest share of its capacity (announced jobs plus this client's
sends since; ties at random); one that never announces (an older version)
is reached through the queue group only, at random. Each worker's engine
orders its queue by priority (a reply to a person first, with its reserved
batch rows), so priority holds within a worker, not across workers. A
generation's text arrives whole with its result (no streaming over NATS).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from .api import GenerationResult, RunsIn, ScoreResult, Status
from .handle import JobHandle
from .jobs import failed, next_job_id
from .nats_load import ANNOUNCE_S, NOTES_PENDING, WorkerTable, read_note
from .nats_log import connection_callbacks
from .nats_send import BUSY_BACKOFF_S, BUSY_RETRIES, DEFAULT_TIMEOUT_S, REPLY_GRACE_S, Trip, Waiting
from .nats_wire import (MAX_MESSAGE, VERSION, RequestError, cancel_subject, check_request, llm_subject,
                        load_subject, pack, read_reply, request)
from .remote import Finish, RemoteLLM, launch_on
from .replies import BadAnswer

# The timeouts and tries live with the sends (nats_send.py); still importable from here.
__all__ = ["NatsLLM", "DEFAULT_TIMEOUT_S", "REPLY_GRACE_S", "BUSY_RETRIES", "BUSY_BACKOFF_S", "CONNECT_WAIT_S",
           "INFO_TIMEOUT_S", "WATCH_S"]
log = logging.getLogger(__name__)
# How long the constructor waits for the first connection (it goes on
# trying after that; calls fail as unreachable until it is connected).
CONNECT_WAIT_S = 5.0
INFO_TIMEOUT_S = 3.0           # info() blocks at most this long (asked once)
# How often the client looks for workers gone silent while it waits on
# them: a dead worker's jobs are resent within FORGET_AFTER_S + this of its
# last note (a dict scan under a lock: nothing, 4 times a second).
WATCH_S = ANNOUNCE_S / 2


class NatsLLM:
    runs_in: RunsIn = "remote"

    def __init__(self, nats_url: str, world: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 busy_retries: int = BUSY_RETRIES, backoff_s: float = BUSY_BACKOFF_S,
                 max_outstanding: int = 256, connect_wait_s: float = CONNECT_WAIT_S, registry=None,
                 tokenizer=None):
        # max_outstanding 256 mirrors RemoteLLM's (one engine's queue).
        self.nats_url, self.world = nats_url, world
        self.subject, self.cancels, self.loads = llm_subject(world), cancel_subject(world), load_subject(world)
        self.timeout_s, self.busy_retries, self.backoff_s = timeout_s, busy_retries, backoff_s
        self.max_outstanding = max_outstanding
        self.tokenizer = tokenizer
        self.client_id = uuid.uuid4().hex[:16]
        # The workers it can send to directly, and their load; one forgotten as dead has its jobs resent.
        self.seen = WorkerTable(world, on_lost=self._on_lost)
        self._waiting = Waiting()              # copies out per worker (this client's loop only)
        self.workers = self.seen.served        # results per worker name (bounded there)
        from .metrics import EngineMetrics
        self.metrics = EngineMetrics(registry)
        self._lock = threading.Lock()
        self._live: dict[int, tuple[JobHandle, Finish]] = {}   # bounded by max_outstanding
        self._tasks: set[asyncio.Task] = set()                 # one per job in _live (this loop's only)
        self._info: dict | None = None
        self._nc: Any = None
        self._watch: asyncio.Task | None = None
        self.closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hamlet-nats-llm", daemon=True)
        self._thread.start()
        self._connecting = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)
        try:
            self._connecting.result(timeout=connect_wait_s)
        except Exception:
            log.warning("no connection to NATS at %s yet; NPC jobs fail as unreachable until there is one",
                        nats_url)

    @classmethod
    def from_model(cls, model: str, **kw: Any) -> NatsLLM:
        """From a `nats://host:port/<world>` model string (nats_wire.nats_address)."""
        from .nats_wire import nats_address
        address = nats_address(model)
        if address is None:
            raise ValueError(f"{model!r} is not a nats:// URL")
        return cls(*address, **kw)

    # -- the LLM interface ---------------------------------------------------
    def generate(self, prompt: str, **kw: Any) -> JobHandle[GenerationResult]:
        """The keyword arguments of `LLM.generate`."""
        return self.submit("generate", prompt=prompt, **kw)

    def score(self, prompt: str, candidates: Sequence[str], **kw: Any) -> JobHandle[ScoreResult]:
        """The keyword arguments of `LLM.score`."""
        return self.submit("score", prompt=prompt, candidates=candidates, **kw)

    # ChatML, or `tokenizer`'s template when one is given: the same prompt RemoteLLM builds.
    chat_prompt = RemoteLLM.chat_prompt

    def info(self) -> dict:
        """What a worker says it serves (asked once, blocking up to
        INFO_TIMEOUT_S), and this client's figures."""
        with self._lock:
            mine = {"runner": "remote", "nats": self.nats_url, "subject": self.subject,
                    "outstanding": len(self._live), "workers": dict(self.workers), "known": self.seen.known()}
        if self._info is None and not self.closed:
            try:
                fut = asyncio.run_coroutine_threadsafe(self._ask_info(), self._loop)
                self._info = fut.result(timeout=INFO_TIMEOUT_S + 1)
            except Exception as exc:  # info is advisory; never fail a caller over it
                return {**mine, "error": str(exc) or type(exc).__name__}
        return {**(self._info or {}), **mine}

    def close(self) -> None:
        """Cancel what is in flight (its handles complete as "cancelled") and stop."""
        if self.closed:
            return
        self.closed = True

        async def shut() -> None:
            self._connecting.cancel()             # still trying, when NATS was never reached
            if self._watch is not None:
                self._watch.cancel()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._nc is not None:
                await self._nc.close()
        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=5)
        except Exception:
            pass              # a stuck connection: the handles are finished below
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        with self._lock:
            live, self._live = self._live, {}
        for handle, finish in live.values():
            finish(handle, failed(handle.kind, Status.CANCELLED, "the model was closed"))

    # -- requests --------------------------------------------------------------
    def submit(self, op: str, **kw: Any) -> JobHandle:
        """Start a generate or score call; the returned handle completes with its result."""
        box: list[Callable[[], object]] = []
        handle: JobHandle = JobHandle(next_job_id(), op, lambda _id: box and box[0]())
        box.append(self.request(op, kw, handle, JobHandle._finish))
        return handle

    def request(self, op: str, kw: dict, handle: JobHandle, finish: Finish,
                submitted: float | None = None) -> Callable[[], object]:
        """Send the call `op` with `LLM.generate`'s or `LLM.score`'s keyword
        arguments `kw`; its result goes to `finish(handle, result)` (from this
        client's thread, or before this returns when it is refused).
        Returns what cancels it."""
        submitted = submitted or time.monotonic()
        try:
            # Every field, defaults filled in; what a worker would refuse fails here, unsent.
            req = {"v": VERSION, **check_request(request(op, f"{self.client_id}-{handle.job_id}", **kw))}
        except (RequestError, TypeError) as exc:
            finish(handle, failed(op, Status.ERROR, f"bad_request: {exc}", submitted))
            return _nothing
        if len(pack(req)) > MAX_MESSAGE:
            finish(handle, failed(op, Status.ERROR, f"too_large: the request is over {MAX_MESSAGE} bytes", submitted))
            return _nothing
        with self._lock:
            full = self.closed or len(self._live) >= self.max_outstanding
            if not full:
                self._live[handle.job_id] = (handle, finish)
        if full:
            finish(handle, failed(op, Status.ERROR, "closed", submitted) if self.closed else
                   failed(op, Status.OVERLOADED, "too many outstanding NATS requests", submitted))
            return _nothing
        def start() -> asyncio.Task:
            task = self._loop.create_task(self._run(handle, finish, req, submitted))
            self._tasks.add(task)
            return task
        return launch_on(self._loop, start, lambda t: self._ended(t, handle, finish, req, submitted))

    async def _run(self, handle: JobHandle, finish: Finish, req: dict, submitted: float) -> None:
        kind = req["op"]
        try:
            result = await Trip(self, kind, req, submitted).run()
        except asyncio.CancelledError:      # the trip told the workers holding its copies
            result = failed(kind, Status.CANCELLED, None, submitted)
        except Exception as exc:    # a bug here must fail the job, not the caller's tick
            result = failed(kind, Status.ERROR, f"{type(exc).__name__}: {exc}", submitted)
        with self._lock:
            live = self._live.pop(handle.job_id, None)
        self.metrics.observe_result(req["priority"], result)
        if live is not None:        # else close() finished it
            if isinstance(result, GenerationResult) and result.ok:
                handle._push(result.text)
            finish(handle, result)

    def _ended(self, task: asyncio.Task, handle: JobHandle, finish: Finish, req: dict, submitted: float) -> None:
        """A task cancelled before it ran a line of `_run` finishes its handle here."""
        self._tasks.discard(task)
        with self._lock:
            live = self._live.pop(handle.job_id, None) if task.cancelled() else None
        if live is not None:
            finish(handle, failed(req["op"], Status.CANCELLED, None, submitted))

    def _on_lost(self, worker_ids: list[str]) -> None:
        """The table forgot these workers as dead (from any thread): resend what waits there."""
        try:
            self._loop.call_soon_threadsafe(self._waiting.lost, worker_ids)
        except RuntimeError:
            pass                  # the loop is closed: close() finished every handle

    async def _watch_silence(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            # Only while some job waits on a known worker, and connected: while
            # this client is cut off, not hearing from a worker says nothing of it.
            if self._waiting and self._nc is not None and self._nc.is_connected:
                self.seen.expire()

    def _cancel_at_worker(self, job: str) -> None:
        """Tell whichever worker holds `job` to stop it (best effort)."""
        nc = self._nc
        if nc is None or not nc.is_connected or self.closed:
            return

        async def send() -> None:
            try:
                await nc.publish(self.cancels, pack({"v": VERSION, "id": job}))
            except Exception:
                pass              # the worker finishes the job; its reply goes nowhere
        self._loop.create_task(send())

    async def _ask_info(self) -> dict:
        msg = await self._nc.request(self.subject, pack({"v": VERSION, "op": "info", "id": f"{self.client_id}-info"}),
                                     timeout=INFO_TIMEOUT_S)
        reply = read_reply(msg.data)
        if not isinstance(reply.get("info"), dict):
            raise BadAnswer("an info reply carries no info map")
        return {**reply["info"], "worker": reply["worker"]}

    async def _connect(self) -> None:
        import nats

        nc = await nats.connect(self.nats_url, name=f"hamlet-llm-{self.world}-{self.client_id}",
                                connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=1.0,
                                **connection_callbacks(log, self.nats_url))
        await nc.subscribe(self.loads, cb=self._on_load, pending_msgs_limit=NOTES_PENDING)
        self._nc = nc
        self._watch = asyncio.get_running_loop().create_task(self._watch_silence())

    async def _on_load(self, msg) -> None:
        self.seen.heard(read_note(msg.data))   # a malformed note is None: ignored


def _nothing() -> None:
    """The cancel of a request that never started."""
