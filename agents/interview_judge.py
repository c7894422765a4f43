"""The verdict on an interview's answer (agents/interview.py asks): does
it claim to know of the fact (a keyword, or the fact's place with its hour;
for an answer that names none, the model's `score` of "yes" against "no"
on whether it says it has heard of it), do the NPC's memories support
that (a memory holding all the fact's keywords), does it give an hour no
memory holds. A claim without support, or an unsupported hour, is a
made-up answer (the hallucination rate)."""
from __future__ import annotations

import re
from collections.abc import Sequence

from agents import prompts
from agents.scenario import Fact

_HOURS = re.compile(r"\b(\d{1,2}):(\d{2})\b|\b(\d{1,2})\s*(am|pm|o'clock)\b", re.I)
_YES = re.compile(r"\b(yes|yeah|i know|i heard|i've heard|i have heard|of course)\b", re.I)


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


def judge(answer: str, fact: Fact, question: str, memories: Sequence[str], says_heard: bool | None,
          source: str | None = None) -> dict:
    """The verdict on one answer. `says_heard`: the model's score of whether
    the answer says it has heard of the fact (None: not asked, because the
    answer names a detail of it); `source`: the memory the answer came from."""
    named = [w for w in details(fact, question) if w in answer.casefold()]
    claims = names_fact(answer, fact, question) or bool(says_heard)
    supported = any(all(k in m.casefold() for k in fact.keywords) for m in memories)
    known_hours = set().union(*(_hours(m) for m in memories)) if memories else set()
    stray_hours = sorted(_hours(answer) - known_hours)
    made_up = (claims and not supported) or bool(stray_hours)
    reason = ("claims to know with no memory of it" if claims and not supported
              else f"gives an hour no memory holds ({stray_hours})" if stray_hours else "")
    return {"answer": answer, "claims": claims, "supported": supported,
            "confirms": supported and names_fact(answer, fact, question),
            "named": named, "hallucinated": made_up, "reason": reason, "source": source}


def names_fact(answer: str, fact: Fact, question: str) -> bool:
    """Does an answer name the fact? One of its keywords does, and so does
    its place with its hour ("the festival at the tavern at 18:00"); the
    place alone only for a fact whose keywords the question gives away:
    "I keep the tavern" is the tavern keeper's trade, not news of the
    feast held there."""
    named = [w for w in details(fact, question) if w in answer.casefold()]
    keys = [w for w in fact.keywords if w not in question.casefold()]
    if any(w in named for w in keys) or (named and not keys):
        return True
    return fact.place in named and fact.hour is not None and fact.hour in _hours(answer)


def needs_score(answer: str, fact: Fact, question: str) -> bool:
    """An answer that does not name the fact: whether it says it has heard
    of it is the model's to judge (a keyword check cannot tell "yes" from "no idea")."""
    return not names_fact(answer, fact, question) and bool(_YES.search(answer))
