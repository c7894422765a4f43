"""Banned phrases ("bad words"): the token bookkeeping without a model, then
the real embedded model through the engine, `hamlet llm-serve` and the
remote client (vLLM's `bad_words`)."""
from __future__ import annotations

import pytest
import torch

from agents.inference import client_for
from agents.inference.bans import MAX_BANS, ban_sequences, banned_next, check_bans, mask_banned


def test_a_sequence_bans_its_last_token_only_after_its_first_ones():
    seqs = [(7,), (1, 2, 3)]
    assert banned_next([], seqs) == [7]
    assert sorted(banned_next([5, 1, 2], seqs)) == [3, 7]
    assert banned_next([1, 2, 4], seqs) == [7]
    logits = torch.zeros(2, 10)
    mask_banned(logits, [[3, 7], []])
    assert logits[0, 3] == float("-inf") and logits[0, 7] == float("-inf") and logits[0, 4] == 0
    assert torch.isfinite(logits[1]).all()


def test_phrase_variants_and_limits(loaded):
    tok = loaded.tokenizer
    seqs = ban_sequences(tok, ["how are you"])
    for text in ("how are you", " how are you", "How are you", " How are you"):
        assert tuple(tok(text, add_special_tokens=False)["input_ids"]) in seqs
    assert check_bans(["x"] * (MAX_BANS + 1)) is not None
    assert check_bans([""]) is not None and check_bans(["a" * 65]) is not None and check_bans([3]) is not None
    assert check_bans(["Tomas", "how are you"]) is None


def _words(text: str) -> list[str]:
    return [w.strip(".,!?;:'\"").lower() for w in text.split()]


def test_the_engine_never_generates_a_banned_word_and_refuses_bad_bans(loaded, drain):
    llm = client_for(loaded, runner="inline", max_batch=4, max_queue=8)
    try:
        prompt = "Here is a short story about a baker. Once upon a time, there was a baker who"
        free = llm.generate(prompt, max_new_tokens=24)
        drain(llm, [free])
        base = free.result()
        words = [w for w in _words(base.text) if len(w) > 3]
        assert base.ok and words, base.text
        banned = words[0]                               # a word the model says when free to
        h = llm.generate(prompt, max_new_tokens=24, ban=[banned])
        drain(llm, [h])
        r = h.result()
        assert r.ok and r.text != base.text
        assert banned not in _words(r.text), (banned, r.text)
        # past the limits: refused at once, never queued
        bad = llm.generate(prompt, max_new_tokens=8, ban=["x"] * (MAX_BANS + 1))
        assert bad.done() and bad.result().status == "error" and "banned" in bad.result().error
    finally:
        llm.close()


@pytest.mark.model
async def test_bad_words_through_llm_serve_and_the_remote_client(loaded):
    from agents.inference.remote import RemoteLLM
    from agents.inference.serve import LLMServer
    local = client_for(loaded, runner="thread", max_batch=4, max_queue=8)
    server = LLMServer(local, host="127.0.0.1", port=0)
    host, port = await server.start()
    remote = RemoteLLM(f"http://{host}:{port}", timeout_s=30, retries=1, backoff_s=0.05, max_concurrency=8)
    try:
        prompt = "Here is a short story about a baker. Once upon a time, there was a baker who"
        base = await local.generate(prompt, max_new_tokens=20)
        banned = [w for w in _words(base.text) if len(w) > 3][0]
        want = await local.generate(prompt, max_new_tokens=20, ban=[banned])
        got = await remote.generate(prompt, max_new_tokens=20, ban=[banned])
        assert got.ok and got.text == want.text and banned not in _words(got.text)
        bad = await remote.generate(prompt, max_new_tokens=4, ban=["y" * 100])
        assert bad.status == "error"
        # a client that sends what the server refuses gets a 400 with the reason
        import json
        import urllib.request
        body = json.dumps({"prompt": prompt, "max_tokens": 4, "bad_words": "oops"}).encode()
        req = urllib.request.Request(f"http://{host}:{port}/v1/completions", body,
                                     {"Content-Type": "application/json"})
        import asyncio
        try:
            await asyncio.to_thread(urllib.request.urlopen, req, timeout=10)
            raise AssertionError("accepted a bad bad_words")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and "bad_words" in exc.read().decode()
    finally:
        remote.close()
        await server.close()
        local.close()
