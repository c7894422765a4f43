"""The remote backend against `hamlet llm-serve`, over real sockets on 127.0.0.1."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.inference import Priority, client_for
from agents.inference.calls import MAX_CHOICE_CHARS, MAX_CHOICES
from agents.inference.http11 import HttpClient, HttpStatus
from agents.inference.remote import RemoteLLM
from agents.inference.serve import HttpError, LLMServer

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


async def test_structured_outputs_choice_answers_the_best_scored_choice(served):
    local, _, server = served
    http = HttpClient("127.0.0.1", server.port, "/v1", 5)
    prompt = "Question: What is the color of the sky on a clear day?\nAnswer: The sky is"
    choices = [" made of cheese and pickles.", " blue.", " a green door."]
    want = await local.score(prompt, choices)
    best = choices[want.best()]
    assert best == " blue."
    reply = json.loads(await http.request("POST", "/completions", {
        "prompt": prompt, "max_tokens": 8, "structured_outputs": {"choice": choices}}))
    assert [c["text"] for c in reply["choices"]] == [best] and reply["choices"][0]["finish_reason"] == "stop"
    old = json.loads(await http.request("POST", "/completions", {"prompt": [prompt, prompt], "guided_choice": choices}))
    assert [c["text"] for c in old["choices"]] == [best, best]              # vLLM's older field, two prompts
    chat = json.loads(await http.request("POST", "/chat/completions", {
        "messages": [{"role": "user", "content": "Is the sky blue? Answer yes or no."}],
        "structured_outputs": {"choice": ["yes", "no"]}}))
    assert chat["choices"][0]["message"]["content"] in ("yes", "no")
    events = [e async for e in http.sse("/completions", {"prompt": prompt, "stream": True,
                                                         "structured_outputs": {"choice": choices}})]
    assert "".join(e["choices"][0]["text"] for e in events) == best
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


BAD_CHOICES = [
    ({"structured_outputs": {"choice": "blue"}}, "list of 1.."),
    ({"structured_outputs": {"choice": []}}, "list of 1.."),
    ({"structured_outputs": {"choice": ["a", 3]}}, "non-empty string"),
    ({"structured_outputs": {"choice": ["a", ""]}}, "non-empty string"),
    ({"structured_outputs": {"choice": ["x"] * (MAX_CHOICES + 1)}}, f"1..{MAX_CHOICES}"),
    ({"structured_outputs": {"choice": ["a", "b" * (MAX_CHOICE_CHARS + 1)]}}, f"{MAX_CHOICE_CHARS} characters"),
    ({"structured_outputs": ["a"]}, "must be an object"),
    ({"structured_outputs": {"json": {"type": "object"}}}, "only 'choice'"),
    ({"prompt": ["p"] * 9, "structured_outputs": {"choice": ["a"] * 8}}, "prompt-choice pairs"),
]


async def test_structured_outputs_bad_choices_answer_400(served):
    _, remote, server = served
    http = HttpClient("127.0.0.1", server.port, "/v1", 5)
    for field, why in BAD_CHOICES:
        with pytest.raises(HttpStatus) as err:
            await http.request("POST", "/completions", {"prompt": "The sky is", **field})
        assert err.value.status == 400 and why in json.loads(err.value.body)["error"]["message"], field
    assert (await remote.generate("The sky is", max_new_tokens=1)).status == "ok"     # still serving


async def test_priorities_go_as_vllm_reads_them_and_are_dropped_where_refused(served):
    _, remote, server = served
    own, seen = server._gen_kwargs, []

    def vllm_without_priority_policy(req):
        seen.append(req.get("priority"))
        if req.get("priority", 0) != 0:       # what vLLM answers without --scheduling-policy priority
            raise HttpError(400, f"Got priority {req['priority']} but Priority scheduling is not enabled.")
        return own(req)
    # lower = more urgent in Hamlet, as in vLLM: a reply to a person goes first
    assert Priority.HUMAN_REPLY == 0 < Priority.CONVERSATION < Priority.PLANNING < Priority.REFLECTION
    server._gen_kwargs = vllm_without_priority_policy
    try:
        assert (await remote.generate("Hi", max_new_tokens=1, priority=Priority.HUMAN_REPLY)).status == "ok"
        assert remote.send_priority and seen == [0]
        r = await remote.score("The sky is", [" blue", " green"], priority=Priority.REFLECTION)
        assert r.status == "ok" and not remote.send_priority and seen == [0, 3, None]   # refused, resent without
        assert (await remote.generate("Hi", max_new_tokens=1, priority=Priority.PLANNING)).status == "ok"
        assert seen == [0, 3, None, None]
    finally:
        server._gen_kwargs = own


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
