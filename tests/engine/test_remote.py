"""The remote backend against `hamlet llm-serve`, over real sockets on 127.0.0.1."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.inference import client_for
from agents.inference.remote import RemoteLLM
from agents.inference.serve import LLMServer

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def served(loaded):
    local = client_for(loaded, runner="thread", max_batch=4, max_queue=8)
    server = LLMServer(local, host="127.0.0.1", port=0)
    host, port = await server.start()
    remote = RemoteLLM(f"http://{host}:{port}", timeout_s=30, retries=1, backoff_s=0.05, max_concurrency=32)
    yield local, remote, server
    remote.close()
    await server.close()
    local.close()


async def test_remote_generate_stream_chat_and_score(served):
    local, remote, _ = served
    prompt = "Once upon a time, in a small village,"
    h = remote.generate(prompt, max_new_tokens=16)
    pieces = [p async for p in h.stream()]
    r = await h
    ref = await local.generate(prompt, max_new_tokens=16)
    assert r.status == "ok" and r.text == ref.text and "".join(pieces) == r.text
    assert r.finish_reason == "length" and r.ttft_s is not None
    chat = await remote.chat("You are a friendly baker.", [("user", "What do you sell?")], max_new_tokens=8)
    assert chat.status == "ok" and chat.text
    info = await asyncio.to_thread(remote.info)     # info() blocks; the server runs on this loop
    assert info["name"] == "embedded" and info["server"]["dtype"] == "float32"
    prompt = "Question: What is the color of the sky on a clear day?\nAnswer: The sky is"
    cands = [" blue.", " made of cheese and pickles."]
    got, want = await remote.score(prompt, cands), await local.score(prompt, cands)
    assert got.status == "ok" and got.best() == 0
    assert got.logprobs == pytest.approx(want.logprobs, abs=1e-2)


async def test_remote_sentence_limit_served_and_enforced_by_the_client(served):
    local, remote, server = served
    prompt = "Here is a short story about a baker. Once upon a time, there was a baker who"
    ref = await local.generate(prompt, max_new_tokens=40, sentences=1)
    assert ref.finish_reason == "stop"
    # llm-serve honours hamlet_sentences ...
    h = remote.generate(prompt, max_new_tokens=40, sentences=1)
    pieces = [p async for p in h.stream()]
    r = await h
    assert r.status == "ok" and r.text == ref.text and "".join(pieces) == r.text
    # ... and a server that ignores it is cut off by the client at the same place
    free = await remote.generate(prompt, max_new_tokens=40)
    assert free.text.startswith(ref.text) and len(free.text) > len(ref.text)
    own = server._gen_kwargs
    server._gen_kwargs = lambda req: {**own(req), "sentences": None}   # a server without the extension
    try:
        h = remote.generate(prompt, max_new_tokens=40, sentences=1)
        pieces = [p async for p in h.stream()]
        cut = await h
    finally:
        server._gen_kwargs = own
    assert cut.status == "ok" and cut.text == ref.text and "".join(pieces) == ref.text
    assert cut.finish_reason == "stop"


async def test_remote_overload_deadline_and_unreachable(served):
    _, remote, _ = served
    # The served engine holds 4 running + 8 queued; 24 at once must shed some as overloaded.
    handles = [remote.generate(f"Story {i}: once upon a time", max_new_tokens=8) for i in range(24)]
    results = [await h for h in handles]
    statuses = {r.status for r in results}
    assert "overloaded" in statuses and "ok" in statuses
    late = await remote.generate("Once upon a time,", max_new_tokens=200, deadline_s=0.3)
    assert late.status == "deadline"
    dead = RemoteLLM("http://127.0.0.1:9", retries=1, backoff_s=0.01, connect_timeout_s=1)
    r = await dead.generate("hello", max_new_tokens=2)
    assert r.status == "error" and r.error
    dead.close()


async def test_hamlet_llm_serve_command():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "llm-serve", "--port", "0", "--runner", "thread",
                             "--max-batch", "4"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)
        assert line.startswith("hamlet llm-serve: http://127.0.0.1:"), line
        url = line.split()[2]
        remote = RemoteLLM(url.removesuffix("/v1"))
        r = await remote.generate("The capital of France is", max_new_tokens=6)
        assert r.status == "ok" and "Paris" in r.text
        remote.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
