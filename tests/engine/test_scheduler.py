"""The engine's queue discipline without a model: what a step's prefill
budget admits when requests share a prefix the cache does not hold yet,
and when the hold on NPC work lets an ordinary step through."""
from __future__ import annotations

import torch

from agents.inference.api import Priority
from agents.inference.jobs import GenerateRequest
from agents.inference.kv import PrefixCache, PrefixEntry
from agents.inference.scheduler import Scheduler


def encode(text: str) -> list[int]:
    return [ord(c) for c in text]   # a token per character


def scheduler(cache: PrefixCache, max_hold_s: float = 2.0) -> Scheduler:
    return Scheduler(encode, cache, policy="priority", max_queue=16, max_batch=8, urgent_reserve=0,
                     max_hold_s=max_hold_s)


def test_requests_sharing_a_new_prefix_pay_for_it_once_and_only_past_the_cached_part():
    cache = PrefixCache(4)
    persona = "S" * 100                                   # cached: a persona's system prompt
    cache.put(persona, PrefixEntry(encode(persona), torch.zeros(1), torch.zeros(1)))
    crowd = persona + "C" * 60                            # a crowd's context, not cached yet
    sched = scheduler(cache)
    for i in range(3):
        sched.push(GenerateRequest(i + 1, crowd + f"q{i}" * 10, prefix=crowd, priority=Priority.HUMAN_REPLY))
    # 60 (the context, once) + 3 x 20 (each question) = 120 tokens; counted
    # apiece from the persona it would be 240, from nothing 540
    admitted = sched.admit(125, rows=0, may_chunk=False, started=False)
    assert [q.job_id for q in admitted] == [1, 2, 3]
    # one token less and the third waits for the next step, in its place
    sched2 = scheduler(cache)
    for i in range(3):
        sched2.push(GenerateRequest(i + 1, crowd + f"q{i}" * 10, prefix=crowd, priority=Priority.HUMAN_REPLY))
    assert [q.job_id for q in sched2.admit(119, rows=0, may_chunk=False, started=False)] == [1, 2]
    assert list(sched2.waiting) == [3]


def test_the_hold_lets_an_ordinary_step_through_only_when_npc_work_waits_for_one():
    sched = scheduler(PrefixCache(4), max_hold_s=1.0)
    sched.push(GenerateRequest(1, "a reply", priority=Priority.HUMAN_REPLY))
    assert sched.holding(0.0, urgent_running=True, rows=1, npc_rows=False)
    # past max_hold_s with nothing of the NPCs' to run: an ordinary step would
    # only shrink the prefill budget of the people waiting, so the hold stays
    assert sched.holding(5.0, urgent_running=True, rows=1, npc_rows=False)
    # NPC rows running: one ordinary step, then the hold again
    assert not sched.holding(10.0, urgent_running=True, rows=2, npc_rows=True)
    assert sched.holding(10.1, urgent_running=True, rows=2, npc_rows=True)
    # NPC work queued (not running) counts as well
    sched.push(GenerateRequest(2, "small talk", priority=Priority.CONVERSATION))
    assert not sched.holding(20.0, urgent_running=True, rows=1, npc_rows=False)


def test_while_a_reply_runs_the_holds_release_admits_no_npc_work_but_every_fourth():
    from agents.inference.scheduler import FULL_RELEASE_EVERY
    sched = scheduler(PrefixCache(4), max_hold_s=1.0)
    sched.push(GenerateRequest(1, "small talk", priority=Priority.CONVERSATION))
    leans = []
    assert sched.holding(0.0, urgent_running=True, rows=2, npc_rows=True)
    for k in range(1, 2 * FULL_RELEASE_EVERY + 1):
        assert sched.holding(k * 10.0 - 9.5, urgent_running=True, rows=2, npc_rows=True)  # within the hold
        assert not sched.holding(k * 10.0, urgent_running=True, rows=2, npc_rows=True)     # a release
        leans.append(sched.lean)
        # a lean step admits only replies to people: the small talk stays queued
        assert sched.admit(256, rows=2, may_chunk=True, started=False, urgent_only=sched.lean) == [] or not sched.lean
        if not sched.lean:
            sched.push(GenerateRequest(100 + k, "more small talk", priority=Priority.CONVERSATION))
    assert leans == ([True] * (FULL_RELEASE_EVERY - 1) + [False]) * 2
    # a reply only waiting (none running yet): its prefill is what the step is for; never lean
    sched2 = scheduler(PrefixCache(4), max_hold_s=1.0)
    sched2.push(GenerateRequest(1, "a reply", priority=Priority.HUMAN_REPLY))
    sched2.push(GenerateRequest(2, "small talk", priority=Priority.CONVERSATION))
    assert sched2.holding(0.0, urgent_running=False, rows=1, npc_rows=True)
    assert not sched2.holding(5.0, urgent_running=False, rows=1, npc_rows=True) and not sched2.lean


def test_a_score_costs_its_prompt_past_the_cache_once_plus_its_candidates():
    from agents.inference.jobs import ScoreRequest
    cache = PrefixCache(4)
    persona = "S" * 100
    cache.put(persona, PrefixEntry(encode(persona), torch.zeros(1), torch.zeros(1)))
    sched = scheduler(cache)
    for i in range(2):   # 40 tokens of context past the persona, six 10-token candidates: 100 each
        sched.push(ScoreRequest(i + 1, persona + "C" * 40, ["x" * 10] * 6, priority=Priority.HUMAN_REPLY,
                                prefix=persona))
    assert [q.job_id for q in sched.admit(200, rows=0, may_chunk=False, started=False)] == [1, 2]
    sched.push(ScoreRequest(3, persona + "C" * 40, ["x" * 10] * 6, priority=Priority.HUMAN_REPLY, prefix=persona))
    sched.push(ScoreRequest(4, persona + "C" * 40, ["x" * 10] * 6, priority=Priority.HUMAN_REPLY, prefix=persona))
    assert [q.job_id for q in sched.admit(199, rows=0, may_chunk=False, started=False)] == [3]
