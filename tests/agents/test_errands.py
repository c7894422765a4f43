"""Unit tests of NPCs answering quests, with the FAKE model of
tests/agents/fake_llm.py (agent logic only): a quest an NPC could answer is
an important memory; it re-plans (keep the plan, or take the goods to the
board, scored); the chosen plan is a SetPlan input it walks by; at the
board it turns the quest in and the world pays it. One that keeps its plan
stays put; each quest is considered once."""
from __future__ import annotations

from agents.errands import ERRAND_IMPORTANCE
from protocol.board import BOARD_PLACE
from server.world.catalog import load_goods
from server.world.economy import Economy
from server.world.inputs import PostQuest, SetPlan, TurnIn
from server.world.village import village
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import Harness

BAKERY = village().places["bakery"].entry


def village_with_quest(prefer: str) -> tuple[Harness, int, int]:
    h = Harness(names=("Mira", "Oda"), llm=FakeLLM(prefer=prefer), positions={"Mira": BAKERY, "Oda": (62, 48)})
    h.world.economy = Economy(load_goods())
    mira, oda = h.npc("Mira").id, h.npc("Oda").id
    h.world.economy.purse(mira).coins = 50
    h.world.economy.purse(oda).add("eggs", 5)
    h.run(2)
    h.tick(PostQuest(mira, "eggs", 3, 8))
    return h, mira, oda


def test_an_npc_holding_the_goods_replans_walks_to_the_board_and_is_paid():
    h, mira, oda = village_with_quest(prefer="take")
    memories = h.minds.minds["oda"].memory.memories
    assert any(m.text == "Mira asked on the notice board for 3 eggs, for 8 coins." and
               m.importance == ERRAND_IMPORTANCE for m in memories)
    assert not any("asked on the notice board" in m.text and m.importance == ERRAND_IMPORTANCE
                   for m in h.minds.minds["mira"].memory.memories)  # not its own
    out = h.run(300)
    (plan,) = [o for o in out if isinstance(o, SetPlan) and o.entity == oda]
    assert any(place == BOARD_PLACE and activity == "bringing 3 eggs for Mira" for _, place, activity in plan.steps)
    (turn_in,) = [o for o in out if isinstance(o, TurnIn)]
    assert turn_in.entity == oda
    eco = h.world.economy
    assert eco.purse(oda).coins == 8 and eco.purse(oda).goods["eggs"] == 2 and eco.purse(mira).goods["eggs"] == 3
    assert h.world.board.quests == {} and h.world.board.done == 1
    assert h.minds.talk.plans["errand"] == 1


def test_an_npc_that_keeps_its_plan_stays_and_considers_the_quest_once():
    h, mira, oda = village_with_quest(prefer="keep")
    out = h.run(300)
    assert not [o for o in out if isinstance(o, TurnIn)]
    assert len(h.world.board.quests) == 1
    chose = [w for w in h.minds.minds["oda"].why if w.kind == "choice" and "take 3 eggs" in str(w.candidates)]
    assert len(chose) == 1 and chose[0].chosen == "keep to the plan"
