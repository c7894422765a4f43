"""The remote backend against `hamlet llm-serve`, over real sockets on 127.0.0.1."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import h11
import pytest

from agents.inference import Priority, client_for
from agents.inference import serve as serve_module
from agents.inference.calls import MAX_CHOICE_CHARS, MAX_CHOICES
from agents.inference.http11 import HttpClient, HttpStatus
from agents.inference.http_server import H11Server
from agents.inference.remote import RemoteLLM
from agents.inference.serve import HttpError, LLMServer
from agents.npc_talk import best_normalised
from tests.waiting import until_sync

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


async def test_remote_scores_carry_each_tokens_logprob_as_the_local_engine_does(served):
    local, remote, _ = served
    # A short and a long candidate: the raw sums prefer the short one, the
    # per-token means (what the minds compare) the long one.
    prompt = "Mira sees her old friend Tomas at the square. Mira decides to"
    cands = [" go", " say hello to her old friend Tomas and ask about his day."]
    got, want = await remote.score(prompt, cands), await local.score(prompt, cands)
    assert got.status == "ok" and want.best() == 0 and best_normalised(want) == 1   # the case discriminates
    assert best_normalised(got) == best_normalised(want) == 1
    assert [len(t) for t in got.token_logprobs] == [len(t) for t in want.token_logprobs] == [1, 14]
    for i in range(len(cands)):
        assert sum(got.token_logprobs[i]) == pytest.approx(got.logprobs[i], abs=1e-9)
        assert got.token_logprobs[i] == pytest.approx(want.token_logprobs[i], abs=1e-2)
    assert got.token_offsets == want.token_offsets and got.token_offsets[1][0] == len(prompt)


async def test_remote_generations_count_their_tokens_from_the_servers_usage(served, monkeypatch):
    local, remote, server = served
    prompt = "Once upon a time, in a small village,"
    ref = await local.generate(prompt, max_new_tokens=12)
    assert ref.tokens == len(ref.token_ids) == 12                       # the embedded engine's count
    r = await remote.generate(prompt, max_new_tokens=12)
    assert r.status == "ok" and r.text == ref.text and r.token_ids == [] and r.tokens == 12
    chat = await remote.chat("You are a baker.", [("user", "Hello!")], max_new_tokens=5)
    assert chat.status == "ok" and 0 < chat.tokens <= 5
    # on the wire: a last event with no choices and the usage, only when asked
    http = HttpClient("127.0.0.1", server.port, "/v1", 5)
    req = {"prompt": prompt, "max_tokens": 12, "temperature": 0, "stream": True}
    asked = [e async for e in http.sse("/completions", {**req, "stream_options": {"include_usage": True}})]
    assert asked[-1]["choices"] == [] and asked[-1]["usage"]["completion_tokens"] == 12
    assert all("usage" not in e for e in [e async for e in http.sse("/completions", req)])
    whole = json.loads(await http.request("POST", "/completions", {**req, "stream": False}))
    assert whole["usage"]["completion_tokens"] == 12
    with pytest.raises(HttpStatus) as err:
        await http.request("POST", "/completions", {**req, "stream_options": True})
    assert err.value.status == 400 and b"stream_options" in err.value.body
    # the count is the server's word ...
    real = serve_module._usage
    monkeypatch.setattr(serve_module, "_usage", lambda results: {**real(results), "completion_tokens": 7})
    assert (await remote.generate(prompt, max_new_tokens=12)).tokens == 7
    monkeypatch.setattr(serve_module, "_usage", real)
    # ... and a server that sends none is counted by its pieces (one per token from llm-serve)
    monkeypatch.setattr(server, "_usage_asked", lambda req: False)
    h = remote.generate(prompt, max_new_tokens=12)
    pieces = [p async for p in h.stream()]
    r = await h
    assert r.status == "ok" and r.tokens == len(pieces) > 0


class Canned(H11Server):
    """A server answering every request with `answer` (JSON, or SSE if `sse`)."""
    answer, sse = b"", False

    async def _route(self, conn, writer, reader, method, path, body):
        kind = "text/event-stream" if self.sse else "application/json"
        headers = [("content-type", kind), ("content-length", str(len(self.answer)))]
        await self._send(conn, writer, h11.Response(status_code=200, headers=headers))
        await self._send(conn, writer, h11.Data(data=self.answer))
        await self._send(conn, writer, h11.EndOfMessage())


def _echo(n, values=(None, -1.0, -2.0), offsets=(0, 2, 3)):
    """An echo answer for prompt "abc": its third token (offset 3) is the candidate's."""
    lp = {"tokens": ["x"] * len(offsets), "token_logprobs": list(values), "text_offset": list(offsets)}
    return {"choices": [{"index": i, "text": "abc def", "logprobs": lp} for i in range(n)]}


def _sse(*events):
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


BAD_SCORES = [
    (b"not json", "not JSON"),
    (json.dumps({"object": "list"}).encode(), "no choices for 2 candidates"),
    (json.dumps(_echo(1)).encode(), "1 choices for 2 candidates"),
    (json.dumps({"choices": [_echo(1)["choices"][0]] * 2}).encode(), "indices are not 0..1"),
    (json.dumps({"choices": [{"index": i, "text": "a"} for i in range(2)]}).encode(), "two lists of one length"),
    (json.dumps(_echo(2, offsets=(0, 2))).encode(), "two lists of one length"),
    (json.dumps(_echo(2, values=(None, "x", -1.0))).encode(), "not a number"),
]
BAD_STREAMS = [
    (_sse({"choices": [{"text": "hi"}]}, {"choices": [], "usage": {"completion_tokens": "1"}}), "'1'"),
    (_sse({"choices": [{"text": "hi"}]}, {"choices": [], "usage": {"completion_tokens": 9}}), "0..4"),
    (_sse({"choices": [{"text": "hi"}]}, {"choices": [], "usage": []}), "usage.completion_tokens"),
    (_sse({"choices": {"text": "hi"}}), "not a list of objects"),
    (_sse({"choices": [{"text": 3}]}), "not a string"),
]


async def test_bad_answers_fail_the_job_with_what_is_wrong():
    server = Canned("127.0.0.1", 0)
    host, port = await server.start()
    remote = RemoteLLM(f"http://{host}:{port}", retries=0)
    try:
        server.answer = json.dumps(_echo(2)).encode()     # a good answer first
        good = await remote.score("abc", [" def", " def"])
        assert good.status == "ok" and good.logprobs == [-2.0, -2.0] and good.token_logprobs == [[-2.0], [-2.0]]
        assert good.token_offsets == [[3], [3]]
        for answer, why in BAD_SCORES:
            server.answer = answer
            r = await remote.score("abc", [" def", " ghi"])
            assert r.status == "error" and "BadAnswer" in r.error and why in r.error, (why, r.error)
        server.sse = True
        server.answer = _sse({"choices": [{"text": "hi"}]}, {"choices": [], "usage": None})
        assert (await remote.generate("x", max_new_tokens=4)).tokens == 1     # no usage: one piece
        for answer, why in BAD_STREAMS:
            server.answer = answer
            r = await remote.generate("x", max_new_tokens=4)
            assert r.status == "error" and "BadAnswer" in r.error and why in r.error, (why, r.error)
    finally:
        remote.close()
        await server.close()


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
        assert not remote.refused and seen == [0]
        r = await remote.score("The sky is", [" blue", " green"], priority=Priority.REFLECTION)
        assert r.status == "ok" and remote.refused == {"priority"} and seen == [0, 3, None]   # refused, resent without
        assert (await remote.generate("Hi", max_new_tokens=1, priority=Priority.PLANNING)).status == "ok"
        assert seen == [0, 3, None, None]
    finally:
        server._gen_kwargs = own


async def test_a_server_refusing_stream_options_is_asked_again_without_them(served):
    _, remote, server = served
    own, seen = server._gen_kwargs, []

    def server_without_usage(req):
        seen.append("stream_options" in req)
        if "stream_options" in req:           # a server that knows no usage reports
            raise HttpError(400, "Unrecognized request argument supplied: stream_options")
        return own(req)
    server._gen_kwargs = server_without_usage
    try:
        r = await remote.generate("The sky is", max_new_tokens=3)
        assert r.status == "ok" and r.tokens > 0 and seen == [True, False]     # refused, resent without
        assert remote.refused == {"stream_options"}
        assert (await remote.generate("The sky is", max_new_tokens=2)).status == "ok" and seen[-1] is False
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


def test_a_job_cancelled_right_after_it_is_sent_completes_as_cancelled():
    """Cancelled before its task's first step (the usual case for a cancel
    right after submit): the handle completes and the slot is given back."""
    dead = RemoteLLM("http://127.0.0.1:9", retries=5, backoff_s=1.0, connect_timeout_s=1)
    try:
        handles = [dead.generate("hello", max_new_tokens=2) for _ in range(8)]
        for h in handles:
            h.cancel()
        until_sync(lambda: all(h.done() for h in handles), timeout=5, what="every cancelled job done")
        assert {h.result().status for h in handles} == {"cancelled"}
        assert dead.info()["outstanding"] == 0
    finally:
        dead.close()
