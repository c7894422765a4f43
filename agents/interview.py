"""Interviews, after Generative Agents: an NPC answers a question from its
own memories. Used at the end of a scenario's run for every NPC and seeded
fact, and by `hamlet interview` on a finished run.

The answer is chosen, never generated (the rule for a small model: facts
from state, choices by the model's `score`; a 135M model's free answers
repeated the prompt):

- Candidates: the NPC's memories *related* to the question, the RECALL
  best by its retrieval (recency, importance, relevance), each turned into
  a first-person answer that carries the memory's words (`answer_from`:
  'Tomas said "There is a feast at the tavern." to me.' -> 'Tomas told me
  there is a feast at the tavern.'; an observation -> 'I remember that
  ...'), and always NOT_HEARD ("I have not heard anything about that.").
- Related, a prior from the question and the memories only (never from the
  scenario's fact: the interview must not know the answer it measures): a
  memory shares a content word with the question (not the words any
  interview question is made of: "know", "heard", "anything", "village"),
  or the question asks what is going on ("happening", "special", "soon",
  "today"...) and the memory tells of an occasion (agents/events.py's
  OCCASIONS: the words by which an NPC recognises any event it hears of,
  a wedding as much as a feast) or holds one of those asking words whole
  ("something special"; not the words of when: "talk soon" is no news).
  No related memory: NOT_HEARD, without the model.
- The choice: the model's `score` of each candidate as the reply to the
  interview's prompt (the persona, the related memories, the question);
  see `best_answer` for how candidates of different lengths are compared.

Each answer is judged (agents/interview_judge.py: does it claim to know
of the fact, do the NPC's memories support that, does it give an hour no
memory holds). A chosen answer carries its memory's words, so a made-up
one means the judge's keywords misread it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents import prompts
from agents.events import OCCASIONS, tells_of_event
from agents.inference.api import Priority
from agents.interview_judge import claim_prompt, judge, needs_score
from agents.memory import Memory, MemoryStream, keywords, lexical_relevance
from agents.personas import Persona
from agents.scenario import Fact

# Memories an answer may come from: the five best related ones, as a reply
# to a person recalls a handful (agents/replies.py).
RECALL = 5
NOT_HEARD = "I have not heard anything about that."
# Words any interview question is made of: sharing one says nothing of a memory.
_ASKING = frozenset("know knew heard hear anything something anyone someone tell think remember village".split())
# A question with one of these asks what is going on: an occasion is an answer.
_WHATS_ON = frozenset("happening happen happens special event events soon today tonight tomorrow news "
                      "upcoming planned".split())
# Words of when in such a question: "talk soon" and "see you tomorrow" are no news.
_WHEN = frozenset("soon today tonight tomorrow".split())
# First words after which a sentence reads right as reported speech ("told me there is ...").
_SUBJECTS = frozenset("there the a an it this that these those he she they his her their its everyone "
                      "everybody someone somebody nobody something nothing tomorrow today tonight".split())
_PERSONAL = frozenset("i me my mine myself we us our ours you your yours yourself let's i'm i've i'll i'd "
                      "we're we've we'll you're you've you'll".split())
_LOWER_FIRST = _SUBJECTS | frozenset("my our your some all every no one once long yesterday when after before".split())
_WORDS = re.compile(r"[a-z']+")
_QUOTED = re.compile(r'^(?P<who>[^"]{1,60}?) said:? "(?P<words>[^"]*)"(?: to (?P<whom>[^"]{1,60}?))?\s*[.!?]?$')
_PLAIN = re.compile(r"^(?P<who>[A-Z][\w' -]{0,40}?) said: (?P<words>[^\"]+)$")


def _end(text: str) -> str:
    text = text.strip()
    return text if text[-1:] in ('.', '!', '?', '"') else text + "."


def _lower_first(text: str) -> str:
    first = _WORDS.match(text.lower())
    return text[0].lower() + text[1:] if first and first.group().split("'")[0] in _LOWER_FIRST else text


def reported(words: str) -> str | None:
    """Words said, as reported speech ("there is a feast at 18:00"), or None
    where they read right only quoted: a question, more than one sentence,
    the first or second person, or an opening that may be a verb ("Come!")."""
    body = words.strip().rstrip(".!").strip()
    if not body or "?" in body or re.search(r"[.!?]\s", body):
        return None
    tokens = _WORDS.findall(body.lower())
    if not tokens or tokens[0] not in _SUBJECTS or any(t in _PERSONAL for t in tokens):
        return None
    return body[0].lower() + body[1:]


def speech(who: str, words: str, whom: str | None) -> str:
    """What someone said, told in the first person by who heard (or said) it."""
    asked = words.rstrip().endswith("?")
    verb = "asked" if asked else "told" if whom else "said"
    lead = f"{who} {verb} {whom}" if whom else f"{who} {verb}"   # "Tomas told me", "I told Mira", "Tomas said"
    indirect = None if asked else reported(words)
    return f"{lead} {indirect}." if indirect else f'{lead}, "{_end(words)}"'


def answer_from(text: str) -> str:
    """A memory as a first-person answer that carries its words."""
    text = " ".join(text.split())
    said = _QUOTED.match(text) or _PLAIN.match(text)
    if said:
        groups = said.groupdict()
        return speech(groups["who"].strip(), groups["words"], (groups.get("whom") or "").strip() or None)
    if re.match(r"I\b", text):
        return _end(text)
    return "I remember that " + _end(_lower_first(text))


def related(question: str, text: str) -> bool:
    """The prior: may this memory answer the question? (See the module's docstring.)
    The words that ask what is going on say what kind of answer is wanted
    (an occasion), not what it is about: they relate a memory only as whole
    words ("something special" does; "happening" no longer relates "I am
    happy here" by its prefix), and the words of when ("soon") not at all:
    a party run's interview answered "Olga said, 'Talk soon.'"."""
    words = keywords(question) - _ASKING
    about = words - _WHATS_ON
    if about and lexical_relevance(about, text) > 0:
        return True
    if not asks_whats_on(question):
        return False
    said = set(_WORDS.findall(text.lower()))
    return bool(said & (words - _WHEN)) or any(w.rstrip("s") in OCCASIONS for w in said)


def asks_whats_on(question: str) -> bool:
    return bool((keywords(question) - _ASKING) & _WHATS_ON)


def recall(memory: MemoryStream, question: str, now: float) -> list[Memory]:
    """The RECALL related memories the NPC's retrieval ranks best, with
    distinct answers. Only these are marked as accessed."""
    before = {m.id: m.last_access for m in memory.memories}
    ranked = memory.retrieve(question, now, k=len(memory.memories))
    fitting = {m.id for m in ranked if related(question, m.text)}
    if asks_whats_on(question):
        # an event remembered (an occasion and its hour) is what this asks for: when
        # there is one, the rest are not candidates (a party run's score chose
        # "Gus said, 'It's a special day'" over "I decided to go to the feast at 18:00")
        events = {m.id for m in ranked if m.id in fitting and tells_of_event(m.text)}
        fitting = events or fitting
    out, seen = [], set()
    for m in ranked:
        answer = answer_from(m.text) if len(out) < RECALL and m.id in fitting else None
        if answer is not None and answer not in seen:
            out.append(m)
            seen.add(answer)
        else:
            m.last_access = before[m.id]
    return out


def interview_turns(clock: str, memories: Sequence[Memory], question: str) -> list[tuple[str, str]]:
    return [("user", f"It is {clock}.\nYou remember:\n{prompts.memory_lines(memories)}\n"
                     f"An interviewer asks you: {prompts.quote(question)}\n"
                     "Answer truthfully from what you remember.")]


def best_answer(result: Any, answers: Sequence[str]) -> int:
    """The candidate the model's score prefers. `score` gives each one's
    summed log-probability and, from the embedded engine, its per-token
    log-probabilities. Neither the sum nor the mean is fair across lengths:
    the sum favours the shortest answer; the mean favours the longest, since
    with the memories in the prompt the later tokens of a memory's answer are
    copied and nearly certain (in a probe, a 33-token answer about a council
    meeting averaged -0.8 a token against -1.5 for the 12-token one that
    answered "who is standing for elder"). So every candidate is judged on
    the same number of tokens, its first K, K the shortest candidate's
    length (at most NOT_HEARD's): the stretch where it commits to who said
    what. A backend that returns sums only (remote): the mean per token,
    tokens estimated at four characters. Ties: the first (retrieval's order)."""
    per_token = getattr(result, "token_logprobs", None)
    if per_token and len(per_token) == len(answers) and all(per_token):
        k = min(len(t) for t in per_token)
        scores = [sum(t[:k]) for t in per_token]
    else:
        scores = [lp / max(1.0, len(a) / 4) for lp, a in zip(result.logprobs, answers)]
    return max(range(len(scores)), key=scores.__getitem__)


@dataclass
class Asked:
    """One question in flight: the candidate answers (each with the memory it
    carries; NOT_HEARD last, with None) and the model's score of them (None
    when NOT_HEARD is the only one)."""
    options: list[tuple[str, Memory | None]]
    handle: Any = None

    def done(self) -> bool:
        return self.handle is None or self.handle.done()

    @property
    def recalled(self) -> list[Memory]:
        return [m for _, m in self.options if m is not None]

    def answer(self) -> tuple[str, Memory | None]:
        """(the chosen answer, its memory); ("", None) when the score failed."""
        if self.handle is None:
            return self.options[-1]
        result = self.handle.result()
        if not result.ok or len(result.logprobs) != len(self.options):
            return "", None
        return self.options[best_answer(result, [a for a, _ in self.options])]


def ask(llm: Any, persona: Persona, memory: MemoryStream, question: str, now: float, clock: str) -> Asked:
    """Recall, build the candidates, and start the model's score of them."""
    recalled = recall(memory, question, now)
    options: list[tuple[str, Memory | None]] = [(answer_from(m.text), m) for m in recalled]
    options.append((NOT_HEARD, None))
    if not recalled:
        return Asked(options)
    system = prompts.system_prompt(persona)
    prompt = llm.chat_prompt(system, interview_turns(clock, recalled, question))
    prefix = llm.chat_prompt(system, [], add_generation_prompt=False)
    handle = llm.score(prompt, [a for a, _ in options], priority=Priority.PLANNING,
                       prefix=prefix if prompt.startswith(prefix) else None)
    return Asked(options, handle)


def run_interviews(llm: Any, people: Sequence[tuple[Persona, MemoryStream]], facts: Sequence[Fact], now: float,
                   clock: str, step: Any = None) -> dict[str, Any]:
    """Ask every person every fact's question; `step` advances an inline
    engine (None: the engine runs by itself). Returns answers by NPC and fact,
    and the hallucination rate over all answers."""
    def wait(jobs: list[Any]) -> None:
        while not all(j.done() for j in jobs):
            if step is None or not step():
                import time
                time.sleep(0.01)

    asked = [(p, mem, f, ask(llm, p, mem, f.question, now, clock)) for p, mem in people for f in facts]
    wait([a for *_, a in asked])
    answers = [(p, mem, f, *a.answer()) for p, mem, f, a in asked]
    scoring = [(k, llm.score(claim_prompt(f.question, a), [" Yes.", " No."], priority=Priority.PLANNING))
               for k, (_, _, f, a, _) in enumerate(answers) if needs_score(a, f, f.question)]
    wait([h for _, h in scoring])
    heard = {k: h.result().ok and h.result().logprobs[0] > h.result().logprobs[1] for k, h in scoring}
    out: dict[str, dict[str, dict]] = {}
    for k, (p, mem, f, a, source) in enumerate(answers):
        texts = [m.text for m in mem.memories]
        out.setdefault(p.name, {})[f.id] = judge(a, f, f.question, texts, heard.get(k),
                                                 source.text if source is not None else None)
    verdicts = [v for row in out.values() for v in row.values()]
    made_up = sum(1 for v in verdicts if v["hallucinated"])
    return {"answers": out, "asked": len(verdicts), "hallucinated": made_up,
            "hallucination_rate": round(made_up / len(verdicts), 4) if verdicts else None}
