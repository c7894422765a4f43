"""Unit tests of the reply queue with a FAKE model (tests/agents/fake_llm.py):
everyone who addresses an NPC gets an answer, in arrival order, addressed
to them; several replies are generated at once; those behind a crowd hear a
holding line; past the queue's bound people are told to come back; refused
lines are regenerated once, then replaced in character (facts first); a
sleeping NPC answers as someone woken. The real model: test_minds_model.py."""
from __future__ import annotations

from dataclasses import replace

from agents.dialogue import is_holding_line
from agents.budget import MindBudget
from agents.mind import MAX_PARALLEL_REPLIES, MAX_PENDING_REPLIES
from agents.replies import CROWD_REPLY_TOKENS
from server.world.inputs import Join, Say
from server.world.world import FLAG_THINKING, WorldRules
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import Harness, says


def crowd(h: Harness, n: int, first_id: int = 1) -> list[int]:
    """n people joined around Mira (within hearing), one tick."""
    ids = list(range(first_id, first_id + n))
    mira = h.npc("Mira")
    h.tick(*[Join(i, f"P{i}", mira.x - 4 + (k % 9), mira.y + 1 + k // 9) for k, i in enumerate(ids)])
    h.run(2)
    return ids


def answers_to(outputs, npc_id):
    """person -> the lines the NPC addressed to them, in order."""
    out: dict[int, list[str]] = {}
    for s in says(outputs, npc_id):
        out.setdefault(s.to, []).append(s.text)
    return out


def test_two_people_in_the_same_tick_both_get_their_own_answer():
    llm = FakeLLM(replies=["The market is east of the square.", "Bread is at the bakery, south-west."])
    h = Harness(llm=llm)
    ann, bob = crowd(h, 2)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Where is the market?", to=mira.id), Say(bob, "Where can I get bread?", to=mira.id))
    assert len(llm.prompts) == 2  # both replies start in the same tick (batched by the engine)
    assert '"Where is the market?"' in llm.prompts[0][0] and '"Where can I get bread?"' in llm.prompts[1][0]
    # the other person's line is context for the second answer
    assert 'P1 said "Where is the market?"' in llm.prompts[1][0]
    got = answers_to(h.run(4), mira.id)
    assert got == {ann: ["The market is east of the square."], bob: ["Bread is at the bakery, south-west."]}


def test_a_crowd_is_answered_in_arrival_order_with_holding_lines_past_the_batch():
    n = MAX_PARALLEL_REPLIES + 3
    llm = FakeLLM(replies=[f"Answer number {i} for you, friend." for i in range(n)], ready_after=5)
    h = Harness(llm=llm)
    people = crowd(h, n)
    mira = h.npc("Mira")
    first = h.tick(*[Say(p, f"Hello Mira, I am number {p}! What is new?", to=mira.id) for p in people])
    replies = [p for p, _ in llm.prompts if "What do you say to" in p]   # (11 joins may start a reflection)
    assert len(replies) == MAX_PARALLEL_REPLIES  # a batch at once, the rest wait their turn
    assert any(s.to == people[MAX_PARALLEL_REPLIES] and is_holding_line(s.text) for s in says(first))
    assert h.world.entities[mira.id].flags & FLAG_THINKING or any(
        getattr(o, "flags", 0) & FLAG_THINKING for o in first)
    out = first + h.run(60)
    got = answers_to(out, mira.id)
    real = {p: [t for t in got.get(p, []) if not is_holding_line(t)] for p in people}
    assert all(len(lines) == 1 for lines in real.values()), real  # everyone, exactly once
    order = [s.to for s in says(out, mira.id) if not is_holding_line(s.text)]
    assert order == people  # arrival order
    held = [p for p in people if any(is_holding_line(t) for t in got.get(p, []))]
    assert held == people[MAX_PARALLEL_REPLIES:]  # only those behind the first batch, once each
    assert not h.world.entities[mira.id].flags & FLAG_THINKING
    assert h.minds.stats()["replies"]["model"] == n and h.minds.stats()["replies"]["held"] == 3


def test_past_the_bound_newcomers_are_told_to_come_back_and_nobody_is_lost():
    n = MAX_PENDING_REPLIES + 2
    h = Harness(llm=FakeLLM(ready_after=3))
    people = crowd(h, n)
    mira = h.npc("Mira")
    out = h.tick(*[Say(p, f"Mira! Question {p}.", to=mira.id) for p in people])
    turned_away = [s.to for s in says(out, mira.id) if "too many" in s.text.lower()]
    assert turned_away == people[MAX_PENDING_REPLIES:]
    assert len(h.minds.minds["mira"].waiting) == MAX_PENDING_REPLIES
    out += h.run(120)
    got = answers_to(out, mira.id)
    assert set(got) == set(people)  # every person heard something addressed to them
    for p in people[:MAX_PENDING_REPLIES]:
        assert [t for t in got[p] if not is_holding_line(t)], p  # and the queued ones a real answer


def test_a_person_speaking_again_while_waiting_keeps_their_place_and_gets_one_answer():
    h = Harness(llm=FakeLLM(replies=["First answer here.", "Second answer here.", "Third answer here."],
                            ready_after=4))
    ann, bob = crowd(h, 2)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Hello Mira", to=mira.id))
    h.tick(Say(bob, "Hi Mira", to=mira.id), Say(ann, "Are you there?", to=mira.id))
    out = h.run(20)
    got = answers_to(h.outputs, mira.id)
    assert len(got[bob]) == 1 and len(got[ann]) >= 1
    del out


def test_a_refused_line_is_generated_again_then_replaced_in_character():
    # the first reply echoes the question and is refused; the retry passes
    h = Harness(llm=FakeLLM(replies=["Where is the pond?", "The pond lies south-west of the square."]))
    (ann,) = crowd(h, 1)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Where is the pond?", to=mira.id))
    got = answers_to(h.run(6), mira.id)
    assert got == {ann: ["The pond lies south-west of the square."]}
    assert h.minds.gate.counts["echo"] == 1 and h.minds.gate.counts["ok"] == 1
    # both tries refused: the answer comes from the map's facts, not a stock line
    h2 = Harness(llm=FakeLLM(replies=["You are 34, the village guide.", "Good day, Mira."]))
    (ann,) = crowd(h2, 1)
    mira = h2.npc("Mira")
    h2.tick(Say(ann, "Where does the blacksmith work?", to=mira.id))
    (line,) = answers_to(h2.run(6), mira.id)[ann]
    assert line.startswith("The smithy is to the")
    assert h2.minds.stats()["gate"]["persona"] == 1 and h2.minds.stats()["gate"]["self_address"] == 1
    assert h2.minds.stats()["replies"]["fallback"] == 1
    # the same counts, as /metrics shows them
    from server.metrics import ServerMetrics
    metrics = ServerMetrics()
    metrics.watch_minds(h2.minds.stats)
    text = metrics.render().decode()
    assert 'hamlet_npc_line_gate_total{verdict="persona"} 1.0' in text
    assert 'hamlet_npc_replies_total{outcome="fallback"} 1.0' in text


def test_facts_from_the_map_are_in_the_prompt():
    h = Harness()
    (ann,) = crowd(h, 1)
    h.tick(Say(ann, "Where does the blacksmith work?", to=h.npc("Mira").id))
    prompt = h.llm.prompts[-1][0]
    assert "Facts (true now" in prompt and "The smithy is to the" in prompt


def test_a_sleeping_npc_answers_as_someone_woken_without_the_model():
    rules = replace(WorldRules(), start_minute=23 * 60)  # 23:00: Mira's routine says sleeping
    h = Harness()
    h.world = type(h.world)(h.world.map, seed=3, rules=rules)
    h.world.begin_tick()
    assert h.world.apply(Join(100, "Mira", 60, 48, npc=True)) is None
    (ann,) = crowd(h, 1)
    out = h.tick(Say(ann, "Mira, where is the tavern?", to=h.npc("Mira").id)) + h.run(3)
    (line,) = answers_to(out, h.npc("Mira").id)[ann]
    assert "asleep" in line or "bed" in line or "late" in line
    assert "bakery after 7" in line  # when and where to find her, from her routine
    assert not h.llm.prompts
    assert h.minds.stats()["replies"]["asleep"] == 1


def test_naming_an_npc_while_speaking_to_another_does_not_queue_a_reply_from_it():
    h = Harness(names=("Mira", "Tomas"), positions={"Mira": (60, 48), "Tomas": (62, 48)})
    (ann,) = crowd(h, 1)
    mira, tomas = h.npc("Mira"), h.npc("Tomas")
    h.tick(Say(ann, "Mira, is Tomas a good storyteller?", to=mira.id))
    assert h.minds.minds["mira"].serving_people and not h.minds.minds["tomas"].serving_people
    out = h.tick(Say(ann, "Tomas, are you there?"))  # to nobody in particular, naming him
    got = answers_to(out + h.run(6), tomas.id)
    assert list(got) == [ann]  # (at 08:00 Tomas is still asleep: he answers as woken)


def test_a_refused_answer_to_a_greeting_greets_back_by_name_in_character():
    h = Harness(llm=FakeLLM(replies=["Hello Mira!", "Good day, Mira.", "You are Mira, 34.", "Hello Mira."]))
    ann, bob = crowd(h, 2)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Hello Mira! I have been walking all morning long and I am rather tired now.", to=mira.id),
           Say(bob, "Mira, how are you? I have been walking since dawn and my feet are sore.", to=mira.id))
    got = answers_to(h.run(8), mira.id)
    assert got[ann][0].endswith("P1! I'm Mira, a village guide. What brings you here?")
    assert got[bob] == ["Well enough, thank you, P2! I'm welcoming visitors today."]


def test_a_crowds_replies_share_one_context_passed_as_the_cached_prefix():
    llm = FakeLLM(ready_after=5)
    h = Harness(llm=llm)
    people = crowd(h, 3)
    mira = h.npc("Mira")
    h.tick(Say(people[0], "Good morning, Mira! What is new?", to=mira.id))
    h.run(8)  # a first line, answered alone: its prompt is the full one
    h.tick(*[Say(p, f"Hello Mira, I am number {p}! What is new?", to=mira.id) for p in people])
    replies = [(p, kw["prefix"]) for (p, _), kw in zip(llm.prompts, llm.kwargs) if "What do you say to" in p]
    caps = [kw["max_new_tokens"] for (p, _), kw in zip(llm.prompts, llm.kwargs) if "What do you say to" in p]
    assert caps == [MindBudget().reply_tokens] + [CROWD_REPLY_TOKENS] * 3   # a crowd's wave ends sooner
    alone, crowd_replies = replies[0], replies[1:]
    assert len(crowd_replies) == 3
    (prefix,) = {px for _, px in crowd_replies}            # one prefix for the whole crowd ...
    assert len(prefix) > len(alone[1])                     # ... reaching past the persona into the context
    assert "You remember:" in prefix and "Now P" not in prefix
    assert 'P3 said "Hello Mira, I am number 3! What is new?"' in prefix  # the others' lines are context
    for person, (p, _) in zip(people, crowd_replies):      # and past it, each person's own question
        assert p.startswith(prefix) and f'Now P{person} says to you: "Hello Mira, I am number {person}! What is new?"' in p
    # the crowd gone, the next person is answered from a fresh, full prompt
    h.run(12)
    assert mira_context(h) is None


def mira_context(h: Harness):
    return h.minds.minds["mira"].crowd_context


def test_a_refused_line_falls_back_at_once_when_its_person_has_waited_long():
    h = Harness(llm=FakeLLM(replies=["Where is the pond?", "The pond lies south-west of the square."], ready_after=3))
    (ann,) = crowd(h, 1)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Where is the pond?", to=mira.id))
    h.clock += MindBudget().reply_retry_within_s   # the generation took long: no time for a second one
    got = answers_to(h.run(8), mira.id)
    assert len([p for p, _ in h.llm.prompts if "What do you say to" in p]) == 1
    assert got[ann] != ["The pond lies south-west of the square."] and len(got[ann]) == 1
    assert h.minds.stats()["gate"]["echo"] == 1 and h.minds.stats()["replies"]["fallback"] == 1


def test_what_a_person_told_an_npc_is_a_fact_when_they_ask_it_back():
    llm = FakeLLM(replies=["Lovely!", "I'm here to assist you."])
    h = Harness(llm=llm)
    (ann,) = crowd(h, 1)
    mira = h.npc("Mira")
    h.tick(Say(ann, "I have a dog called Rex.", to=mira.id))
    h.run(4)
    h.tick(Say(ann, "What is my dog called?", to=mira.id))
    got = answers_to(h.run(4), mira.id)[ann]
    assert 'You told me, P1: "I have a dog called Rex."' in llm.prompts[-1][0]  # the fact, in the prompt
    assert got[-1] == 'You told me, P1: "I have a dog called Rex."'  # the model's line quoted none: the fact
    assert h.minds.desk.gate.counts["missing_fact"] == 1


def test_one_persons_reply_is_two_candidates_from_one_cached_prompt_and_the_gate_takes_the_first_that_passes():
    # the first candidate echoes the question (refused), the second passes: no second wait
    llm = FakeLLM(replies=["Where is the pond?", "The pond lies south-west of the square."], ready_after=3)
    h = Harness(llm=llm, budget=MindBudget(reply_candidates=2))
    (ann,) = crowd(h, 1)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Where is the pond?", to=mira.id))
    asked = [(p, kw) for (p, _), kw in zip(llm.prompts, llm.kwargs) if "What do you say to" in p]
    assert len(asked) == 2 and asked[0][0] == asked[1][0]          # the same prompt, in the same tick
    assert asked[0][1]["seed"] != asked[1][1]["seed"]              # sampled apart
    prefix = asked[0][1]["prefix"]
    assert prefix == asked[1][1]["prefix"] and '"Where is the pond?"' in prefix   # prefilled once
    got = answers_to(h.run(12), mira.id)
    assert got == {ann: ["The pond lies south-west of the square."]}
    assert len([p for p, _ in llm.prompts if "What do you say to" in p]) == 2     # no retry
    assert h.minds.gate.counts["echo"] == 1 and h.minds.gate.counts["ok"] == 1
    said = [s for s in says(h.outputs, mira.id) if s.to == ann]
    assert said[0].job == llm.handles[[hd._result.text for hd in llm.handles].index(
        "The pond lies south-west of the square.")].job_id                           # the chosen one's job


def test_when_both_candidates_pass_the_first_is_said_and_a_crowd_gets_one_each():
    llm = FakeLLM(replies=["The sun is warm on the square today.", "Hello there, P1, welcome."], ready_after=2)
    h = Harness(llm=llm, budget=MindBudget(reply_candidates=2))
    ann, bob = crowd(h, 2)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Good day, Mira! What is new?", to=mira.id))
    assert answers_to(h.run(8), mira.id) == {ann: ["The sun is warm on the square today."]}
    assert h.minds.gate.counts["ok"] == 1 and h.minds.stats()["replies"]["model"] == 1   # the second unread
    before = len(llm.prompts)
    h.tick(Say(ann, "Mira, where is the mill?", to=mira.id), Say(bob, "Where is the well?", to=mira.id))
    crowd_asks = [p for p, _ in llm.prompts[before:] if "What do you say to" in p]
    assert len(crowd_asks) == 2        # a crowd: one generation per person (their prompts share a context)


def test_a_cancelled_pair_of_candidates_cancels_both():
    from agents.reply_candidates import Candidates
    llm = FakeLLM()
    pair = Candidates([llm.generate("a"), llm.generate("b")])
    assert not pair.done()             # (the fake's handles are ready after a poll)
    pair.cancel()
    assert all(hd.cancelled for hd in llm.handles)
    assert pair.job_id == llm.handles[0].job_id


def test_a_candidate_the_gate_accepts_is_said_without_waiting_for_the_slower_one():
    from agents.reply_candidates import Candidates
    from tests.agents.fake_llm import FakeHandle, FakeResult
    fast = FakeHandle(1, FakeResult(text="The well is in the middle of the square."), ready_after=0)
    slow = FakeHandle(2, FakeResult(text="Hmm."), ready_after=100)
    pair = Candidates([slow, fast], accept=lambda r: "well" in r.text)
    assert pair.done()                       # the fast one is accepted: no wait for the slow one
    refused = Candidates([FakeHandle(3, FakeResult(text="Hmm."), ready_after=100),
                          FakeHandle(4, FakeResult(text="Echo."), ready_after=0)], accept=lambda r: False)
    assert not refused.done()                # a refused finished one: wait for the other
    # in the minds: the quick good line is said, the slow candidate cancelled
    llm = FakeLLM(replies=["Hello there, P1! The fields are green today.", "The bakery is south-west."],
                  ready_after=2)
    h = Harness(llm=llm, budget=MindBudget(reply_candidates=2))
    (ann,) = crowd(h, 1)
    mira = h.npc("Mira")
    h.tick(Say(ann, "Hello Mira! What is new?", to=mira.id))
    first, second = llm.handles[-2], llm.handles[-1]
    second._polls_left = 1000                # the second candidate would take very long
    got = answers_to(h.run(8), mira.id)
    assert got == {ann: ["Hello there, P1! The fields are green today."]}
    assert second.cancelled and not first.cancelled


def test_the_result_of_candidates_finished_early_is_the_accepted_one():
    from agents.reply_candidates import Candidates
    from tests.agents.fake_llm import FakeHandle, FakeResult
    slow = FakeHandle(1, FakeResult(text="Hmm."), ready_after=100)
    fast = FakeHandle(2, FakeResult(text="The well is on the square."), ready_after=0)
    pair = Candidates([slow, fast], accept=lambda r: "well" in r.text)
    assert pair.done() and pair.result().text == "The well is on the square."   # not the unfinished first


def test_reply_bans_the_name_unless_asked_who_and_the_heard_lines_clauses_and_runs():
    from agents.reply_gate import reply_bans
    assert reply_bans("Bo", "Hello Bo, how are you today?") == ("Bo", "Hello Bo", "how are you today")
    # asked who it is, it may say its name
    assert "Mira" not in reply_bans("Mira", "Who are you? What is your name?")
    bans = reply_bans("Mira", "Where can I buy bread in this village?")
    assert "Where can I buy" in bans and "bread in this village" in bans and "bread" not in bans
    assert len(reply_bans("Mira", " ".join(["word"] * 200))) <= 64

