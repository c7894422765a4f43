"""Unit tests of the interview's agent logic (agents/interview.py) with the
FAKE model of tests/agents/fake_llm.py: the answer texts made from memories,
which memories may answer a question (a prior from the question and the
memories only), and the choice among the candidates by a scripted score.
The real model's choice is tested in test_interview_model.py."""
from __future__ import annotations

from types import SimpleNamespace

from agents.interview import NOT_HEARD, answer_from, ask, best_answer, recall, related, reported, run_interviews
from agents.memory import MemoryStream
from agents.personas import load_personas
from agents.scenario import Fact
from tests.agents.fake_llm import FakeLLM

PEOPLE = {p.name: p for p in load_personas()}
QUESTION = "Is anything special happening in the village soon?"
TOLD = 'Tomas said "There is a harvest feast at the tavern at 18:00 on day 1." to me.'
FEAST = Fact("feast", "Tomas holds a harvest feast at the tavern at 18:00 on day 1.", ("feast",), ("Tomas",),
             630, "Messenger", QUESTION, "tavern", 1, 18)


def stream(owner: str, *texts: str) -> MemoryStream:
    s = MemoryStream(owner)
    for i, text in enumerate(texts):
        s.add(600 + i, "observation", text, 3)
    return s


def finish(asked) -> tuple[str, object]:
    while not asked.done():
        pass
    return asked.answer()


def test_a_line_said_becomes_a_first_person_answer_that_carries_its_words():
    assert answer_from(TOLD) == "Tomas told me there is a harvest feast at the tavern at 18:00 on day 1."
    assert answer_from("Tomas said: There is a harvest feast at the tavern at 18:00 on day 2.") == \
        "Tomas said there is a harvest feast at the tavern at 18:00 on day 2."
    assert answer_from('Pell said "Everyone is coming to the dance."') == "Pell said everyone is coming to the dance."
    assert answer_from('I said "There is a feast at the tavern." to Mira.') == "I told Mira there is a feast at the tavern."
    # quoted where reported speech would garble it: a question, two sentences, "I"/"you", a verb first
    assert answer_from('Pell said "Will you come to the feast tonight?" to me.') == \
        'Pell asked me, "Will you come to the feast tonight?"'
    assert answer_from('Tomas said "There is a feast at 18:00. Tell everyone!" to me.') == \
        'Tomas told me, "There is a feast at 18:00. Tell everyone!"'
    assert answer_from('Tomas said "I hold a feast at my tavern."') == 'Tomas said, "I hold a feast at my tavern."'
    assert answer_from('I said "Come to the feast" to Mira.') == 'I told Mira, "Come to the feast."'
    assert reported("Come to the feast!") is None and reported("The feast is at six!") == "the feast is at six"


def test_other_memories_are_remembered_in_the_first_person():
    assert answer_from("Mira arrived.") == "I remember that Mira arrived."
    assert answer_from("The smithy's chimney caught fire") == "I remember that the smithy's chimney caught fire."
    assert answer_from("I decided to go to the harvest feast at the tavern at 18:00.") == \
        "I decided to go to the harvest feast at the tavern at 18:00."
    assert answer_from('I pinned a notice for Mira on the board: "Lost cat".') == \
        'I pinned a notice for Mira on the board: "Lost cat".'


def test_a_memory_is_related_by_the_questions_words_or_an_occasion_never_by_asking_words():
    assert related("Do you know who is standing for village elder?", 'Oda said "I am standing for elder."')
    assert not related("Do you know who is standing for village elder?", "I know the village well.")
    assert related(QUESTION, TOLD)                       # "what is going on" and a feast
    assert not related(QUESTION, "Mira arrived.")
    assert not related("Who bakes the bread?", TOLD)     # an occasion answers only a question of what is on


def test_a_memory_unrelated_to_the_question_is_not_a_candidate_and_only_candidates_are_touched():
    s = stream("Elena", "Mira arrived.", TOLD, "I talked with Bram.", 'Bram said "Rain tomorrow, I think."')
    got = recall(s, QUESTION, 900)
    assert [m.text for m in got] == [TOLD]
    assert [m.last_access for m in s.memories] == [600, 900, 602, 603]


def test_the_same_answer_twice_is_one_candidate():
    s = stream("Elena", TOLD, TOLD, "I decided to go to the harvest feast at the tavern at 18:00.")
    asked = ask(FakeLLM(), PEOPLE["Elena"], s, QUESTION, 900, "day 1 15:00")
    assert [a for a, _ in asked.options] == ["I decided to go to the harvest feast at the tavern at 18:00.",
                                             answer_from(TOLD), NOT_HEARD]


def test_the_answer_the_fake_models_score_prefers_is_chosen_with_its_memory():
    s = stream("Elena", TOLD, 'Mira said "Something special: rye bread soon!" to me.', "Mira arrived.")
    llm = FakeLLM(prefer="harvest feast")
    asked = ask(llm, PEOPLE["Elena"], s, QUESTION, 900, "day 1 15:00")
    answer, source = finish(asked)
    assert answer == answer_from(TOLD) and source.text == TOLD
    prompt = llm.prompts[-1][0]
    assert QUESTION in prompt and TOLD in prompt and "Mira arrived" not in prompt  # only related memories shown
    answer, source = finish(ask(FakeLLM(prefer="not heard"), PEOPLE["Elena"], s, QUESTION, 900, "day 1 15:00"))
    assert (answer, source) == (NOT_HEARD, None)  # the model may turn the memories down


def test_not_heard_is_the_answer_without_the_model_when_no_memory_relates():
    llm = FakeLLM(prefer="Mira")
    asked = ask(llm, PEOPLE["Bram"], stream("Bram", "Mira arrived.", "I talked with Mira."), QUESTION, 900, "day 1")
    assert asked.handle is None and llm.prompts == []
    assert finish(asked) == (NOT_HEARD, None)


def test_a_failed_score_gives_no_answer_rather_than_a_guess():
    llm = FakeLLM(prefer="feast")
    asked = ask(llm, PEOPLE["Elena"], stream("Elena", TOLD), QUESTION, 900, "day 1")
    llm.handles[-1]._result.status = "deadline"
    assert finish(asked) == ("", None)


def test_candidates_of_different_lengths_are_compared_on_as_many_tokens_each():
    long = "I heard Bram say the council meets at the chapel at 10:00 on day 2 about the mill."
    short = 'Oda told me, "I am standing for elder."'
    # the long answer's copied tail makes its mean better; over the same first 3 tokens the short one wins
    result = SimpleNamespace(logprobs=[-12.0, -20.0], token_logprobs=[[-4.0, -4.0, -4.0], [-6.0, -6.0, -1.0] + [-0.1] * 70])
    assert best_answer(result, [short, long]) == 0
    assert best_answer(SimpleNamespace(logprobs=[-10.0, -16.0]), [short, long]) == 1  # sums only: mean per ~token


def test_run_interviews_writes_each_answer_its_source_and_verdict():
    people = [(PEOPLE["Elena"], stream("Elena", TOLD, "Mira arrived.")), (PEOPLE["Bram"], stream("Bram", "Mira arrived."))]
    got = run_interviews(FakeLLM(prefer="harvest feast"), people, [FEAST], 900, "day 1 15:00")
    elena, bram = got["answers"]["Elena"]["feast"], got["answers"]["Bram"]["feast"]
    assert set(elena) == {"answer", "claims", "supported", "confirms", "named", "hallucinated", "reason", "source"}
    assert elena["source"] == TOLD and elena["confirms"] and not elena["hallucinated"]
    assert bram["answer"] == NOT_HEARD and bram["source"] is None and not bram["claims"]
    assert got["asked"] == 2 and got["hallucination_rate"] == 0.0


def test_words_that_ask_what_is_on_relate_only_occasions():
    # a party run's interviews answered "Olga said, 'I should be going. Talk soon.'"
    # ("soon") and a persona line about "what happens in the village" ("happening" by its prefix)
    assert not related(QUESTION, 'Olga said "I should be going. Talk soon."')
    assert not related(QUESTION, "I tell tales and rumours from what happens in the village.")
    assert not related(QUESTION, "I am happy to be here.")
    assert related(QUESTION, "I decided to go to the harvest feast at the tavern at 18:00.")
    assert related("Is the feast soon?", TOLD)           # a question's own subject still relates


def test_naming_only_the_place_does_not_confirm_or_claim_the_fact():
    from agents.interview_judge import judge

    keeper = "I am the storyteller and the one who keeps the tavern."
    verdict = judge(keeper, FEAST, QUESTION, [TOLD], None)
    assert verdict["named"] == ["tavern"] and not verdict["confirms"] and not verdict["claims"]
    assert judge(keeper, FEAST, QUESTION, ["Mira arrived."], None)["hallucinated"] is False
    told = judge("Tomas told me there is a harvest feast at the tavern.", FEAST, QUESTION, [TOLD], None)
    assert told["confirms"] and told["claims"]
    # a question that gives the keyword away: then the place is what shows the fact
    asked = "Have you heard of a feast?"
    assert judge("It is at the tavern.", FEAST, asked, [TOLD], None)["confirms"]
    # the place with the fact's hour names it, whatever the occasion is called
    assert judge("I decided to go to the festival at the tavern at 18:00.", FEAST, QUESTION, [TOLD], None)["confirms"]


def test_asked_what_is_on_an_npc_that_remembers_an_event_answers_from_events_only():
    chat = 'Gus said "It is a special day, and I am glad you are here." to me.'
    s = stream("Elena", chat, TOLD, "I went to the square.")
    assert [m.text for m in recall(s, QUESTION, 900)] == [TOLD]
    # no event remembered: what relates is still a candidate
    assert [m.text for m in recall(stream("Elena", chat), QUESTION, 900)] == [chat]
    # a question that does not ask what is on is not narrowed
    both = recall(stream("Elena", chat, TOLD), "What did Gus say to you?", 900)
    assert chat in [m.text for m in both]
