"""The school with a FAKE model (tests/agents/fake_llm.py) for the one
judgement it scores: lessons and questions from the data file, answers
judged by their words first, a wrong one told the answer, progress kept in
the world as logged `Learn` inputs (so it replays and survives restarts),
and "how am I doing?" answered from it."""
from __future__ import annotations

from agents.school import holds_answer, load_lessons, next_question
from server.world.inputs import Join, Learn, Say
from server.world.world import World
from tests.agents.fake_llm import FakeLLM
from tests.agents.test_minds import Harness, says

LESSONS = load_lessons()
ANN = 1


def school(llm: FakeLLM) -> Harness:
    h = Harness(names=("Elena",), llm=llm)
    elena = h.npc("Elena")
    h.tick(Join(ANN, "Ann", elena.x + 1, elena.y))
    h.run(2)
    return h


def talk(h: Harness, text: str) -> str:
    out = h.tick(Say(ANN, text, to=h.npc("Elena").id)) + h.run(3)
    return says(out, h.npc("Elena").id)[-1].text


def test_answers_are_judged_by_their_words_first():
    q = LESSONS[0].questions[0]
    assert holds_answer("It's the square, I think!", q) and holds_answer("the village square", q)
    assert not holds_answer("the pond", q) and not holds_answer("", q)
    assert next_question(LESSONS, {}) == (LESSONS[0], 0)
    assert next_question(LESSONS, {LESSONS[0].topic: {0: True, 1: False}}) == (LESSONS[1], 0)
    everything_right = {lesson.topic: {i: True for i in range(len(lesson.questions))} for lesson in LESSONS}
    assert next_question(LESSONS, everything_right) is None


def test_a_lesson_a_right_and_a_wrong_answer_and_the_record():
    llm = FakeLLM(prefer="wrong")
    h = school(llm)
    first = LESSONS[0]
    assert talk(h, "Can you teach me something?") == \
        f"{first.teach} Here's a question, Ann: {first.questions[0].q}"
    assert talk(h, "The square!") == "That's right, Ann: the square."
    assert h.world.progress.summary(ANN) == {first.topic: [1, 0]}
    assert talk(h, "Quiz me again") == f"Here's a question, Ann: {first.questions[1].q}"
    before = len(llm.prompts)
    assert talk(h, "The bakery") == "Not quite, Ann: the answer is the tavern."
    assert len(llm.prompts) == before + 1 and "The correct answer is: the tavern." in llm.prompts[-1][0]
    assert h.world.progress.summary(ANN) == {first.topic: [1, 1]}
    assert [o for o in h.outputs if isinstance(o, Learn)] == [Learn(ANN, h.npc("Elena").id, first.topic, 0, True),
                                                            Learn(ANN, h.npc("Elena").id, first.topic, 1, False)]
    assert talk(h, "How am I doing?") == \
        f"You've answered 1 of 2 right, Ann: {first.topic} 1 of 2. There's more to learn when you're ready."


def test_progress_is_world_state_a_snapshot_keeps_and_only_a_teacher_writes():
    h = school(FakeLLM(prefer="right"))
    talk(h, "teach me")
    talk(h, "square")
    snap = h.world.snapshot()
    again = World.restore(h.world.map, snap)
    assert again.progress.summary(ANN) == h.world.progress.summary(ANN) == {LESSONS[0].topic: [1, 0]}
    assert again.state_hash() == h.world.state_hash()
    h.world.begin_tick()
    assert h.world.apply(Learn(ANN, ANN, "bread", 0, True)).code == "no_such_entity"  # Ann is no teacher
