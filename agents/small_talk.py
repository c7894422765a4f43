"""Small talk answered by choice, not generation.

Owns telling small talk (a greeting, a "how are you", thanks, a goodbye,
and nothing asked about the world) from other lines, and the in-character
lines an NPC may answer it with, built from its state: the time of day,
what it is doing, its trade, whether it knows the person. The reply desk
(agents/replies.py) has the model's `score` choose among those the gate
passes, in one forward, and records the candidates and their scores.

Why: on the 2-core CPU a generated greeting took 1.3-3 s (a ~150-token
prompt, then 60-100 ms a token) and the gate refused a third to a half of
the 135M model's tries (it parrots the greeting, names itself, reads its
prompt back), each refusal costing another generation; a scored choice
costs one forward and is never refused. Questions, news and everything
else are still generated, with their facts (agents/facts.py).
"""
from __future__ import annotations

import re

from agents.personas import Persona

_GREETING = re.compile(r"\b(hello|hi|hey|hiya|greetings|good (morning|day|afternoon|evening)|howdy|"
                       r"morning|evening)\b", re.I)
_HOW_ARE_YOU = re.compile(r"\bhow (are|is) (you|things|it going|your day|life)\b|\bhow do you do\b|"
                          r"\bhow('s| is) it going\b|\bhow have you been\b", re.I)
_THANKS = re.compile(r"\b(thanks|thank you|cheers|much obliged)\b", re.I)
_BYE = re.compile(r"\b(bye|goodbye|good night|farewell|see you|take care)\b", re.I)
# Anything that asks about the world, or asks the NPC to do something,
# makes a line more than small talk: it is generated with its facts.
_ASKS = re.compile(r"\b(where|when|what|which|who|whom|whose|why|how (much|many|far|long|do i|can i|to)|"
                   r"price|cost|buy|sell|trade|teach|quiz|lesson|take me|show me|tell me|help|story|"
                   r"news|heard|remember|notice|quest|open|close)\b", re.I)
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
# Longer lines say more than hello: generated.
MAX_SMALL_TALK_WORDS = 12


def small_talk_kind(text: str) -> str | None:
    """"how", "greeting", "thanks" or "bye" when `text` is only small talk; else None."""
    if len(text.split()) > MAX_SMALL_TALK_WORDS or _ASKS.search(text):
        return None
    if any(q.endswith("?") and not _HOW_ARE_YOU.search(q) for q in _SENTENCE.findall(text)):
        return None                      # a question other than "how are you?"
    if _HOW_ARE_YOU.search(text):
        return "how"
    if _THANKS.search(text):
        return "thanks"
    if _BYE.search(text):
        return "bye"
    if _GREETING.search(text):
        return "greeting"
    return None


def part_of_day(hour: float) -> str:
    return "Good morning" if 5 <= hour < 12 else "Good afternoon" if 12 <= hour < 18 else "Good evening"


def small_talk_lines(p: Persona, partner: str, kind: str, hour: float, activity: str, knows: bool) -> list[str]:
    """The lines `p` may answer small talk of `kind` from `partner` with: an
    opener and a follow-up each, so that a person who greets an NPC again
    and again does not hear the same line twice in a row (the gate's repeat
    check drops those said recently)."""
    day = part_of_day(hour)
    doing = activity.strip().rstrip(".") if activity else ""
    article = "an" if p.occupation[:1].lower() in "aeiou" else "a"
    if kind == "thanks":
        return [f"You're welcome, {partner}!", f"Any time, {partner}.", f"Glad to help, {partner}.",
                f"Think nothing of it, {partner}.", f"My pleasure, {partner}."]
    if kind == "bye":
        return [f"Goodbye, {partner}! Take care.", f"Farewell, {partner}. Come by again.",
                f"See you soon, {partner}!", f"{day}, {partner}, and safe home.", f"Take care, {partner}!"]
    openers = [f"{day}, {partner}!", f"Hello, {partner}!"] + ([f"Hello again, {partner}!"] if knows else [])
    follow = ([] if knows else [f"Nice to meet you. I'm {p.name}, {article} {p.occupation}."]) + [
        "What brings you by?", "A fine day in the village, isn't it?"]
    if doing:
        follow.append(f"I'm {doing} just now.")
    if kind == "how":
        follow = ["Very well, thank you! And you?", "Can't complain. And you?",
                  "Well enough, thank you for asking."] + ([f"Busy {doing}, but well."] if doing else []) + follow
    return [f"{o} {f}" for f in follow for o in openers]
