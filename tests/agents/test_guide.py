"""An NPC asked to take someone somewhere, with a FAKE model
(tests/agents/fake_llm.py) that scores one label best: the rule tested is
that a walk chosen is a real walk that arrives and says so, and that the
way told is the map's."""
from __future__ import annotations

from server.world.inputs import Join, Say
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import Harness, says

ANN = 1


def at_square(llm: FakeLLM) -> Harness:
    h = Harness(names=("Mira",), llm=llm)
    mira = h.npc("Mira")
    h.tick(Join(ANN, "Ann", mira.x + 1, mira.y))
    h.run(2)
    return h


def test_asked_to_be_taken_to_the_smithy_mira_walks_there_and_says_so():
    h = at_square(FakeLLM(prefer="walk"))
    mira = h.npc("Mira")
    out = h.tick(Say(ANN, "Can you take me to the smithy?", to=mira.id)) + h.run(2)
    assert says(out, mira.id)[-1].text == "Follow me, Ann, I'll take you to the smithy."
    smithy = h.world.map.places["smithy"]
    arrived = []
    for _ in range(600):  # 30 s at 20 Hz: the walk takes a few seconds of ticks
        arrived += [s for s in says(h.tick(), mira.id) if s.text.startswith("Here we are")]
        if arrived:
            break
    assert arrived and arrived[0].text == "Here we are, Ann: the smithy."
    assert smithy.contains(mira.x, mira.y)
    report = h.minds.by_entity[mira.id].why
    assert any(w.kind == "guide" and w.chosen == "walk Ann to the smithy" for w in report)


def test_or_she_tells_the_way_from_the_map_and_stays():
    h = at_square(FakeLLM(prefer="tell"))
    mira = h.npc("Mira")
    start = (mira.x, mira.y)
    out = h.tick(Say(ANN, "Please show me the bakery", to=mira.id)) + h.run(40)
    line = says(out, mira.id)[-1].text
    assert line.startswith("The bakery is to the ") and line.endswith(", Ann.")
    assert (mira.x, mira.y) == start or not h.world.map.places["bakery"].contains(mira.x, mira.y)
    assert h.minds.by_entity[mira.id].guiding is None
