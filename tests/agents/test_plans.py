"""Day plans and meetings, with a FAKE model (tests/agents/fake_llm.py) that
scores one label best: the candidates come from the persona and the map,
the chosen plan is a SetPlan input the world holds (and a replay applies),
and the NPC then lives by it."""
from __future__ import annotations

import msgpack

from agents.facts import places_asked
from agents.personas import load_personas
from agents.plans import day_candidates, meeting_asked, meeting_candidates, routine_steps, step_at
from server.world.inputs import Join, Say, SetPlan, from_record, to_record
from server.world.village import village
from server.world.world import World
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import Harness

PERSONAS = {p.name: p for p in load_personas()}
PLACES = set(village().places)
TICKS_PER_GAME_MINUTE = 120


def test_candidates_come_from_the_routine_and_the_map():
    mira = PERSONAS["Mira"]
    cands = day_candidates(mira, PLACES)
    assert cands[0] == ("keep to the usual day", routine_steps(mira))
    evening = step_at(routine_steps(mira), 18)[1]
    for label, steps in cands[1:]:
        place = label.rsplit(" ", 1)[-1]
        assert place in PLACES and place != evening and step_at(steps, 18)[1] == place
        assert step_at(steps, 9) == step_at(routine_steps(mira), 9)  # the rest of the day stays


def test_a_meeting_is_read_from_the_line_and_resumes_the_plan_after_it():
    def asked(text):
        return meeting_asked(text, PLACES, places_asked)
    assert asked("Mira, meet me at the well at noon") == ("well", 12)
    assert asked("See you at the tavern at 3?") == ("tavern", 15)
    assert asked("meet me at the pond at 7 pm") == ("pond", 19)
    assert asked("meet me at the pond") is None and asked("the pond at noon is nice") is None
    steps = routine_steps(PERSONAS["Mira"])
    _, met = meeting_candidates(steps, "Ann", "well", 12)[1]
    assert step_at(met, 12) == (12, "well", "meeting Ann")
    assert step_at(met, 13)[1:] == step_at(steps, 13)[1:]


def test_on_a_new_day_mira_plans_by_score_and_lives_by_the_plan():
    llm = FakeLLM(prefer="tavern")
    h = Harness(names=("Mira",), llm=llm)
    mira = h.npc("Mira")
    h.run(2)
    assert not any(isinstance(o, SetPlan) for o in h.outputs)  # the day it arrives it keeps its routine
    h.world.tick = (24 * 60 + 9 * 60 - h.world.rules.start_minute) * TICKS_PER_GAME_MINUTE  # day 1, 09:00
    out = h.run(4)
    plans = [o for o in out if isinstance(o, SetPlan)]
    assert len(plans) == 1 and plans[0].why == "spend the evening at the tavern"
    assert step_at(h.world.plans[mira.id], 18)[1] == "tavern"
    assert "A new day begins for Mira." in llm.prompts[-1][0]
    h.world.tick = (24 * 60 + 18 * 60 + 5 - h.world.rules.start_minute) * TICKS_PER_GAME_MINUTE
    h.run(2)
    assert h.minds.by_entity[mira.id].activity == "spending the evening at the tavern"
    assert h.minds.stats()["plans"]["made"] == 1
    # the plan is world state a replay reproduces from the logged input
    kind, data = to_record(plans[0])
    w = World(village(), seed=3)
    w.begin_tick()
    assert w.apply(Join(mira.id, "Mira", mira.x, mira.y, npc=True)) is None
    assert w.apply(from_record(kind, msgpack.unpackb(msgpack.packb(data)))) is None
    assert w.plans[mira.id] == h.world.plans[mira.id]


def test_asked_to_meet_she_decides_by_score_and_her_plan_says_so():
    h = Harness(names=("Mira",), llm=FakeLLM(prefer="meet"))
    mira = h.npc("Mira")
    h.tick(Join(1, "Ann", mira.x + 1, mira.y))
    h.tick(Say(1, "Mira, meet me at the well at noon, will you?", to=mira.id))
    out = h.run(8)
    plans = [o for o in out if isinstance(o, SetPlan)]
    assert plans and plans[-1].why == "meet Ann at the well at 12:00"
    assert step_at(h.world.plans[mira.id], 12) == (12, "well", "meeting Ann")
    assert h.minds.stats()["plans"]["changed"] == 1


def test_the_world_refuses_a_plan_that_does_not_fit_the_map():
    w = World(village(), seed=1)
    w.begin_tick()
    assert w.apply(Join(5, "Mira", *village().places["square"].entry, npc=True)) is None
    for steps in [(), ((9, "moon", "flying"),), ((9, "well", "x"), (8, "square", "y")), ((9, "well", "x" * 61),)]:
        assert w.apply(SetPlan(5, steps)).code == "bad_value"
    assert w.plans == {}
