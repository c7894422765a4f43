"""`hamlet llm-worker`: Hamlet's engine as one worker of a NATS queue group,
the other way (besides `hamlet llm-serve` URLs) to spread NPC inference
over several machines; `NatsLLM` (nats_llm.py) is its client.

Owns: the command, and `LLMWorker`: a subscription to `hamlet.<world>.llm`
in the queue group "engines" (NATS hands each request to one member) and
one to its own direct subject `hamlet.<world>.llm.w.<id>` (its unique id,
new each start), where clients send most requests once they know its load;
its load note (nats_load.py: jobs in hand, capacity, id) on
`hamlet.<world>.llm.load` every ANNOUNCE_S, in each reply, and as a goodbye
when it stops (clients then forget it at once); checking every request
(nats_wire.py: bounded sizes and fields; a bad one is answered with an
error code and the worker serves on), handing it to the engine and
replying with its result; an in-flight bound (the engine's
max_queue + max_batch: all it can hold) past which a request is answered
"busy" at once, so its requester tries again elsewhere; cancels heard on
`hamlet.<world>.llm.cancel`; and a clean stop (say goodbye, leave the group
and the direct subject, finish what it holds, close). A worker that dies
instead (no goodbye) falls silent, and its clients resend the jobs it held
elsewhere (nats_send.py; should it answer after all, the first answer wins).
Imports nothing heavy until it runs.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import uuid
from typing import Any

from .api import Status
from .nats_load import ANNOUNCE_S, note
from .nats_log import connection_callbacks
from .nats_wire import (BAD_REQUEST, BUSY, CLOSING, INTERNAL, MAX_ID_CHARS, QUEUE_GROUP, VERSION, RequestError,
                        call_kwargs, cancel_subject, check_request, direct_subject, error_reply, llm_subject,
                        load_subject, pack, result_reply, unpack)

log = logging.getLogger(__name__)
# Requests NATS holds for this worker before the callback takes them (it only
# checks and submits them, microseconds each): past this NATS drops them as
# to a slow consumer and their requesters time out.
PENDING_MSGS = 4096
PENDING_BYTES = 64 * 1024 * 1024   # 64 full-size requests; thousands of ordinary (~2 KB) ones
DRAIN_S = 10.0                     # on stop, jobs in hand get this long to finish (a line takes seconds)


class LLMWorker:
    def __init__(self, llm, nats_url: str, world: str, *, name: str | None = None, capacity: int | None = None,
                 announce_s: float = ANNOUNCE_S):
        from . import DEFAULT_LIMITS
        self.llm, self.nats_url, self.world = llm, nats_url, world
        self.subject, self.cancels, self.loads = llm_subject(world), cancel_subject(world), load_subject(world)
        self.id = uuid.uuid4().hex[:16]           # unique per start: a restarted worker is a new one
        self.direct = direct_subject(world, self.id)
        self.announce_s = announce_s
        self.name = (name or f"{socket.gethostname()}-{os.getpid()}")[:MAX_ID_CHARS]
        self.capacity = capacity or getattr(llm, "max_outstanding", None) or sum(DEFAULT_LIMITS.values())
        self.jobs: dict[str, Any] = {}            # request id -> handle; at most `capacity`
        self._tasks: set[asyncio.Task] = set()    # one per job in `jobs`
        self.counts = {"served": 0, "refused": 0, "busy": 0}
        self.closing = False
        self.nc: Any = None
        self._subs: list[Any] = []
        self._announcer: asyncio.Task | None = None

    async def start(self) -> None:
        import nats
        self.nc = await nats.connect(self.nats_url, name=f"hamlet-llm-worker-{self.name}", connect_timeout=2,
                                     max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                     **connection_callbacks(log, self.nats_url))
        for subject, queue in ((self.subject, QUEUE_GROUP), (self.direct, "")):
            self._subs.append(await self.nc.subscribe(subject, queue=queue, cb=self._on_request,
                                                      pending_msgs_limit=PENDING_MSGS,
                                                      pending_bytes_limit=PENDING_BYTES))
        await self.nc.subscribe(self.cancels, cb=self._on_cancel, pending_msgs_limit=PENDING_MSGS)
        await self.nc.flush()
        self._announcer = asyncio.create_task(self._announce())

    async def stop(self, drain_s: float = DRAIN_S) -> None:
        """Say goodbye, leave the group and the direct subject (requests go to
        the others), let the jobs in hand finish and answer (up to `drain_s`), then close."""
        self.closing = True
        if self._announcer is not None:
            self._announcer.cancel()
        await self._publish_load()            # with bye: clients forget this worker at once
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:
                pass              # the connection is gone already
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=drain_s)
        for handle in list(self.jobs.values()):
            handle.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self.nc is not None:
            await self.nc.close()

    def info(self) -> dict:
        plain = {k: v for k, v in self.llm.info().items() if isinstance(v, (str, int, float, bool, type(None)))}
        return {**plain, "worker": self.name, "id": self.id, "capacity": self.capacity, "in_flight": len(self.jobs),
                **self.counts}

    def load(self) -> dict:
        """This worker's load note (nats_load.py); a goodbye once it is stopping."""
        return note(self.id, self.name, len(self.jobs), self.capacity, bye=self.closing)

    async def _announce(self) -> None:
        while True:
            await self._publish_load()
            await asyncio.sleep(self.announce_s)

    async def _publish_load(self) -> None:
        try:
            await self.nc.publish(self.loads, pack(self.load()))
        except Exception:         # not connected: clients forget this worker, the queue group still reaches it
            pass

    # -- requests --------------------------------------------------------------
    async def _on_request(self, msg) -> None:
        try:
            await self._take(msg)
        except Exception as exc:  # a bug here answers this request, never stops the worker
            log.exception("request on %s", self.subject)
            await self._reply(msg, error_reply(INTERNAL, f"{type(exc).__name__}: {exc}", self.name))

    async def _take(self, msg) -> None:
        try:
            req = check_request(unpack(msg.data))
        except RequestError as exc:
            self.counts["refused"] += 1
            return await self._reply(msg, error_reply(exc.code, str(exc), self.name))
        if req["op"] == "info":
            return await self._reply(msg, {"v": VERSION, "worker": self.name, "info": self.info()})
        if self.closing:
            return await self._reply(msg, error_reply(CLOSING, "this worker is stopping", self.name))
        if len(self.jobs) >= self.capacity:
            self.counts["busy"] += 1
            return await self._reply(msg, error_reply(BUSY, f"{self.capacity} jobs in hand", self.name))
        if req["id"] in self.jobs:
            self.counts["refused"] += 1
            return await self._reply(msg, error_reply(BAD_REQUEST, f"job {req['id']!r} is in hand already",
                                                      self.name))
        kw = call_kwargs(req)
        if req["op"] == "generate":
            handle = self.llm.generate(req["prompt"], **kw)
        else:
            handle = self.llm.score(req["prompt"], req["candidates"], **kw)
        self.jobs[req["id"]] = handle
        task = asyncio.create_task(self._answer(msg, req["id"], handle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg, job: str, handle) -> None:
        try:
            result = await handle
        finally:
            self.jobs.pop(job, None)
        if result.status == Status.OVERLOADED:      # the engine's own bound: let another worker have it
            self.counts["busy"] += 1
            return await self._reply(msg, error_reply(BUSY, result.error or "engine queue is full", self.name))
        self.counts["served"] += 1
        await self._reply(msg, result_reply(result, self.name))

    async def _reply(self, msg, reply: dict) -> None:
        if not msg.reply:
            return                # published without an inbox: nobody to answer
        data = pack({**reply, "load": self.load()})
        if len(data) > self.nc.max_payload:
            data = pack(error_reply(INTERNAL, f"the reply of {len(data)} bytes is over NATS's max_payload",
                                    self.name))
        try:
            await self.nc.publish(msg.reply, data)
        except Exception as exc:  # the connection dropped: the requester times out
            log.warning("could not answer on %s: %s", msg.reply, exc)

    async def _on_cancel(self, msg) -> None:
        try:
            note = unpack(msg.data)
        except RequestError:
            return                # a broadcast: nobody to answer
        if isinstance(note, dict) and isinstance(note.get("id"), str):
            handle = self.jobs.get(note["id"])
            if handle is not None:
                handle.cancel()


# -- the command ------------------------------------------------------------------
def register(subparsers) -> None:
    p = subparsers.add_parser("llm-worker", help="serve the language model to a world as one worker of a NATS "
                              "queue group (NPCs reach it with --model nats://HOST:PORT/WORLD)")
    p.add_argument("--nats", required=True, help="NATS server URL, e.g. nats://127.0.0.1:4222")
    p.add_argument("--world", required=True, help="the world's name: the workers of one world share "
                   "hamlet.<world>.llm; its servers use --model nats://HOST:PORT/<world>")
    p.add_argument("--model", default="embedded",
                   help="embedded (default: SmolLM2-135M-Instruct), a local Hugging Face model folder or a hub id")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="auto", help="auto (bfloat16), float32, bfloat16, float16")
    p.add_argument("--runner", default="auto", help="auto, process, thread, cuda")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-queue", type=int, default=256,
                   help="jobs waiting in the engine; past it (and max-batch running) requests are answered busy")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: one per core)")
    p.add_argument("--int8-decode-rows", type=int, default=None,
                   help="CPU: decode steps of up to N rows use int8 weights (default: as load_llm; 0: exact)")
    p.add_argument("--name", default=None, help="this worker's name in replies and info (default host-pid)")
    p.set_defaults(func=run_llm_worker)


def run_llm_worker(args: argparse.Namespace) -> int:
    import signal

    from . import load_llm
    if "://" in args.model:
        print(f"hamlet llm-worker: --model {args.model!r}: a worker runs a model here "
              "(embedded, a folder or a hub id), not a URL", flush=True)
        return 2
    try:
        llm_subject(args.world)
    except ValueError as exc:
        print(f"hamlet llm-worker: {exc}", flush=True)
        return 2
    limits: dict[str, Any] = {"max_batch": args.max_batch, "max_queue": args.max_queue}
    if args.int8_decode_rows is not None:
        limits["int8_decode_rows"] = args.int8_decode_rows
    model = None if args.model == "embedded" else args.model
    llm = load_llm(model, device=args.device, dtype=args.dtype, runner=args.runner, threads=args.threads or None,
                   **limits)

    async def main() -> None:
        worker = LLMWorker(llm, args.nats, args.world, name=args.name)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.start()
        info = llm.info()
        print(f"hamlet llm-worker {worker.name}: {info.get('name')} ({info.get('device')}, {info.get('dtype')}) "
              f"serving {worker.subject} (queue {QUEUE_GROUP}) at {args.nats} as worker {worker.id}", flush=True)
        await stop.wait()
        await worker.stop()

    try:
        asyncio.run(main())
    finally:
        llm.close()
    return 0
