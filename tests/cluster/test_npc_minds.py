"""A region's NPC minds leaving and arriving (server/cluster/region_npcs.py)
with the model's minds (`MindsSystem`), a unit test of the agent logic over
the FAKE model of tests/agents (no NATS, no region): transient things end
with their defined outcomes, the state is bound into another MindsSystem;
speech heard across a border reaches a mind, which answers across it."""
from __future__ import annotations

from agents.minds import MindBudget, MindsSystem
from server.cluster.region_npcs import MAX_SERVE_WAIT_TICKS, RegionNpcs
from server.world.inputs import Join, Say
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import PERSONAS, Harness, says


def test_leaving_ends_transient_things_and_the_mind_arrives_whole():
    budget = MindBudget(max_lines=40, line_gap_ticks=2, reply_candidates=1)
    h = Harness(names=("Mira", "Tomas"), llm=FakeLLM(replies=[f"Line {i} of our chat." for i in range(60)],
                                                      prefer="greet", ready_after=30), budget=budget,
                positions={"Mira": (60, 48), "Tomas": (62, 48)})
    npcs = RegionNpcs(h.minds, list(PERSONAS.values()), set(h.world.map.places))
    for _ in range(200):
        h.tick()
        if h.minds.minds["mira"].conversation is not None:
            break
    mira = h.minds.minds["mira"]
    assert mira.conversation is not None
    mid = mira.entity
    h.tick(Join(1, "Ann", 60, 49))
    h.tick(Say(1, "Mira, where is the well?", to=mid))
    assert mira.serving_people and mira.conversation is not None
    partner = mira.conversation.partner_name   # Ann's question may have taken the chat over
    handles = [j.handle for j in mira.reply_jobs.values()] + ([mira.job.handle] if mira.job else [])
    assert handles
    # people wait for her answer: she stays (on a foreign cell) a while, then goes
    first = h.world.tick
    assert not npcs.ready_to_leave(h.world, mid)
    h.world.tick = first + MAX_SERVE_WAIT_TICKS - 1
    assert not npcs.ready_to_leave(h.world, mid)
    h.world.tick = first + MAX_SERVE_WAIT_TICKS
    assert npcs.ready_to_leave(h.world, mid)
    remembered = len(mira.memory.memories)
    state = npcs.leaving(h.world, mid)
    assert all(x.cancelled for x in handles)                  # in flight: cancelled, results dropped
    assert not mira.waiting and not mira.reply_jobs and mira.job is None and npcs.dropped_waiting == 1
    assert mira.conversation is None and mira.cooldown_until.get(h.npc(partner).id, 0) > h.world.tick
    assert "mira" not in h.minds.minds and mid not in h.minds.by_entity and mira.entity is None
    assert npcs.moves.names == {"Mira"}
    assert len(state["memories"]) == remembered + 1 and state["memories"][-1][3] == f"I talked with {partner}."
    # another region's minds take it in and bind it
    other = MindsSystem([PERSONAS["Bram"]], FakeLLM(), seed=2, budget=budget)
    there = RegionNpcs(other, list(PERSONAS.values()), set(h.world.map.places))
    arrived = there.check_arrival({"kind": "npc", "name": "Mira", "mind": state})
    assert "mira" not in other.minds                          # checked, not bound yet
    there.bind(77, arrived)
    assert other.minds["mira"] is arrived and other.by_entity[77] is arrived and arrived.entity == 77
    assert [m.text for m in arrived.memory.memories] == [row[3] for row in state["memories"]]
    assert len(arrived.memory.unsaved) == len(state["memories"]) and there.moves.names == {"Mira"}
    assert arrived.cooldown_until == mira.cooldown_until


def test_speech_heard_across_a_border_reaches_the_mind_and_is_answered_there():
    """A neighbour's line within hearing of Mira (RegionNpcs.heard_across):
    her mind hears it at the next agents phase and answers the speaker, who
    stands across the border (the world's resolver knows them); garbage and
    lines nobody with a mind hears are dropped; what waits is bounded."""
    from agents.perception import MAX_HEARD_ACROSS
    from server.cluster.ghosts import Row
    from server.cluster.region_npcs import RoutineMinds

    h = Harness(names=("Mira",), llm=FakeLLM(replies=["The well is by the pond."]), positions={"Mira": (66, 48)})
    ann = Row(7, "player", "Ann", 60, 48, 0)
    h.world.foreign = {7: ann}.get
    npcs = RegionNpcs(h.minds, list(PERSONAS.values()), set(h.world.map.places))
    mid = h.npc("Mira").id
    h.tick()                                                    # her mind is bound to her entity
    ev = {"kind": "say", "tick": 1, "from": 7, "name": "Ann", "text": "Mira, where is the well?", "to": mid,
          "to_name": "Mira", "chat": 5, "x": 60, "y": 48}
    npcs.heard_across(dict(ev, **{"from": "7"}), [mid])        # garbage from a neighbour
    npcs.heard_across(ev, [])                                   # nobody here with a mind hears it
    assert not h.minds.senses.across
    npcs.heard_across(ev, [mid])
    assert len(h.minds.senses.across) == 1
    said = []
    for _ in range(20):
        said += says(h.tick(), mid)
        if said:
            break
    assert [s.to for s in said] == [7] and said[0].text          # an answer (the model's or from facts), to Ann
    assert any(e["kind"] == "say" and (e["to"], e["to_name"]) == (7, "Ann") for e in h.world.events)
    assert any("Ann said" in m.text and "to me" in m.text for m in h.minds.minds["mira"].memory.memories)
    for i in range(MAX_HEARD_ACROSS + 10):
        npcs.heard_across(dict(ev, chat=100 + i), [mid])
    assert len(h.minds.senses.across) == MAX_HEARD_ACROSS
    routine = RegionNpcs(RoutineMinds([PERSONAS["Mira"]], 1), list(PERSONAS.values()), set(h.world.map.places))
    routine.heard_across(ev, [mid])                             # routine minds hear no speech: nothing to do


def test_a_person_heard_across_a_border_before_their_ghost_arrives_is_answered():
    """The neighbour's event says who spoke (`who`, from the speaker's region):
    Mira knows a person asked her even though her region's border view does
    not show them yet, and answers once it does. Without `who`, she would
    only remember the line."""
    from server.cluster.ghosts import Row

    h = Harness(names=("Mira",), llm=FakeLLM(replies=["The well is by the pond."]), positions={"Mira": (66, 48)})
    seen: dict[int, Row] = {}
    h.world.foreign = seen.get                                    # Ann's ghost has not arrived
    npcs = RegionNpcs(h.minds, list(PERSONAS.values()), set(h.world.map.places))
    mid = h.npc("Mira").id
    h.tick()
    ev = {"kind": "say", "tick": 1, "from": 7, "name": "Ann", "text": "Mira, where is the well?", "to": mid,
          "to_name": "Mira", "chat": 5, "x": 60, "y": 48, "who": "player"}
    npcs.heard_across(ev, [mid])
    h.tick()                                                      # heard: a person waits for her answer
    assert h.minds.minds["mira"].serving_people, "a person's question across the border was not queued"
    seen[7] = Row(7, "player", "Ann", 60, 48, 0)                  # the ghost arrives
    said = []
    for _ in range(20):
        said += says(h.tick(), mid)
        if said:
            break
    assert [s.to for s in said] == [7]
