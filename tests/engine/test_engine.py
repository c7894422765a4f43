"""The continuous batcher on the real embedded model (inline runner)."""
from __future__ import annotations

import time

import pytest
import torch

from agents.inference import Priority, client_for
from agents.inference.kv import common_prefix_len
from agents.inference.scoring import split_tokens

pytestmark = pytest.mark.model

WORLD = ("The village of Hamlet lies in a green valley. It has a tavern, a smithy, "
         "a market square, a school and a mill by the river. ")


@pytest.fixture
def llm(loaded):
    client = client_for(loaded, runner="inline", max_batch=4, max_queue=32)
    yield client
    client.close()


def test_greedy_matches_transformers_generate(llm, loaded, drain, reference_greedy):
    prompts = ["The capital of France is", WORLD + "The smith says:"]
    handles = [llm.generate(prompts[0], max_new_tokens=16),
               llm.generate(prompts[1], max_new_tokens=16, prefix=WORLD)]
    drain(llm, handles)
    for prompt, h in zip(prompts, handles):
        r = h.result()
        assert r.status == "ok" and r.finish_reason == "length"
        assert r.token_ids == reference_greedy(loaded, prompt, 16)
        assert r.text == loaded.tokenizer.decode(r.token_ids, skip_special_tokens=True)
    # The second request with the same prefix hits the prefix cache and still matches.
    again = llm.generate(WORLD + "The smith says:", max_new_tokens=16, prefix=WORLD)
    drain(llm, [again])
    assert again.result().token_ids == handles[1].result().token_ids
    assert llm.backend.engine.prefixes.hits >= 1


def test_prefixes_extending_cached_ones_are_computed_together_past_their_bases(llm, loaded, drain, reference_greedy):
    engine = llm.backend.engine
    other = "Far to the north, the town of Brill has a harbour and a lighthouse. "
    drain(llm, [llm.generate(WORLD + "The smith says:", max_new_tokens=2, prefix=WORLD),     # both cached
                llm.generate(other + "The keeper says:", max_new_tokens=2, prefix=other)])
    shared = [WORLD + "It is noon, and the smith stands at the forge. ",                   # two crowds'
              other + "At dusk the keeper climbs the stairs to light the lamp. "]          # contexts
    forwards = []
    dense_rows = engine.fw.dense_rows

    def counted(rows, pasts):
        forwards.append([(len(r), None if p is None else p[0].shape[2]) for r, p in zip(rows, pasts)])
        return dense_rows(rows, pasts)
    engine.fw.dense_rows = counted
    prompts = [(shared[0] + "Ann asks the smith:", shared[0]), (shared[0] + "Bob asks the smith:", shared[0]),
               (shared[1] + "Cy asks the keeper:", shared[1])]
    handles = [llm.generate(p, max_new_tokens=8, prefix=px, priority=Priority.HUMAN_REPLY) for p, px in prompts]
    llm.step()
    assert len(engine.batch.rows) == 3                     # all start in one step
    drain(llm, handles)
    engine.fw.dense_rows = dense_rows
    # one forward for both new prefixes, each over its cached base (its tokens but the last: " " + "It" merge)
    expected = []
    for base, text in zip((WORLD, other), shared):
        ids = engine.prefixes.entries[text].ids
        reused = common_prefix_len(engine.prefixes.entries[base].ids, ids)
        assert reused >= len(engine.prefixes.entries[base].ids) - 1
        expected.append((len(ids) - reused, reused))
    assert forwards == [expected]
    for (p, _), h in zip(prompts, handles):
        assert h.result().token_ids == reference_greedy(loaded, p, 8)
    for text in shared:                                    # the same keys/values as from scratch
        entry = engine.prefixes.entries[text]
        k, v = engine.fw.dense([entry.ids])[1].stacked_new(0)
        assert torch.allclose(entry.k, k, atol=1e-4) and torch.allclose(entry.v, v, atol=1e-4)


def test_mixed_lengths_each_finish_correctly(llm, loaded, reference_greedy):
    jobs = [("Hello", 4), ("Once upon a time, in a small village by the sea, there lived", 20),
            ("List three colours:", 10)]
    handles = [llm.generate(p, max_new_tokens=n) for p, n in jobs]
    finished_at: dict[int, int] = {}
    for step in range(200):
        llm.step()
        for h in handles:
            if h.done() and h.job_id not in finished_at:
                finished_at[h.job_id] = step
        if len(finished_at) == len(handles):
            break
    for (prompt, n), h in zip(jobs, handles):
        r = h.result()
        assert r.status == "ok"
        assert r.token_ids == reference_greedy(loaded, prompt, n)[: len(r.token_ids)]
        assert len(r.token_ids) == n or r.finish_reason == "stop"
    # The short request did not wait for the longest one in its batch.
    assert finished_at[handles[0].job_id] < finished_at[handles[1].job_id] - 10
    assert llm.backend.engine.batch.rows == []


def _reference_score(loaded, prompt: str, cand: str) -> float:
    ids, first, _ = split_tokens(loaded.tokenizer, prompt, cand)
    with torch.inference_mode():
        logits = loaded.model(torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return sum(lp[t - 1, ids[t]].item() for t in range(max(first, 1), len(ids)))


def test_score_ranks_and_matches_one_at_a_time(llm, loaded, drain):
    prompt = WORLD + "Question: What is the color of the sky on a clear day?\nAnswer: The sky is"
    cands = [" blue.", " made of cheese and pickles.", " green."]
    h = llm.score(prompt, cands)
    hp = llm.score(prompt, cands, prefix=WORLD)
    drain(llm, [h, hp])
    for r in (h.result(), hp.result()):
        assert r.status == "ok" and len(r.logprobs) == 3
        assert r.logprobs[0] > r.logprobs[1] and r.best() == 0
        for got, cand in zip(r.logprobs, cands):
            assert got == pytest.approx(_reference_score(loaded, prompt, cand), abs=2e-3)


def _low_done_when_high_done(loaded, policy: str) -> int:
    llm = client_for(loaded, runner="inline", max_batch=4, max_queue=64, policy=policy)
    low = [llm.generate(f"Villager {i} thinks about the harvest and", max_new_tokens=10,
                        priority=Priority.REFLECTION) for i in range(12)]
    high = llm.generate("A traveller asks the guide: where is the inn?", max_new_tokens=10,
                        priority=Priority.HUMAN_REPLY)
    while not high.done():
        llm.step()
    assert high.result().status == "ok"
    count = sum(h.done() for h in low)
    llm.close()
    return count


def test_high_priority_finishes_before_queued_low_priority(loaded):
    # Submitted behind 12 low-priority requests, it overtakes them; under FIFO it waits.
    assert _low_done_when_high_done(loaded, "priority") <= 1     # (one may hit EOS at once)
    assert _low_done_when_high_done(loaded, "fifo") >= 8


def test_deadline_and_cancellation(llm, drain):
    expired = llm.generate("Tell me a story.", max_new_tokens=8, deadline_s=0.0)
    running = llm.generate("Once upon a time, in a small village,", max_new_tokens=30, deadline_s=60)
    short_deadline = llm.generate("The miller said that the river", max_new_tokens=60, deadline_s=0.3)
    waiting = llm.generate("The smith told the baker that", max_new_tokens=30, priority=Priority.REFLECTION)
    llm.step()
    llm.step()
    assert expired.done() and expired.result().status == "deadline"
    waiting.cancel()
    drain(llm, [waiting, short_deadline, running])
    assert waiting.result().status == "cancelled"
    assert short_deadline.result().status == "deadline"
    assert running.result().status == "ok" and len(running.result().token_ids) == 30
    t0 = time.monotonic()
    running2 = llm.generate("Once upon a time, in a small village,", max_new_tokens=40)
    llm.step()
    llm.step()
    running2.cancel()
    drain(llm, [running2])
    r = running2.result()
    assert r.status == "cancelled" and 0 < len(r.token_ids) < 40 and time.monotonic() - t0 < 10
    assert llm.backend.engine.batch.rows == []


def test_queue_bound_overloads_without_raising(loaded, drain):
    llm = client_for(loaded, runner="inline", max_batch=1, max_queue=2)
    handles = [llm.generate("Hi", max_new_tokens=2) for _ in range(6)]
    refused = [h for h in handles if h.done()]
    # Bound: the queue (2) plus the batch (1); nothing has stepped, so only the queue holds.
    assert 3 <= len(refused) <= 4 and all(h.result().status == "overloaded" for h in refused)
    assert "queue" in refused[-1].result().error or "outstanding" in refused[-1].result().error
    drain(llm, handles)
    assert sum(h.result().status == "ok" for h in handles) == 6 - len(refused)
    llm.close()


async def test_stream_stop_strings_and_seeded_sampling(llm, drain):
    h = llm.generate("Count: one, two, three,", max_new_tokens=24, stop=[" six"])
    pieces = []

    async def consume():
        async for piece in h.stream():
            pieces.append(piece)

    import asyncio
    task = asyncio.ensure_future(consume())
    while not h.done():
        llm.step()
        await asyncio.sleep(0)
    result = await h
    await task
    assert result.finish_reason == "stop" and " six" not in result.text and "five" in result.text
    assert "".join(pieces) == result.text
    a, b, c = (llm.generate("My favourite animal is", max_new_tokens=12, temperature=1.0, top_p=0.9, seed=s)
               for s in (7, 7, 8))
    drain(llm, [a, b, c])
    assert a.result().text == b.result().text
    assert a.result().token_ids != c.result().token_ids


def test_a_sentence_limit_ends_the_generation_at_a_full_sentence(llm, drain):
    from agents.inference.sampling import sentence_cut
    prompt = "Here is a short story about a baker. Once upon a time, there was a baker who"
    free = llm.generate(prompt, max_new_tokens=40)
    one = llm.generate(prompt, max_new_tokens=40, sentences=1)
    drain(llm, [free, one])
    full, cut = free.result(), one.result()
    end = sentence_cut(full.text, 1)
    assert end is not None and end < len(full.text), full.text   # the free run goes on past a sentence
    assert cut.status == "ok" and cut.finish_reason == "stop"
    assert cut.text == full.text[:end]                           # greedy: the same words, cut at the end
    assert len(cut.token_ids) < len(full.token_ids)


LONG = ("Once upon a time, in a small village by the sea, there lived an old fisherman who went out every "
        "morning before dawn. His wife baked bread and sold it at the market on the square. One day,")


def test_long_prompts_are_prefilled_in_chunks_while_others_keep_decoding(loaded, drain, reference_greedy):
    chunked = client_for(loaded, runner="inline", max_batch=8, max_queue=8, prefill_tokens=16)
    engine = chunked.backend.engine
    try:
        short = chunked.generate("The capital of France is", max_new_tokens=12)
        chunked.step()                                    # the short one is running
        long = chunked.generate(LONG, max_new_tokens=8)
        sampled = chunked.generate(LONG, max_new_tokens=8, temperature=0.8, seed=7)
        filling_steps, decoded_meanwhile = 0, 0
        while (engine.batch.filling is not None or engine.scheduler.waiting) and not short.done():
            row = next(q for q in engine.batch.rows if q.req.job_id == short.job_id)
            before = len(row.gen_ids)
            chunked.step()
            if engine.batch.filling is not None:
                filling_steps += 1
                decoded_meanwhile += len(row.gen_ids) - before
        assert filling_steps >= 3                        # ~45 tokens each, in chunks of 16
        assert decoded_meanwhile == filling_steps        # the short one got a token every step
        drain(chunked, [short, long, sampled])
    finally:
        chunked.close()
    assert short.result().token_ids == reference_greedy(loaded, "The capital of France is", 12)
    assert long.result().token_ids == reference_greedy(loaded, LONG, 8)
    whole = client_for(loaded, runner="inline", max_batch=4, max_queue=8)
    try:
        again = whole.generate(LONG, max_new_tokens=8, temperature=0.8, seed=7)
        drain(whole, [again])
    finally:
        whole.close()
    assert sampled.result().token_ids == again.result().token_ids   # seeded: chunking changes nothing


def test_a_reply_to_a_person_goes_ahead_of_a_filling_row(loaded, drain, reference_greedy):
    llm = client_for(loaded, runner="inline", max_batch=8, max_queue=8, prefill_tokens=16)
    engine = llm.backend.engine
    try:
        talk = llm.generate(LONG, max_new_tokens=6, priority=Priority.CONVERSATION)
        llm.step()
        assert engine.batch.filling is not None                 # the long prompt is being chunked
        prompt = "Hello there! How are you doing today, my friend? I"
        reply = llm.generate(prompt, max_new_tokens=6, priority=Priority.HUMAN_REPLY)
        llm.step()                                        # the reply's whole prompt goes first ...
        assert engine.batch.filling is not None and engine.batch.filling.req.job_id == talk.job_id
        assert engine.batch.rows[-1] is engine.batch.filling and len(engine.batch.rows) == 2
        assert engine.batch.rows[0].req.job_id == reply.job_id and engine.batch.rows[0].gen_ids  # ... and decodes
        drain(llm, [talk, reply])
    finally:
        llm.close()
    assert reply.result().token_ids == reference_greedy(loaded, prompt, 6)
    assert talk.result().token_ids == reference_greedy(loaded, LONG, 6)   # the parked row was kept intact


def test_a_long_filling_row_survives_the_buffer_shrinking_for_short_rows(loaded, drain, reference_greedy):
    # The decoded rows are short while the filling row's prompt grows past them:
    # the cache buffer must not be cut back below the filling row.
    llm = client_for(loaded, runner="inline", max_batch=8, max_queue=8, prefill_tokens=48)
    long_prompt = " ".join([LONG] * 4)
    try:
        short = llm.generate("The capital of France is", max_new_tokens=12)
        llm.step()
        long = llm.generate(long_prompt, max_new_tokens=6)
        drain(llm, [short, long])
    finally:
        llm.close()
    assert long.result().prompt_tokens > 2 * 64   # the buffer (192) is > 2 steps past the short rows
    assert long.result().token_ids == reference_greedy(loaded, long_prompt, 6)
    assert short.result().token_ids == reference_greedy(loaded, "The capital of France is", 12)


def _started_rows(llm, prompts, steps=2):
    handles = [llm.generate(p, max_new_tokens=14) for p in prompts]
    for _ in range(steps):
        llm.step()
    return handles


PAUSED = ["Once upon a time, in a small village by the sea,", "List three colours:", "The smith said that"]


def test_while_a_person_is_answered_other_rows_pause_and_nothing_else_starts(loaded, drain, reference_greedy):
    # max_hold_s: no ordinary step during the reply, however slow the machine's steps are
    llm = client_for(loaded, runner="inline", max_batch=8, max_queue=8, max_hold_s=600.0)
    engine = llm.backend.engine
    try:
        talk = _started_rows(llm, PAUSED)
        prompt = "Hello there! How are you doing today, my friend? I"
        reply = llm.generate(prompt, max_new_tokens=8, priority=Priority.HUMAN_REPLY)
        llm.step()                                          # the reply starts
        late = llm.generate("A new topic:", max_new_tokens=4)
        seen = {h.job_id: None for h in talk}
        while not reply.done():
            counts = {s.req.job_id: len(s.gen_ids) for s in engine.batch.rows}
            llm.step()
            for h in talk:                                  # paused: no token while the reply runs
                row = next(s for s in engine.batch.rows if s.req.job_id == h.job_id)
                assert len(row.gen_ids) == counts[h.job_id]
                seen[h.job_id] = len(row.gen_ids)
            assert late.job_id in engine.scheduler.waiting            # and nothing else is admitted
        drain(llm, talk + [late])
    finally:
        llm.close()
    assert all(n is not None and n < 14 for n in seen.values())
    # The reply row was swapped to the front and back: every row is intact.
    assert reply.result().token_ids == reference_greedy(loaded, prompt, 8)
    for p, h in zip(PAUSED, talk):
        assert h.result().token_ids == reference_greedy(loaded, p, 14)[: len(h.result().token_ids)]
        assert len(h.result().token_ids) == 14 or h.result().finish_reason == "stop"


@pytest.mark.parametrize("policy,max_hold_s", [("fifo", 2.0), ("priority", 0.0)])
def test_other_rows_keep_going_under_fifo_or_after_the_hold_limit(loaded, drain, policy, max_hold_s):
    llm = client_for(loaded, runner="inline", max_batch=8, max_queue=8, policy=policy, max_hold_s=max_hold_s)
    try:
        talk = _started_rows(llm, PAUSED[:1])
        reply = llm.generate("Hello there! How are you? I", max_new_tokens=8, priority=Priority.HUMAN_REPLY)
        llm.step()
        engine = llm.backend.engine
        row = next(s for s in engine.batch.rows if s.req.job_id == talk[0].job_id)
        before = len(row.gen_ids)
        while not reply.done():
            time.sleep(0.001)
            llm.step()
        drain(llm, talk)
    finally:
        llm.close()
    assert len(row.gen_ids) > before


def test_a_person_arriving_mid_prefill_interrupts_npc_work_which_then_resumes_intact(loaded, drain, reference_greedy):
    llm = client_for(loaded, runner="inline", max_batch=8, max_queue=8)
    engine = llm.backend.engine
    prompt = "Hello there! How are you doing today, my friend? I"
    reply, calls = [], []

    def interrupt():  # what a runner does between layers: take what arrived meanwhile
        calls.append(1)
        if len(calls) == 5:
            reply.append(llm.generate(prompt, max_new_tokens=6, priority=Priority.HUMAN_REPLY))

    try:
        engine.interrupt = interrupt
        talk = [llm.generate(p, max_new_tokens=10) for p in PAUSED]
        score = llm.score("The sun rises in the", [" east", " west"])
        llm.step()                                  # NPC prefill: stopped at the 6th layer
        assert len(calls) == 5 and engine.interrupted == 1
        assert engine.batch.rows == [] and set(engine.scheduler.waiting) == {h.job_id for h in talk} | {
            score.job_id, reply[0].job_id}          # everything back in the queue, nothing lost
        llm.step()                                  # the reply alone goes first
        assert [s.req.job_id for s in engine.batch.rows] == [reply[0].job_id]
        assert len(engine.scheduler.waiting) == 4
        drain(llm, talk + [score, reply[0]])
    finally:
        llm.close()
    assert reply[0].result().token_ids == reference_greedy(loaded, prompt, 6)
    for p, h in zip(PAUSED, talk):
        assert h.result().token_ids == reference_greedy(loaded, p, 10)[: len(h.result().token_ids)]
    assert score.result().status == "ok" and score.result().best() == 0
    # a prefill that holds a reply to a person is never interrupted
    assert engine.interrupted == 1
