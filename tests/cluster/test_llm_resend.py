"""`NatsLLM` resends a job whose engine worker died while holding it
(nats_send.py): noticed when the worker falls silent (FORGET_AFTER_S) or
when another request finds no responders there; the first answer of any
copy wins, a cancelled job is not resent, and the deadline holds. Real
nats-servers on free ports of 127.0.0.1, `LLMWorker`s in this process over
two engines of the real embedded model (made once for the file)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from agents.inference.nats_llm import NatsLLM
from agents.inference.nats_load import FORGET_AFTER_S
from agents.inference.nats_wire import cancel_subject, pack, unpack
from agents.inference.nats_worker import LLMWorker

pytestmark = pytest.mark.model
WORLD = "w"
PROMPT, KW = "The capital of France is", dict(max_new_tokens=8, deadline_s=20.0)
# A dead worker is noticed FORGET_AFTER_S after its last note (up to ANNOUNCE_S
# before it died) plus the client's WATCH_S; then an 8-token answer elsewhere
# (a fraction of a second, more on two busy shared cores): far below KW's deadline.
NOTICED_S = FORGET_AFTER_S + 5.0


class _Worker(LLMWorker):
    """A worker that records what it is sent and hears, and can fall silent
    (no more notes: as dead to its clients) and hold its replies."""

    def __init__(self, *a, announce: bool = True, **kw):
        super().__init__(*a, **kw)
        self.announcing, self.holding = announce, False
        self.requests: list[tuple[float, dict]] = []     # (when, request)
        self.stops: list[str] = []             # ids in the cancels heard
        self.held: list = []

    def silence(self) -> None:
        self.announcing = False

    async def release(self) -> None:
        self.holding = False
        for msg, reply in self.held:
            await super()._reply(msg, reply)

    def load(self) -> dict:
        return super().load() if self.announcing else {}

    async def _publish_load(self) -> None:
        if self.announcing:
            await super()._publish_load()

    async def _take(self, msg) -> None:
        self.requests.append((time.monotonic(), unpack(msg.data)))
        await super()._take(msg)

    async def _reply(self, msg, reply: dict) -> None:
        if self.holding:
            self.held.append((msg, reply))
        else:
            await super()._reply(msg, reply)

    async def _on_cancel(self, msg) -> None:
        self.stops.append(unpack(msg.data)["id"])
        await super()._on_cancel(msg)


@pytest.fixture
def client(nats_server):
    llm = NatsLLM(nats_server.url, WORLD)
    yield llm
    llm.close()


@contextlib.asynccontextmanager
async def _worker(url: str, name: str, llm, **kw):
    w = _Worker(llm, url, WORLD, name=name, **kw)
    try:
        await w.start()
        yield w
    finally:
        w.announcing = True
        if not w.nc.is_closed:
            await w.stop(drain_s=2)
        for handle in list(w.jobs.values()):   # a killed worker's engine would go on with them
            handle.cancel()


async def _kill(w: _Worker) -> None:
    """As kill -9: no goodbye, no more notes or replies (it held them), its
    subscriptions gone, its engine's jobs stopped."""
    w._announcer.cancel()
    await w.nc.close()
    for handle in list(w.jobs.values()):
        handle.cancel()


async def _until(pred, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _held_by_a(client, url, engines, jobs=((PROMPT, KW),)):
    """Start engine-a, send it `jobs` (prompt, keywords), then start engine-b:
    a holds them all (its engine may finish one, but a holds its replies)."""
    stack = contextlib.AsyncExitStack()
    try:
        a = await stack.enter_async_context(_worker(url, "engine-a", engines[0]))
        a.holding = True
        await _until(lambda: a.id in client.seen.known())
        handles = [client.generate(prompt, **kw) for prompt, kw in jobs]
        await _until(lambda: len(a.requests) == len(jobs))
        b = await stack.enter_async_context(_worker(url, "engine-b", engines[1]))
        await _until(lambda: b.id in client.seen.known())
    except BaseException:
        await stack.aclose()
        raise
    return stack, a, b, handles


async def test_a_job_held_by_a_killed_worker_completes_on_the_other_well_before_its_deadline(
        nats_server, client, engines):
    stack, a, b, (h,) = await _held_by_a(client, nats_server.url, engines)
    async with stack:
        submitted = a.requests[0][0]
        await _kill(a)
        result = await asyncio.wait_for(h, NOTICED_S)          # not its deadline, 20 s away
        want = await engines[1].generate(PROMPT, **KW)
        assert result.ok and result.text == want.text and result.token_ids == want.token_ids, result
        assert client.workers == {"engine-b": 1} and b.counts["served"] == 1
        ((took, sent),) = b.requests
        first = a.requests[0][1]["id"]
        assert sent["id"] == f"{first}-r1"                     # its own id: a cancel of a's copy spares it
        assert sent["deadline_s"] == pytest.approx(KW["deadline_s"] - (took - submitted), abs=0.2)
        assert a.id not in client.seen.known() and client.seen.lost == 0     # forgotten by silence


async def test_a_cancelled_job_is_not_resent_and_a_resent_one_is_cancelled_where_it_went(
        nats_server, nats_connect, client, engines):
    jobs = ((PROMPT, KW), ("Once upon a time", KW),
            ("Count to a thousand: 1, 2, 3,", {**KW, "max_new_tokens": 1500}))
    stack, a, b, (kept, dropped, long) = await _held_by_a(client, nats_server.url, engines, jobs)
    async with stack:
        ids = [req["id"] for _, req in a.requests]
        await _kill(a)
        dropped.cancel()                 # before its worker's death is noticed
        assert (await dropped).status == "cancelled"
        assert (await asyncio.wait_for(kept, NOTICED_S)).ok
        await _until(lambda: ids[2] + "-r1" in b.jobs)
        nc = await nats_connect()
        await nc.publish(cancel_subject(WORLD), pack({"v": 1, "id": ids[2]}))   # meant for a's copy
        await nc.flush()
        await asyncio.sleep(0.3)
        assert ids[2] + "-r1" in b.jobs and not long.done()     # the resend goes on
        long.cancel()
        assert (await long).status == "cancelled"
        await _until(lambda: not b.jobs)                       # the cancel reached b's copy
        await asyncio.sleep(FORGET_AFTER_S)
        assert sorted(req["id"] for _, req in b.requests) == [ids[0] + "-r1", ids[2] + "-r1"]


async def test_a_late_answer_from_the_first_worker_changes_nothing(nats_server, client, engines, caplog):
    caplog.set_level(logging.WARNING)
    stack, a, b, (h,) = await _held_by_a(client, nats_server.url, engines)
    async with stack:
        a.silence()                      # only slow: it still holds the job, and answers late
        result = await asyncio.wait_for(h, NOTICED_S)
        assert result.ok and client.workers == {"engine-b": 1}
        await _until(lambda: a.requests[0][1]["id"] in a.stops)   # the copy left is told to stop
        await _until(lambda: len(a.held) == 1)
        await a.release()                # its answer reaches a cancelled request: dropped
        await asyncio.sleep(0.3)
        assert h.result() is result and client.workers == {"engine-b": 1} and len(b.requests) == 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_first_answer_wins_when_the_dead_worker_was_only_slow(nats_server, client, engines):
    stack, a, b, (h,) = await _held_by_a(client, nats_server.url, engines)
    async with stack:
        first = a.requests[0][1]["id"]
        a.silence()
        b.holding = True
        await _until(lambda: len(b.requests) == 1, NOTICED_S)  # resent to b, which holds its answer
        await _until(lambda: len(a.held) == 1)
        await a.release()                # a answers first after all: its answer wins
        result = await asyncio.wait_for(h, 2)
        assert result.ok and client.workers == {"engine-a": 1}
        await _until(lambda: f"{first}-r1" in b.stops)       # b's copy is told to stop
        await _until(lambda: len(b.held) == 1)
        await b.release()
        await asyncio.sleep(0.3)
        assert h.result() is result and client.workers == {"engine-a": 1}


async def test_no_responders_at_a_dead_worker_resends_the_jobs_it_held_at_once(nats_server, client, engines):
    client.seen.forget_after_s = 60.0    # only no responders can tell this client that a died
    async with _worker(nats_server.url, "engine-a", engines[0]) as a, \
            _worker(nats_server.url, "engine-old", engines[1], announce=False) as old:   # the queue group only
        await _until(lambda: a.id in client.seen.known())
        a.holding = True
        held = client.generate(PROMPT, **KW)
        await _until(lambda: len(a.requests) == 1)
        await _kill(a)
        await asyncio.sleep(0.2)         # nats-server has dropped a's interest
        started = time.monotonic()
        fresh = client.score("Is the sky blue?", [" yes", " no"])    # to a, still known: no responders
        results = await asyncio.wait_for(asyncio.gather(held, fresh), 10)
        assert all(r.ok for r in results) and time.monotonic() - started < 5, results
        assert client.seen.lost == 1 and old.counts["served"] == 2
        assert a.requests[0][1]["id"] + "-r1" in [req["id"] for _, req in old.requests]
