"""Interviews, after Generative Agents: an NPC answers a question from its
own memories (those its retrieval brings up for the question), in
character, with the model. Used at the end of a scenario's run for every
NPC and seeded fact, and by `hamlet interview` on a finished run.

Each answer is judged: does it claim to know of the fact (a keyword check,
and for an answer that names none, the model's `score` of "yes" against
"no" on whether it says it has heard of it), do the NPC's memories support
that (a memory holding all the fact's keywords), does it give an hour that
no memory holds. A claim without support, or an unsupported hour, is a
made-up answer (the hallucination rate)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agents import prompts
from agents.inference.api import Priority
from agents.memory import Memory, MemoryStream
from agents.personas import Persona
from agents.scenario import Fact

# An interview answer: two sentences, as a person answers a question.
ANSWER_TOKENS = 40
# Memories the answer's prompt carries: the five best for the question, as
# a reply to a person gets (agents/replies.py recalls a handful).
RECALL = 5
_HOURS = re.compile(r"\b(\d{1,2}):(\d{2})\b|\b(\d{1,2})\s*(am|pm|o'clock)\b", re.I)
_YES = re.compile(r"\b(yes|yeah|i know|i heard|i've heard|i have heard|of course)\b", re.I)


def interview_turns(p: Persona, clock: str, memories: Sequence[Memory], question: str) -> list[tuple[str, str]]:
    return [("user", f"It is {clock}.\nYou remember:\n{prompts.memory_lines(memories)}\n"
                     f"An interviewer asks you: {prompts.quote(question)}\n"
                     "Answer truthfully from what you remember, in one or two sentences.")]


def ask(llm: Any, persona: Persona, memory: MemoryStream, question: str, now: float, clock: str,
        seed: int = 0) -> tuple[Any, list[Memory]]:
    """Start the answer's generation; returns (handle, the memories recalled)."""
    recalled = memory.retrieve(question, now, k=RECALL)
    system = prompts.system_prompt(persona)
    prompt = llm.chat_prompt(system, interview_turns(persona, clock, recalled, question))
    prefix = llm.chat_prompt(system, [], add_generation_prompt=False)
    handle = llm.generate(prompt, max_new_tokens=ANSWER_TOKENS, temperature=0.0, seed=seed,
                          stop=("\n", "<|im_end|>"), priority=Priority.PLANNING,
                          prefix=prefix if prompt.startswith(prefix) else None, sentences=2)
    return handle, recalled


def claim_prompt(question: str, answer: str) -> str:
    return (f"Question: {prompts.quote(question)}\nAnswer: {prompts.quote(answer)}\n"
            "Does the answer say that the speaker has heard of it?")


def _hours(text: str) -> set[int]:
    out = set()
    for m in _HOURS.finditer(text):
        h = int(m.group(1) or m.group(3))
        if (m.group(4) or "").lower() == "pm" and h < 12:
            h += 12
        out.add(h % 24)
    return out


def details(fact: Fact, question: str) -> list[str]:
    """The words that show an answer knows the fact: its keywords and place,
    less those the question itself gives away."""
    asked = question.casefold()
    words = list(fact.keywords) + ([fact.place] if fact.place else [])
    return [w for w in words if w not in asked]


def judge(answer: str, fact: Fact, question: str, memories: Sequence[str], says_heard: bool | None) -> dict:
    """The verdict on one answer. `says_heard`: the model's score of whether
    the answer says it has heard of the fact (None: not asked, because the
    answer names a detail of it)."""
    low = answer.casefold()
    named = [w for w in details(fact, question) if w in low]
    claims = bool(named) or bool(says_heard)
    supported = any(all(k in m.casefold() for k in fact.keywords) for m in memories)
    known_hours = set().union(*(_hours(m) for m in memories)) if memories else set()
    stray_hours = sorted(_hours(answer) - known_hours)
    made_up = (claims and not supported) or bool(stray_hours)
    reason = ("claims to know with no memory of it" if claims and not supported
              else f"gives an hour no memory holds ({stray_hours})" if stray_hours else "")
    return {"answer": answer, "claims": claims, "supported": supported, "confirms": supported and bool(named),
            "named": named, "hallucinated": made_up, "reason": reason}


def needs_score(answer: str, fact: Fact, question: str) -> bool:
    """An answer naming no detail of the fact: whether it says it has heard
    of it is the model's to judge (a keyword check cannot tell "yes" from "no idea")."""
    low = answer.casefold()
    return not any(w in low for w in details(fact, question)) and bool(_YES.search(answer))


def run_interviews(llm: Any, people: Sequence[tuple[Persona, MemoryStream]], facts: Sequence[Fact], now: float,
                   clock: str, step: Any = None) -> dict[str, Any]:
    """Ask every person every fact's question; `step` advances an inline
    engine (None: the engine runs by itself). Returns answers by NPC and fact,
    and the hallucination rate over all answers."""
    def wait(handles: list[Any]) -> None:
        while not all(h.done() for h in handles):
            if step is None or not step():
                import time
                time.sleep(0.01)

    asked = []
    for i, (persona, memory) in enumerate(people):
        for fact in facts:
            handle, _ = ask(llm, persona, memory, fact.question, now, clock, seed=i)
            asked.append((persona, memory, fact, handle))
    wait([h for *_, h in asked])
    answers = [(p, mem, f, prompts.quote(h.result().text)[1:-1] if h.result().ok else "") for p, mem, f, h in asked]
    scoring = [(k, llm.score(claim_prompt(f.question, a), [" Yes.", " No."], priority=Priority.PLANNING))
               for k, (_, _, f, a) in enumerate(answers) if needs_score(a, f, f.question)]
    wait([h for _, h in scoring])
    heard = {k: h.result().ok and h.result().logprobs[0] > h.result().logprobs[1] for k, h in scoring}
    out: dict[str, dict[str, dict]] = {}
    for k, (p, mem, f, a) in enumerate(answers):
        texts = [m.text for m in mem.memories]
        out.setdefault(p.name, {})[f.id] = judge(a, f, f.question, texts, heard.get(k))
    verdicts = [v for row in out.values() for v in row.values()]
    made_up = sum(1 for v in verdicts if v["hallucinated"])
    return {"answers": out, "asked": len(verdicts), "hallucinated": made_up,
            "hallucination_rate": round(made_up / len(verdicts), 4) if verdicts else None}
