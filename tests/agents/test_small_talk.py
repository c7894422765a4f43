"""Unit tests of small talk with a FAKE model (tests/agents/fake_llm.py):
which lines are small talk, the in-character lines built from the NPC's
state, and the reply desk choosing one by score (the fake's `prefer`)
instead of generating. The real model: test_small_talk_model.py."""
from __future__ import annotations

import pytest

from agents.reply_gate import LineContext, check
from agents.small_talk import part_of_day, small_talk_kind, small_talk_lines
from server.world.inputs import Say
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import Harness
from tests.agents.test_reply_queue import answers_to, crowd


@pytest.mark.parametrize("text,kind", [
    ("Hello Bo, how are you today?", "how"),
    ("Good morning, Mira!", "greeting"),
    ("hi", "greeting"),
    ("Thanks a lot, Tomas!", "thanks"),
    ("Goodbye Elena, see you tomorrow.", "bye"),
    ("How's it going?", "how"),
    # anything asking about the world, or asking for something, is generated with its facts
    ("Hello Mira, where is the market?", None),
    ("Hi! What does bread cost?", None),
    ("Hello Elena, teach me something", None),
    ("Good morning! Is it going to rain?", None),
    ("Hello there, I walked a very long way today from the far side of the hills to see you", None),
    ("I have a dog called Rex.", None),
])
def test_what_counts_as_small_talk(text, kind):
    assert small_talk_kind(text) == kind


def test_the_lines_are_addressed_in_character_and_pass_the_gate():
    from agents.personas import Persona, RoutineEntry
    p = Persona(name="Bo", age=30, occupation="innkeeper", role="villager", traits=("warm",), home="house 1",
                workplace="tavern", summary="Bo runs the tavern.", routine=(RoutineEntry(0, "tavern", "pouring ale"),))
    ctx = LineContext(speaker="Bo", heard="Hello Bo, how are you today?", names=("Ann",))
    for kind in ("how", "greeting", "thanks", "bye"):
        for knows in (False, True):
            lines = small_talk_lines(p, "Ann", kind, 9.5, "pouring ale", knows)
            assert len(lines) >= 4 and all("Ann" in line for line in lines)
            assert all(check(line, ctx) == "ok" for line in lines), lines
    fresh = small_talk_lines(p, "Ann", "how", 9.5, "pouring ale", knows=False)
    again = small_talk_lines(p, "Ann", "how", 9.5, "pouring ale", knows=True)
    assert "Good morning, Ann! Nice to meet you. I'm Bo, an innkeeper." in fresh
    assert not any("Nice to meet" in line for line in again) and "Hello again, Ann! Can't complain. And you?" in again
    assert "Hello, Ann! Busy pouring ale, but well." in fresh
    assert (part_of_day(7), part_of_day(13), part_of_day(21)) == ("Good morning", "Good afternoon", "Good evening")


def test_a_greeting_is_answered_with_the_best_scored_line_not_generated():
    llm = FakeLLM(prefer="Very well")
    h = Harness(llm=llm)
    (ann,) = crowd(h, 1)
    mira = h.npc("Mira")
    generated = sum(1 for kw in llm.kwargs)
    h.tick(Say(ann, "Hello Mira, how are you today?", to=mira.id))
    prompt, priority = llm.prompts[-1]
    assert priority == 0 and '"Hello Mira, how are you today?"' in prompt   # a person's reply: HUMAN_REPLY
    got = answers_to(h.run(4), mira.id)
    assert list(got) == [ann] and len(got[ann]) == 1 and "P1! Very well, thank you! And you?" in got[ann][0]
    assert len(llm.kwargs) == generated                                     # nothing generated for it
    stats = h.minds.stats()["replies"]
    assert stats["chosen"] == 1 and stats["model"] == 0
    why = h.minds.minds["mira"].why[-1]
    assert why.outcome == "chosen" and why.chosen == got[ann][0] and len(why.candidates) >= 3
    # the line just said is not offered again (the gate's repeat check)
    llm.prefer = "Very well"
    h.tick(Say(ann, "Hello again Mira, how are you?", to=mira.id))
    again = answers_to(h.run(4), mira.id)[ann]
    assert len(again) == 1 and again[0] != got[ann][0] and "Very well" in again[0]


def test_a_failed_score_still_answers_with_the_first_line():
    llm = FakeLLM()
    h = Harness(llm=llm)
    (ann,) = crowd(h, 1)
    mira = h.npc("Mira")
    own = llm.score

    def failing(prompt, candidates, **kw):
        handle = own(prompt, candidates, **kw)
        handle._result.status = "overloaded"
        return handle
    llm.score = failing
    h.tick(Say(ann, "Thank you, Mira!", to=mira.id))
    got = answers_to(h.run(4), mira.id)
    why = h.minds.minds["mira"].why[-1]
    assert got == {ann: [why.candidates[0][0]]} and "P1" in got[ann][0]   # the first one offered


def test_in_a_crowd_greetings_are_generated_with_the_others_not_chosen_one_by_one():
    llm = FakeLLM(replies=[f"Welcome to the square, friend number {i}." for i in range(4)])
    h = Harness(llm=llm)
    people = crowd(h, 3)
    mira = h.npc("Mira")
    h.tick(*[Say(p, "Good morning, Mira!", to=mira.id) for p in people])
    got = answers_to(h.run(6), mira.id)
    assert sorted(got) == people and h.minds.stats()["replies"]["chosen"] == 0
    assert h.minds.stats()["replies"]["model"] == 3
