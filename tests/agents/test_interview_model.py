"""The interview's choice with the real embedded model (agents/interview.py):
an NPC who was told of a feast answers with what it was told, over another
event it remembers; one that remembers no event answers with what relates
to the question; one who heard nothing of it says so."""
from __future__ import annotations

import time

import pytest

from agents.interview import NOT_HEARD, answer_from, ask
from agents.memory import MemoryStream
from agents.personas import load_personas

pytestmark = pytest.mark.model

PEOPLE = {p.name: p for p in load_personas()}
QUESTION = "Is anything special happening soon?"
TOLD = 'Tomas said "There is a harvest feast at the tavern at 18:00 on day 1." to me.'
RYE = 'Mira said "Something special is coming soon: rye bread." to me.'
DANCE = 'Mira said "There was a dance at the square at 20:00 last week." to me.'


def remembering(name: str, *texts: str) -> MemoryStream:
    s = MemoryStream(name)
    for text in PEOPLE[name].memories:
        s.add(480, "seed", text, 5)
    for i, text in enumerate(("Mira arrived.", "I talked with Pell.", *texts, "Oda left.")):
        s.add(600 + 10 * i, "observation", text, 3)
    return s


def answered(llm, name: str, memory: MemoryStream):
    asked = ask(llm, PEOPLE[name], memory, QUESTION, 900, "day 0 15:00")
    deadline = time.monotonic() + 120
    while not asked.done():
        assert time.monotonic() < deadline, "no score within 120 s"
        time.sleep(0.02)
    return asked, *asked.answer()


def test_an_npc_told_of_the_feast_answers_with_it_and_one_who_was_not_has_not_heard(llm):
    asked, answer, source = answered(llm, "Elena", remembering("Elena", RYE, DANCE, TOLD))
    # asked what is on, an NPC that remembers events answers from them: the dance is
    # a real rival (an occasion and an hour), the rye bread (no event) is not a candidate
    assert [a for a, _ in asked.options][-1] == NOT_HEARD
    assert answer_from(DANCE) in [a for a, _ in asked.options] and answer_from(RYE) not in [a for a, _ in asked.options]
    assert answer == "Tomas told me there is a harvest feast at the tavern at 18:00 on day 1." and source.text == TOLD
    asked, answer, source = answered(llm, "Elena", remembering("Elena", RYE))
    assert answer == answer_from(RYE) and source.text == RYE   # no event remembered: what relates
    asked, answer, source = answered(llm, "Bram", remembering("Bram"))
    assert (answer, source) == (NOT_HEARD, None)
