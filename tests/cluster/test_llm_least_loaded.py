"""`NatsLLM` sends each request to the least-loaded engine worker it has
heard of (nats_load.py), falling back to the NATS queue group: the table's
choice as a pure unit (times passed in, no NATS), then real nats-servers on
free ports of 127.0.0.1 with `LLMWorker`s in this process, each over its own
engine of the real embedded model (capacity 12: max_batch 4 + max_queue 8;
the two engines are made once for the file, a few seconds each)."""
from __future__ import annotations

import asyncio
import contextlib
import random
import time

import msgpack
import pytest

from agents.inference.nats_llm import NatsLLM
from agents.inference.nats_load import FORGET_AFTER_S, MAX_NOTE_BYTES, WorkerTable, note, read_note
from agents.inference.nats_worker import LLMWorker

WORLD = "w"


def _table(**kw) -> WorkerTable:
    return WorkerTable(WORLD, rng=random.Random(7), **kw)


def _picks(table: WorkerTable, n: int, now: float = 0.0) -> list[str | None]:
    out = []
    for _ in range(n):
        sent = table.pick(now)
        out.append(None if sent is None else sent[0].id)
    return out


# -- the table, as a pure unit --------------------------------------------------------
def test_the_least_loaded_worker_with_room_is_picked_counting_this_clients_sends():
    t = _table()
    assert t.pick(0.0) is None                       # none known: the queue group
    t.heard(note("a", "engine-a", 3, 4), 0.0)
    t.heard(note("b", "engine-b", 0, 4), 0.0)
    t.heard(note("c", "engine-c", 4, 4), 0.0)        # full: never picked
    t.heard(note("g", "gpu", 40, 80), 0.0)           # half full: a share, not a count, is its load
    assert _picks(t, 2) == ["b", "b"]                # b at 2/4, g at 40/80: a tie
    tie = _picks(t, 8)
    assert sorted(tie[:2]) == ["b", "g"] and set(tie) == {"b", "g"}
    assert t.known(0.0)["b"]["sent_since"] == 3 and t.known(0.0)["b"]["outstanding"] == 3
    t.heard(note("b", "engine-b", 1, 4), 0.1)        # b's news counts what it got: sends since reset
    assert t.known(0.1)["b"] == {"worker": "engine-b", "jobs": 1, "capacity": 4, "sent_since": 0,
                                 "outstanding": 3, "heard_s_ago": 0.0}
    sent = t.pick(0.1)
    assert sent is not None and sent[0].id == "b"
    t.done(*sent)                                    # answered before b's next note: no longer counted
    assert t.known(0.1)["b"]["sent_since"] == 0 and t.known(0.1)["b"]["outstanding"] == 3
    # Full everywhere: the queue group (its workers answer busy, or an older one serves).
    t = _table()
    t.heard(note("a", "engine-a", 1, 2), 0.0)
    assert _picks(t, 2) == ["a", None]


def test_workers_are_forgotten_on_goodbye_no_responders_or_silence_and_the_table_is_bounded():
    t = _table(max_known=3)
    for wid in "abc":
        t.heard(note(wid, f"engine-{wid}", 0, 4), 0.0)
    t.heard(note("d", "engine-d", 0, 4), 0.5)        # full table of live workers: d goes unknown
    assert set(t.known(0.5)) == {"a", "b", "c"}
    t.heard(note("a", "engine-a", 0, 4, bye=True), 0.6)
    t.forget("b")                                    # a direct request found no responders
    t.forget("nobody")
    assert set(t.known(0.6)) == {"c"} and t.lost == 1
    t.heard(note("c", "engine-c", 0, 4), 1.0)
    assert set(t.known(1.0 + FORGET_AFTER_S)) == {"c"}                # heard 1.5 s ago: still there
    assert t.known(1.01 + FORGET_AFTER_S) == {} and t.pick(1.01 + FORGET_AFTER_S) is None
    for i in range(3):
        t.heard(note(f"n{i}", "engine", 0, 4), 5.0)
    t.heard(note("late", "engine", 0, 4), 5.0 + 2 * FORGET_AFTER_S)  # the silent ones make room
    assert set(t.known(5.0 + 2 * FORGET_AFTER_S)) == {"late"}
    sent = t.pick(10.0)                               # a request out when its worker is forgotten
    assert sent is None
    t.heard(note("x", "engine-x", 0, 4), 10.0)
    sent = t.pick(10.0)
    t.forget("x")
    t.done(*sent)                                    # harmless
    for i in range(300):
        t.count(f"name-{i}")
    assert len(t.served) == 256 and t.served["name-0"] == 1


def test_the_table_tells_of_workers_lost_by_silence_or_no_responders_but_not_of_a_goodbye():
    told: list[list[str]] = []
    t = _table(on_lost=told.append)
    for wid in "abcd":
        t.heard(note(wid, f"engine-{wid}", 0, 4), 0.0)
    t.heard(note("a", "engine-a", 0, 4, bye=True), 0.1)   # a clean stop: it finishes what it holds
    t.forget("b")                                        # no responders: dead
    t.forget("b")                                        # told once
    t.heard(note("c", "engine-c", 0, 4), 1.0)
    t.expire(FORGET_AFTER_S + 0.5)                       # d silent: dead; c heard since
    assert told == [["b"], ["d"]]
    assert t.pick(1.01 + FORGET_AFTER_S) is None and told == [["b"], ["d"], ["c"]]   # found on a pick too


def test_a_malformed_load_note_is_ignored_and_changes_nothing():
    t = _table()
    t.heard(note("a", "engine-a", 1, 4), 0.0)
    before = t.known(0.0)
    good = note("b", "engine-b", 0, 4)
    bad_maps = [None, [1, 2], "note", {**good, "v": 2}, {**good, "id": "a.b"}, {**good, "id": "*"},
                {**good, "id": ""}, {**good, "id": "x" * 33}, {**good, "worker": ""}, {**good, "worker": "n" * 65},
                {**good, "worker": 3}, {**good, "jobs": -1}, {**good, "jobs": True}, {**good, "jobs": 1.5},
                {**good, "capacity": 0}, {**good, "capacity": "4"}, {**good, "capacity": 1 << 21},
                {**good, "bye": "yes"}, {k: v for k, v in good.items() if k != "jobs"},
                {**good, "id": "a", "jobs": -3}, {**good, "id": "a", "bye": 1}]
    for bad in bad_maps:
        t.heard(bad, 0.2)
        assert read_note(msgpack.packb(bad)) is None, bad
    for data in (b"", b"\xc1", b"\x92\x01", msgpack.packb({**good, "pad": "x" * MAX_NOTE_BYTES}), "text"):
        assert read_note(data) is None
    assert t.known(0.2) == {**before, "a": {**before["a"], "heard_s_ago": 0.2}}
    assert _picks(t, 1, 0.2) == ["a"]
    assert read_note(msgpack.packb(good)) == good


# -- real NATS, real engines -------------------------------------------------------------
@contextlib.asynccontextmanager
async def _worker(url: str, name: str, llm, worker_cls=LLMWorker):
    w = worker_cls(llm, url, WORLD, name=name)
    try:
        await w.start()
        yield w
    finally:
        if not w.nc or not w.nc.is_closed:
            await w.stop(drain_s=2)


async def _until(pred, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def client(nats_server):
    llm = NatsLLM(nats_server.url, WORLD)
    yield llm
    llm.close()


@pytest.mark.model
async def test_new_requests_go_to_the_less_loaded_worker(nats_server, client, engines):
    async with _worker(nats_server.url, "engine-a", engines[0]) as a:
        await _until(lambda: a.id in client.seen.known())
        # Three long generations hold a (3 of its 12 places) for the rest of the test.
        long = [client.generate(f"Count to a thousand: 1, 2, 3, {i},", max_new_tokens=1500, deadline_s=60)
                for i in range(3)]
        await _until(lambda: len(a.jobs) == 3)
        async with _worker(nats_server.url, "engine-b", engines[1]) as b:
            await _until(lambda: b.id in client.seen.known() and client.seen.known().get(a.id, {}).get("jobs") == 3)
            before = dict(a.counts)
            results = []
            for wave in range(3):        # two at a time: b stays below a (3 of 12) even counting both
                results += await asyncio.gather(*(client.score(f"Q{wave}.{i}: is the sky blue?", [" yes", " no"])
                                                  for i in range(2)))
            assert all(r.ok and len(r.logprobs) == 2 for r in results), [(r.status, r.error) for r in results]
            # Random choice (the queue group) would have sent each to a with odds 1/2.
            assert b.counts["served"] == 6 and a.counts == before and before["served"] == 0
            assert len(a.jobs) == 3 and not any(h.done() for h in long)
            assert client.workers == {"engine-b": 6}
            for h in long:
                h.cancel()
            done = await asyncio.gather(*long)
            assert [r.status for r in done] == ["cancelled"] * 3
            await _until(lambda: not a.jobs)
        # b said goodbye as it stopped: forgotten at once, not 1.5 s later.
        await _until(lambda: b.id not in client.seen.known(), timeout=FORGET_AFTER_S / 2)


@pytest.mark.model
async def test_requests_to_a_worker_that_died_go_to_another_and_none_is_lost(nats_server, client, engines):
    async with _worker(nats_server.url, "engine-a", engines[0]) as a, \
            _worker(nats_server.url, "engine-b", engines[1]) as b:
        await _until(lambda: {a.id, b.id} <= set(client.seen.known()))
        a._announcer.cancel()            # a dies: no goodbye, its subscriptions gone with its connection
        await a.nc.close()
        await asyncio.sleep(0.2)         # nats-server has dropped a's interest (a kill -9 is the same)
        assert a.id in client.seen.known()              # still believed alive (not 1.5 s yet)
        # Both idle: picks alternate between them, so half are sent to dead a first
        # (b alone holds all six, so none is refused busy).
        results = await asyncio.gather(*(client.score(f"Q{i}: is the sky blue?", [" yes", " no"]) for i in range(6)))
        assert all(r.ok for r in results), [(r.status, r.error) for r in results]
        assert b.counts["served"] == 6 and a.counts["served"] == 0
        assert set(client.seen.known()) == {b.id} and client.seen.lost == 1   # forgotten at its first no-responders


class _OlderWorker(LLMWorker):
    """A worker of the version before load notes: the queue group only."""

    async def start(self) -> None:
        import nats
        self.nc = await nats.connect(self.nats_url, connect_timeout=2, max_reconnect_attempts=0)
        await self.nc.subscribe(self.subject, queue="engines", cb=self._on_request)
        await self.nc.flush()

    def load(self) -> dict:
        return {}                        # no note in its replies either


@pytest.mark.model
async def test_a_worker_that_never_announces_is_reached_through_the_queue_group(nats_server, nats_connect, client,
                                                                                 engines):
    nc = await nats_connect()
    loads = "hamlet.w.llm.load"
    async with _worker(nats_server.url, "engine-old", engines[0], _OlderWorker) as old:
        for bad in (b"\xc1", b"x" * 4096, msgpack.packb({**note("z", "fake", 0, 4), "capacity": -1})):
            await nc.publish(loads, bad)            # ignored
        await nc.publish(loads, msgpack.packb(note("ghost", "ghost", 0, 4)))   # well formed, nobody behind it
        await nc.flush()
        await _until(lambda: set(client.seen.known()) == {"ghost"})
        results = await asyncio.gather(*(client.score(f"Q{i}: is the sky blue?", [" yes", " no"]) for i in range(3)))
        assert all(r.ok for r in results) and old.counts["served"] == 3, [(r.status, r.error) for r in results]
        assert client.seen.known() == {} and client.seen.lost == 1        # ghost: no responders
        assert client.workers == {"engine-old": 3}
