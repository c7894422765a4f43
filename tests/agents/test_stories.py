"""The storyteller's evening tale, made of the day's real events (no model
is asked: every sentence is an event). Tested with the minds system and a
FAKE model that is never called for the tale (tests/agents/fake_llm.py)."""
from __future__ import annotations

from agents.stories import DayLog, tale
from server.world.inputs import Join
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import Harness, says

TICKS_PER_GAME_MINUTE = 120  # half a game second per tick


def at_the_tavern(hour: int) -> Harness:
    h = Harness(names=("Tomas",), llm=FakeLLM())
    tavern = h.world.map.places["tavern"]
    tomas = h.npc("Tomas")
    tomas.x, tomas.y = tavern.entry  # standing in it (as his routine has him in the evening)
    h.world.grid.move(tomas.id, tomas.x, tomas.y)
    h.world.tick = (hour * 60 - h.world.rules.start_minute) * TICKS_PER_GAME_MINUTE
    return h


def test_the_tale_tells_the_weightiest_events_in_the_order_they_happened():
    log = DayLog()
    log.add(600, "Bram and Pell had a chat", 1)
    log.add(610, "Ann bought 2 bread from Sanne for 8 coins", 3)
    log.add(620, "Ann bought 2 bread from Sanne for 8 coins", 3)  # the same event twice is told once
    log.add(700, "Bob learned about bread with Elena", 3)
    log.add(2000, "tomorrow's news", 3)                            # another day
    lines = tale(log.today(700), ["Ann"])
    assert lines == ["Gather round, Ann, and hear what happened in the village today!",
                     "First, Bram and Pell had a chat.", "Then, Ann bought 2 bread from Sanne for 8 coins.",
                     "And to end the day, Bob learned about bread with Elena."]
    assert tale([], ["Ann"]) == []


def test_tomas_tells_the_days_tale_at_the_tavern_once_an_evening_to_whoever_is_there():
    h = at_the_tavern(19)
    tomas = h.npc("Tomas")
    h.minds.tales.day_log.add(h.world.game_minutes - 300, "Ann bought 2 bread from Sanne for 8 coins", 3)
    out = h.run(5)
    assert says(out, tomas.id) == []  # nobody to tell it to
    h.tick(Join(1, "Ann", tomas.x + 1, tomas.y))
    out = h.run(200)
    told = [s.text for s in says(out, tomas.id)]
    assert told[0] == "Gather round, Ann, and hear what happened in the village today!"
    assert "First, Ann bought 2 bread from Sanne for 8 coins." in told
    assert "Ann came to the village." in " ".join(told)  # her arrival is an event of the day too
    assert h.minds.tales.told == 1
    assert says(h.run(200), tomas.id) == []  # one tale an evening
    assert any(w.kind == "story" for w in h.minds.by_entity[tomas.id].why)


def test_no_tale_before_the_evening():
    h = at_the_tavern(15)
    tomas = h.npc("Tomas")
    h.minds.tales.day_log.add(h.world.game_minutes - 60, "Ann bought 2 bread from Sanne for 8 coins", 3)
    h.tick(Join(1, "Ann", tomas.x + 1, tomas.y))
    assert [s for s in says(h.run(100), tomas.id) if s.text.startswith("Gather round")] == []
