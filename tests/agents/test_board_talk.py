"""Unit tests of the notice-board talk and moderation logic, with the FAKE
model of tests/agents/fake_llm.py (the real model's judgement is tested in
test_moderation_model.py): requests are parsed, listed words are withheld
without asking the model, the model's verdict pins or withholds, a failed
judgement pins nothing, and "any work?" is answered from the board."""
from __future__ import annotations

import pytest

from agents.board_talk import board_facts, notice_request
from agents.moderation import load_rules, word_check
from server.world.catalog import load_goods
from server.world.economy import Economy
from server.world.inputs import Join, PinNotice, PostQuest, Say
from tests.agents.fake_llm import FakeHandle, FakeLLM, FakeResult
from tests.agents.test_minds import Harness, says


@pytest.mark.parametrize("text, want", [
    ("Mira, put up a notice: lost grey cat near the pond", "lost grey cat near the pond"),
    ("could you write a notice saying Bread swap on Sunday", "Bread swap on Sunday"),
    ("please pin a note on the board: Choir at six", "Choir at six"),
    ('Post a notice "Found: a blue scarf"', "Found: a blue scarf"),
    ("can you put up a notice for me?", ""),
    ("post a notice", ""),
    ("where is the notice board?", None),
    ("I noticed the bakery is shut", None),
])
def test_notice_requests_are_parsed(text, want):
    assert notice_request(text) == want


@pytest.mark.parametrize("text, bad", [
    ("Lost grey cat near the pond", False), ("Essex apples for sale", False), ("Classic assassin tale", False),
    ("You are all sh1t", True), ("f.u.c.k the baker", True), ("f u c k", True), ("I will kill you Tomas", True),
    ("Free coins at www.scam.gg", True), ("x" * 141, True), ("", True),
])
def test_the_word_list_sees_through_disguises_and_not_inside_words(text, bad):
    assert (word_check(load_rules(), text) is not None) == bad


def village_with_ann(llm) -> tuple[Harness, int]:
    h = Harness(llm=llm)
    h.tick(Join(1, "Ann", 62, 48))
    h.run(2)
    return h, h.npc("Mira").id


def test_a_notice_the_model_finds_friendly_is_pinned_and_said_so():
    h, mira = village_with_ann(FakeLLM(prefer="friendly"))
    h.tick(Say(1, "Mira, put up a notice: Lost grey cat near the pond", to=mira))
    out = h.run(4)
    (pin,) = [o for o in out if isinstance(o, PinNotice)]
    assert (pin.entity, pin.author, pin.text) == (mira, 1, "Lost grey cat near the pond")
    assert [n.text for n in h.world.board.notices] == ["Lost grey cat near the pond"]
    (line,) = says(out, mira)
    assert "notice board" in line.text and line.to == 1
    desk = h.minds.desk.notices
    assert desk.log.checked == 1 and desk.log.total_withheld == 0
    assert h.minds.minds["mira"].why[-1].chosen == "pinned"


def test_listed_words_are_withheld_without_the_model_and_logged():
    llm = FakeLLM(prefer="friendly")
    h, mira = village_with_ann(llm)
    asked = len(llm.prompts)
    out = h.tick(Say(1, "Mira, put up a notice: the baker is a b1tch", to=mira)) + h.run(3)
    assert len(llm.prompts) == asked  # no model call
    assert not [o for o in out if isinstance(o, PinNotice)] and h.world.board.notices == []
    (line,) = says(out, mira)
    assert "rather not" in line.text
    (w,) = h.minds.desk.notices.log.withheld
    assert (w.author, w.writer, w.reason) == ("Ann", "Mira", "the word 'bitch'")


def test_a_notice_the_model_finds_hostile_is_withheld():
    h, mira = village_with_ann(FakeLLM(prefer="insulting"))
    out = h.tick(Say(1, "Mira, put up a notice: Pell is fat and stupid", to=mira)) + h.run(4)
    assert h.world.board.notices == [] and not [o for o in out if isinstance(o, PinNotice)]
    (w,) = h.minds.desk.notices.log.report()["withheld"]
    assert w["reason"] == "the model judged it hostile" and w["text"] == "Pell is fat and stupid"


class FailingScores(FakeLLM):
    def score(self, prompt, candidates, **kw):
        h = FakeHandle(99, FakeResult(status="deadline"), 1)
        self.handles.append(h)
        return h


def test_a_failed_judgement_pins_nothing():
    h, mira = village_with_ann(FailingScores())
    out = h.tick(Say(1, "Mira, put up a notice: Choir at six", to=mira)) + h.run(4)
    assert h.world.board.notices == [] and h.minds.desk.notices.log.total_withheld == 0
    (line,) = says(out, mira)
    assert "again" in line.text


def test_asking_without_words_asks_what_it_should_say():
    h, mira = village_with_ann(FakeLLM(prefer="friendly"))
    out = h.tick(Say(1, "Mira, could you post a notice?", to=mira)) + h.run(2)
    (line,) = says(out, mira)
    assert "what it should say" in line.text and h.world.board.notices == []


def test_any_work_is_answered_from_the_board():
    h, mira = village_with_ann(FakeLLM())
    assert board_facts(h.world, "is there any work for me?") == ["There are no quests on the notice board now."]
    assert board_facts(h.world, "where is the well?") == []
    h.world.economy = Economy(load_goods())
    h.world.economy.purse(mira).coins = 50
    assert h.world.apply(PostQuest(mira, "eggs", 3, 8)) is None
    assert board_facts(h.world, "any quests?") == ["On the notice board: Mira needs 3 eggs: bring them for 8 coins."]
    h.tick(Say(1, "Mira, is there any work?", to=mira))
    assert "Mira needs 3 eggs: bring them for 8 coins." in h.llm.prompts[-1][0]  # quoted to the model


def test_the_poster_remembers_its_quest_and_the_day_log_keeps_it():
    h, mira = village_with_ann(FakeLLM())
    h.world.economy = Economy(load_goods())
    h.world.economy.purse(mira).coins = 50
    h.tick(PostQuest(mira, "eggs", 3, 8))
    memories = [m.text for m in h.minds.minds["mira"].memory.memories]
    assert "I asked on the notice board for 3 eggs, for 8 coins." in memories
    assert any("asked on the notice board for 3 eggs" in e.text
               for e in h.minds.tales.day_log.today(h.world.game_minutes))


def test_the_board_and_the_school_are_summed_up_for_the_sim():
    from agents.board_talk import board_summary
    from agents.school import lessons_summary
    from server.world.inputs import Learn
    h, mira = village_with_ann(FakeLLM(prefer="friendly"))
    h.world.economy = Economy(load_goods())
    h.world.economy.purse(mira).coins = 50
    h.tick(PostQuest(mira, "eggs", 3, 8), Learn(1, mira, "map", 0, True), Learn(1, mira, "map", 1, False))
    h.tick(Say(1, "Mira, put up a notice: Choir at six", to=mira))
    h.run(4)
    assert board_summary(h.world, h.minds.desk.notices.log) == {
        "quests_posted": 1, "quests_completed": 0, "quests_open": 1, "notices_pinned": 1, "notices_checked": 1,
        "notices_withheld": 0}
    assert lessons_summary(h.world.progress) == {"learners": 1, "answers_right": 1, "answers_wrong": 1}
