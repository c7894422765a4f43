"""Known events (agents/events.py) and the plans they offer (agents/plans.py),
and the measures read from memories (agents/measures.py, the judge of
agents/interview.py). Agent logic only: the one test that runs minds uses
the FAKE model (tests/agents/fake_llm.py) to script the scored choice."""
from __future__ import annotations

from agents.events import KnownEvents, carries, event_mentioned, invite_line
from agents.interview_judge import judge, needs_score
from agents.measures import DiffusionTracker, NetworkTracker
from agents.memory import MemoryStream
from agents.mind import Mind
from agents.personas import load_personas
from agents.plans import day_candidates, event_candidates, routine_steps, step_at
from agents.scenario import Fact
from server.world.village import village

PLACES = set(village().places)
DAY0_NOON, DAY1_NOON = 12 * 60, 1440 + 12 * 60
PEOPLE = {p.name: p for p in load_personas()}
FEAST = Fact("feast", "Tomas holds a harvest feast at the tavern at 18:00 on day 1.", ("feast",), ("Tomas",),
             630, "Messenger", "Is anything special happening soon?", "tavern", 1, 18)


def test_an_event_is_recognised_with_its_place_hour_and_day():
    ev = event_mentioned('Messenger said "Tomas holds a harvest feast at the tavern at 18:00 on day 1."', DAY0_NOON, PLACES)
    assert (ev.what, ev.place, ev.day, ev.hour) == ("harvest feast", "tavern", 1, 18)
    assert event_mentioned("Come to my party at the pond at 6 pm tomorrow!", DAY0_NOON, PLACES).key == ("pond", 1, 18)
    tonight = event_mentioned("A dance at the square at 20:00 tonight.", DAY0_NOON, PLACES)
    assert tonight.key == ("square", 0, 20)
    # the place the occasion is at, not another one the line names first (seen in a party run:
    # 'at the market at 18:00' was planned by the NPCs who heard this line)
    heard = ("Vera said \"As I was making my way around the market I heard the news: "
             "it's a harvest feast at the tavern at 18:00 on day 1\"")
    assert event_mentioned(heard, DAY0_NOON, PLACES).key == ("tavern", 1, 18)
    assert event_mentioned("At the pond, the summer fair starts at 9 am tomorrow.", DAY0_NOON, PLACES).key == \
        ("pond", 1, 9)
    # no occasion, no place, or no hour: not an event
    assert event_mentioned("I will be at the tavern at 18:00.", DAY0_NOON, PLACES) is None
    assert event_mentioned("The feast is at 18:00.", DAY0_NOON, PLACES) is None
    assert event_mentioned("The feast at the tavern was lovely.", DAY0_NOON, PLACES) is None


def test_the_invitation_line_carries_the_event_and_is_recognised_again():
    ev = event_mentioned("Tomas holds a harvest feast at the tavern at 18:00 on day 1.", DAY0_NOON, PLACES)
    line = invite_line(ev)
    assert carries(line, ev) and event_mentioned(line, DAY0_NOON, PLACES).key == ev.key
    assert not carries("What a lovely day for the harvest!", ev)
    assert not carries("The feast is at the pond at 18:00 on day 1.", ev)


def test_known_events_remember_news_once_per_partner_and_flag_todays():
    known = KnownEvents()
    ev = known.heard("There is a harvest feast at the tavern at 18:00 on day 1.", DAY0_NOON, PLACES)
    assert ev is not None and known.pending is None  # not today: the day's plan will offer it
    assert known.heard("There is a harvest feast at the tavern at 18:00 on day 1.", DAY0_NOON, PLACES) is None
    assert known.news_for("Bram", DAY0_NOON) == ev
    known.told_to(ev, "Bram")
    assert known.news_for("bram", DAY0_NOON) is None and known.news_for("Oda", DAY0_NOON) == ev
    assert known.news_for("Oda", ev.minute + 1) is None  # past events are no news
    assert known.heard("A dance at the square at 20:00 tonight.", DAY1_NOON, PLACES) is not None
    assert known.pending is not None and known.pending.key == ("square", 1, 20)
    assert known.heard("The old feast at the tavern at 10:00 on day 0.", DAY1_NOON, PLACES) is None  # past


def test_a_known_event_is_a_candidate_plan_that_goes_there_for_its_hour():
    ilse = PEOPLE["Ilse"]
    usual = day_candidates(ilse, PLACES)
    ev = event_mentioned("There is a harvest feast at the tavern at 18:00 on day 1.", DAY0_NOON, PLACES)
    cands = day_candidates(ilse, PLACES, [ev])
    assert [label for label, _ in cands][:2] == ["keep to the usual day", "go to the harvest feast at the tavern at 18:00"]
    assert cands[2:] == usual[1:]  # the evenings elsewhere are still offered
    steps = cands[1][1]
    assert step_at(steps, 18.5)[1] == "tavern" and step_at(steps, 19)[1] == step_at(routine_steps(ilse), 19)[1]
    keep, go = event_candidates(routine_steps(ilse), ev)
    assert keep[1] == routine_steps(ilse) and step_at(go[1], 18)[1] == "tavern"


def test_hearing_of_an_event_today_makes_the_npc_choose_and_the_choice_is_a_logged_plan():
    """FAKE model: it prefers the candidate naming the feast."""
    from agents.minds import MindsSystem
    from server.world.inputs import Join, Say, SetPlan
    from server.world.world import World
    from tests.agents.fake_llm import FakeLLM

    world = World(village(), seed=1)
    llm = FakeLLM(prefer="feast")
    minds = MindsSystem([PEOPLE["Ilse"]], llm, clock=lambda: world.tick / 20)
    world.begin_tick()
    tavern = world.map.places["chapel"].entry
    world.apply(Join(1, "Ilse", *tavern, npc=True))
    world.apply(Join(2, "Ann", *tavern))
    minds(world)
    world.begin_tick()
    world.apply(Say(2, "There is a harvest feast at the tavern at 18:00 today. Do come!"))
    plans = []
    for _ in range(80):
        for inp in minds(world):
            if isinstance(inp, SetPlan):
                plans.append(inp)
            world.apply(inp)
        minds.observe(world)
        world.simulate()
        world.begin_tick()
    assert plans and step_at(plans[-1].steps, 18)[1] == "tavern", plans
    assert minds.talk.plans["event"] == 1
    assert any("feast" in m.text for m in minds.minds["ilse"].memory.memories)


def test_density_counts_who_can_name_whom_but_not_who_was_seen_arriving():
    a, b, c = (Mind(PEOPLE[n], MemoryStream(n)) for n in ("Mira", "Tomas", "Elena"))
    net = NetworkTracker([a, b, c])  # Mira's persona knows Tomas and Elena; Tomas's knows Mira; Elena's none of these
    before = net.density()
    assert net.known["Mira"] == {"Tomas", "Elena"} and "Mira" in net.known["Tomas"]
    c.memory.add(600, "observation", "Tomas arrived.", 1)
    net.update()
    assert net.density() == before
    c.memory.add(601, "dialogue", "I talked with Tomas.", 4)
    net.update()
    assert "Tomas" in net.known["Elena"] and net.density() > before


def test_diffusion_records_when_each_npc_first_held_the_fact():
    a, b = Mind(PEOPLE["Mira"], MemoryStream("Mira")), Mind(PEOPLE["Bram"], MemoryStream("Bram"))
    track = DiffusionTracker([FEAST], [a, b])
    track.update(600)
    b.memory.add(700, "observation", 'Tomas said "There is a harvest feast at the tavern" to me.', 4)
    track.update(720)
    assert track.first["feast"] == {"Bram": 720} and [c["feast"] for _, c in track.timeline] == [0, 1]
    assert track.knew_by(FEAST, 700) == set() and track.knew_by(FEAST, 720) == {"Bram"}


def test_the_interview_judge_flags_claims_no_memory_supports():
    knows = ["Tomas said \"There is a harvest feast at the tavern at 18:00 on day 1.\" to me."]
    q = FEAST.question
    ok = judge("Yes, the harvest feast at the tavern at 18:00!", FEAST, q, knows, None)
    assert ok["confirms"] and not ok["hallucinated"]
    made_up = judge("Yes, there is a feast at the tavern.", FEAST, q, ["I baked bread."], None)
    assert made_up["claims"] and made_up["hallucinated"] and not made_up["confirms"]
    stray = judge("The feast at the tavern starts at 20:00.", FEAST, q, knows, None)
    assert stray["hallucinated"] and "hour" in stray["reason"]
    honest = judge("I have not heard of anything.", FEAST, q, ["I baked bread."], None)
    assert not honest["claims"] and not honest["hallucinated"]
    # an answer naming nothing of the fact but saying yes: the model's score judges it
    assert needs_score("Yes, I heard about it!", FEAST, q) and not needs_score("No idea.", FEAST, q)
    assert judge("Yes, I heard about it!", FEAST, q, ["I baked bread."], True)["hallucinated"]
    assert not judge("Yes, I heard about it!", FEAST, q, ["I baked bread."], False)["hallucinated"]
