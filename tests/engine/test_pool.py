"""`EnginePool` over `hamlet llm-serve` instances on 127.0.0.1 (real sockets,
the real embedded model): least-loaded spreading, failover from a dead
engine, all engines dead, and `load_llm` with a list of URLs."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

from agents.inference import Priority, client_for, load_llm
from agents.inference.pool import EnginePool
from agents.inference.remote import RemoteLLM, is_unreachable
from agents.inference.serve import LLMServer


class Counting:
    """The served model, counting the jobs this one server was given."""

    def __init__(self, llm):
        self.llm, self.jobs = llm, 0

    def generate(self, *a, **kw):
        self.jobs += 1
        return self.llm.generate(*a, **kw)

    def score(self, *a, **kw):
        self.jobs += 1
        return self.llm.score(*a, **kw)

    def __getattr__(self, name):
        return getattr(self.llm, name)


def dead_url() -> str:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def engines(loaded):
    """Two llm-serve instances over one engine (so their answers are alike)."""
    local = client_for(loaded, runner="thread", max_batch=8, max_queue=32)
    served = [Counting(local), Counting(local)]
    servers = [LLMServer(c, host="127.0.0.1", port=0, model_name="embedded") for c in served]
    urls = [f"http://{h}:{p}" for h, p in [await s.start() for s in servers]]
    yield urls, served, servers
    for s in servers:
        await s.close()
    local.close()


@pytest.mark.model
async def test_jobs_spread_over_engines_least_loaded_first(engines):
    urls, served, _ = engines
    pool = EnginePool(urls, timeout_s=30)
    try:
        # A long job holds engine 0; jobs submitted one at a time meanwhile go to engine 1.
        long = pool.generate("Once upon a time, in a small village,", max_new_tokens=2000)
        for i in range(3):
            assert (await pool.generate(f"Fact {i}: the sky is", max_new_tokens=1)).status == "ok"
        assert not long.done() and served[0].jobs == 1 and served[1].jobs == 3
        long.cancel()
        assert (await long).status == "cancelled"
        # Many in flight at once: each engine gets half.
        handles = [pool.generate(f"Story {i}: once upon a time", max_new_tokens=2) for i in range(6)]
        handles += [pool.score("The sky is", [" blue", " green"], priority=Priority.PLANNING) for _ in range(2)]
        assert {h.result().status for h in [await asyncio.wait_for(_done(h), 60) for h in handles]} == {"ok"}
        assert served[0].jobs - 1 == 4 and served[1].jobs - 3 == 4
        info = await asyncio.to_thread(pool.info)       # info() asks a server; this loop runs them
        assert info["name"] == "embedded" and info["runner"] == "remote"
        figures = info["engines"]
        assert [f["done"] for f in figures] == [4, 7] and [f["outstanding"] for f in figures] == [0, 0]
        assert [f["failures"] for f in figures] == [0, 0] and all(f["down_for_s"] == 0 for f in figures)
    finally:
        await asyncio.to_thread(pool.close)


@pytest.mark.model
async def test_a_dead_engine_is_rested_and_its_jobs_go_to_the_others(engines):
    urls, served, _ = engines
    dead = dead_url()
    pool = EnginePool([dead, urls[0]], timeout_s=30, down_s=30)
    try:
        handles = [pool.generate(f"Story {i}: once upon a time", max_new_tokens=2) for i in range(3)]
        handles += [pool.score("The sky is", [" blue", " green"])]
        results = [await h for h in handles]
        assert [r.status for r in results] == ["ok"] * 4
        assert served[0].jobs == 4 and served[1].jobs == 0
        # what the minds count and compare comes through the pool: token counts, per-token scores
        assert [r.tokens for r in results[:3]] == [2, 2, 2]
        scored = results[3]
        assert [len(t) for t in scored.token_logprobs] == [1, 1]
        assert [t[0] for t in scored.token_logprobs] == pytest.approx(scored.logprobs)
        dead_fig, live_fig = pool.figures()
        assert dead_fig["url"] == dead and dead_fig["done"] == 0 and dead_fig["unreachable"] >= 1
        assert dead_fig["down_for_s"] > 20 and "unreachable" in dead_fig["last_error"]
        assert live_fig["done"] == 4
        tried = dead_fig["unreachable"]
        # Resting: later jobs go straight to the live engine.
        assert (await pool.generate("Hello", max_new_tokens=2)).status == "ok"
        assert pool.figures()[0]["unreachable"] == tried
    finally:
        await asyncio.to_thread(pool.close)


@pytest.mark.model
async def test_a_job_that_streamed_text_is_not_sent_elsewhere(engines):
    urls, served, servers = engines
    pool = EnginePool(urls, timeout_s=30)
    try:
        h = pool.generate("Once upon a time, in a small village,", max_new_tokens=200)
        stream = h.stream().__aiter__()
        first = await asyncio.wait_for(stream.__anext__(), 30)
        await servers[0].close()                # engine 0 dies mid-stream
        r = await asyncio.wait_for(_done(h), 30)
        assert first and h.text_so_far.startswith(first)
        assert r.result().status == "error" and is_unreachable(r.result())
        assert served[1].jobs == 0              # not resent: its first words are the caller's already
        assert pool.figures()[0]["unreachable"] == 1
    finally:
        await asyncio.to_thread(pool.close)


async def test_all_engines_dead_fail_fast_then_probe_with_bounded_backoff():
    a, b = dead_url(), dead_url()
    pool = EnginePool([a, b], down_s=0.2, max_down_s=0.5, connect_timeout_s=1)
    try:
        t0 = time.monotonic()
        r = await pool.generate("hello", max_new_tokens=2)
        assert r.status == "error" and is_unreachable(r)          # tried both, then gave up
        assert [f["unreachable"] for f in pool.figures()] == [1, 1]
        h = pool.score("hello", [" a", " b"])
        assert h.done(), "with every engine resting, a job fails at once"
        err = h.result().error
        assert h.result().status == "error" and "all 2 engines are unreachable" in err and a in err and b in err
        assert time.monotonic() - t0 < 2
        # After the rest, each engine is tried again and rests twice as long, at most max_down_s.
        for rest in (0.4, 0.5, 0.5):
            await asyncio.sleep(0.55)
            assert (await pool.generate("hello", max_new_tokens=2)).status == "error"
            downs = [f["down_for_s"] for f in pool.figures()]
            assert all(rest - 0.15 < d <= rest for d in downs), downs
    finally:
        pool.close()


def test_load_llm_takes_a_comma_separated_list_and_names_a_bad_entry():
    one, two = dead_url(), dead_url()
    pool = load_llm(f"{one}, {two}/v1")
    single = load_llm(one)
    try:
        assert isinstance(pool, EnginePool) and pool.runs_in == "remote"
        assert [e.llm.base_url for e in pool.engines] == [one, f"{two}/v1"]
        assert isinstance(single, RemoteLLM)
    finally:
        pool.close()
        single.close()
    for bad, named in [(f"{one},ftp://x:1", "'ftp://x:1'"), (f"{one},", "''"), (f"{one},{two}:80x", "80x"),
                       (f"{one},{one}", "twice")]:
        with pytest.raises(ValueError, match=named):
            load_llm(bad)
    from server.config import load_config
    with pytest.raises(ValueError, match="'https://x:1'"):
        load_config(env={}, overrides={"model": f"{one},https://x:1"})


async def _done(handle):
    await handle
    return handle
