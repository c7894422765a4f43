"""A mind as plain data (agents/mind_state.py): a round trip keeps its
memories, plans, events, cooldowns and the rest; a bad state is refused
with a clear error and changes nothing; the size is bounded."""
from __future__ import annotations

import copy
import json

import msgpack
import pytest

from agents.memory import MemoryStream
from agents.mind import Mind
from agents.mind_state import MAX_STATE_BYTES, MindStateError, mind_from_dict, mind_to_dict, state_bytes
from agents.personas import load_personas
from server.world.village import village

PERSONAS = {p.name: p for p in load_personas()}
PLACES = set(village().places)


def a_mind() -> Mind:
    p = PERSONAS["Tomas"]
    mind = Mind(p, MemoryStream(p.name))
    mind.memory.add(480.0, "seed", "I keep the tavern by the square.", 5)
    mind.memory.add(500.0, "dialogue", "Ann asked me about the well.", 6)
    mind.memory.add(520.5, "observation", "Bram walked by with a hammer.", 2)
    mind.memory.memories[1].last_access = 530.0
    mind.plan_day = 0
    mind.meeting = ("Ann", "market", 15)
    ev = mind.events.heard("There is a harvest feast at the tavern at 18:00 today.", 600.0, PLACES)
    assert ev is not None
    mind.events.told_to(ev, "Bram")
    mind.cooldown_until = {7: 1000, 9: 10}
    mind.weighed_until = {8: 700, 11: 20}   # kept to its work rather than greet them (agents/npc_talk.py)
    mind.next_initiative_at = 105.0
    mind.activity = "serving ale"
    mind.heading_to = "market"
    mind.guiding = (12, "Ann", "market", 900)
    mind.recent_lines.extend(["Good day!", "The feast is at six."])
    return mind


def test_round_trip_keeps_memories_plans_events_and_the_rest():
    mind = a_mind()
    d = mind_to_dict(mind, now_s=100.0, tick=500)
    d = msgpack.unpackb(msgpack.packb(d, use_bin_type=True), raw=False)   # as it travels
    back = mind_from_dict(d, PERSONAS["Tomas"], now_s=2000.0, places=PLACES)
    assert [(m.id, m.minute, m.kind, m.text, m.importance, m.last_access) for m in back.memory.memories] == \
        [(m.id, m.minute, m.kind, m.text, m.importance, m.last_access) for m in mind.memory.memories]
    assert back.memory.next_id == mind.memory.next_id == 4
    assert back.memory.importance_since_reflection == mind.memory.importance_since_reflection == 13.0
    assert back.memory.unsaved == []          # the caller decides what to write
    assert mind_to_dict(back, 2000.0, 500) == dict(d, initiative_in=pytest.approx(5.0))   # again: the same state
    assert back.memory.add(700.0, "seed", "new", 1).id == 4   # ids go on
    assert back.plan_day == 0 and back.meeting == ("Ann", "market", 15)
    assert back.events.events == mind.events.events and back.events.told == {(("tavern", 0, 18), "bram")}
    assert back.events.pending == mind.events.pending is not None
    assert back.events.news_for("Bram", 600.0) is None and back.events.news_for("Oda", 600.0) is not None
    assert back.cooldown_until == {7: 1000}    # 9's ran out at tick 10
    assert back.weighed_until == {8: 700}      # 11's ran out at tick 20; ticks are the world's, shared by regions
    assert back.next_initiative_at == pytest.approx(2005.0)   # 5 s from now, on the new clock
    assert (back.activity, back.heading_to, back.guiding) == ("serving ale", "market", (12, "Ann", "market", 900))
    assert list(back.recent_lines) == ["Good day!", "The feast is at six."]
    assert back.job is None and back.conversation is None and not back.waiting and back.entity is None


def test_an_empty_mind_round_trips():
    p = PERSONAS["Oda"]
    mind = Mind(p, MemoryStream(p.name))
    back = mind_from_dict(mind_to_dict(mind, 0.0, 0), p, 0.0)
    assert back.memory.memories == [] and back.memory.next_id == 1 and back.meeting is None


def _bad(d, path, value):
    d = copy.deepcopy(d)
    target = d
    for k in path[:-1]:
        target = target[k]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


@pytest.mark.parametrize("path, value, words", [
    (("v",), 3, "version"),
    (("v",), True, "version"),
    (("v",), 2.0, "version"),
    (("name",), "Mira", "not 'Tomas'"),
    (("memories",), "lots", "memories"),
    (("memories", 0), [1, 2, 3], "rows of 6"),
    (("memories", 1, 0), 1, "ids must increase"),
    (("memories", 0, 3), "x" * 2001, "memory 0 text"),
    (("memories", 0, 4), 11, "importance"),
    (("memories", 0, 1), float("nan"), "finite"),
    (("memories", 0, 2), 5, "kind"),
    (("next_id",), 2, "next_id"),
    (("meeting",), ["Ann", "the moon", 15], "unknown place"),
    (("events", 0, 3), 25, "hour"),
    (("told", 0, 1), 3, "does not know"),
    (("pending",), ["tavern", 0, 19], "does not know"),
    (("cooldowns",), [[0, 5]], "partner"),
    (("weighed",), KeyError, "malformed"),
    (("weighed",), {"8": 700}, "weighed"),
    (("weighed",), [[8, 700]] * 257, "weighed"),
    (("weighed", 0), [8], "rows of 2"),
    (("weighed", 0, 0), 0, "weighed 0 neighbour"),
    (("weighed", 0, 0), "8", "weighed 0 neighbour"),
    (("weighed", 0, 1), -1, "weighed 0 tick"),
    (("weighed", 0, 1), 700.5, "weighed 0 tick"),
    (("weighed", 0, 1), True, "weighed 0 tick"),
    (("initiative_in",), -1, "initiative_in"),
    (("heading_to",), "nowhere", "unknown place"),
    (("guiding",), [1, "Ann"], "guiding"),
    (("recent_lines",), ["a"] * 9, "recent_lines"),
    (("activity",), KeyError, "malformed"),
    (("plan_day",), True, "plan_day"),
])
def test_a_bad_state_is_refused_with_a_clear_error_and_changes_nothing(path, value, words):
    mind = a_mind()
    good = mind_to_dict(mind, 100.0, 500)
    bad = _bad(good, path, value)
    kept = copy.deepcopy(bad)
    before = mind_to_dict(mind, 100.0, 500)
    with pytest.raises(MindStateError, match=words if words != "malformed" else "malformed"):
        mind_from_dict(bad, PERSONAS["Tomas"], 0.0, places=PLACES)
    assert json.dumps(bad, default=str) == json.dumps(kept, default=str)   # the input is untouched
    assert mind_to_dict(mind, 100.0, 500) == before                        # and so is the mind
    mind_from_dict(good, PERSONAS["Tomas"], 0.0, places=PLACES)            # the good one still goes in


def test_a_version_1_state_is_taken_in_without_keep_cooldowns():
    # a handoff logged before "weighed" was added, sent again after an upgrade
    d = mind_to_dict(a_mind(), 100.0, 500)
    del d["weighed"]
    back = mind_from_dict(dict(d, v=1), PERSONAS["Tomas"], 0.0, places=PLACES)
    assert back.weighed_until == {} and back.cooldown_until == {7: 1000}
    with pytest.raises(MindStateError, match="missing or unknown"):   # but a version 2 state must carry them
        mind_from_dict(d, PERSONAS["Tomas"], 0.0, places=PLACES)
    with pytest.raises(MindStateError, match="missing or unknown"):   # and a version 1 state must not
        mind_from_dict(dict(mind_to_dict(a_mind(), 100.0, 500), v=1), PERSONAS["Tomas"], 0.0, places=PLACES)


def test_not_a_map_is_refused():
    with pytest.raises(MindStateError, match="map"):
        mind_from_dict([1, 2], PERSONAS["Tomas"], 0.0)


def test_the_state_is_bounded_in_bytes_shedding_the_least_important_old_memories():
    p = PERSONAS["Tomas"]
    mind = Mind(p, MemoryStream(p.name))
    for i in range(2000):
        mind.memory.add(480.0 + i, "observation", f"{i:04d} " + "y" * 600, 9 if i % 10 == 0 else 1)
    d = mind_to_dict(mind, 0.0, 0)
    assert state_bytes(d) <= MAX_STATE_BYTES
    kept = [row[0] for row in d["memories"]]
    assert 600 < len(kept) < 2000
    assert all(i in kept for i in range(1, 2001, 10))         # every important one stays
    assert kept == sorted(kept) and kept[-1] == 2000            # the newest stays
    back = mind_from_dict(d, p, 0.0)                            # and it is taken in
    assert len(back.memory.memories) == len(kept)
    too_big = dict(d, memories=[[i, 480.0, "seed", "z" * 2000, 1, 480.0] for i in range(1, 600)])
    with pytest.raises(MindStateError, match="bytes is over"):
        mind_from_dict(too_big, p, 0.0)
