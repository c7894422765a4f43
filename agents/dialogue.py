"""Cleaning generated lines: no role tags, no prompt echo, no name prefix,
no empty or garbled output. A line that cannot be cleaned is replaced by a
graceful in-character fallback, never shown raw."""
from __future__ import annotations

import random
import re

from agents.personas import Persona

# A spoken line is at most this long: a speech bubble, not a speech.
MAX_LINE = 200

_TAGS = re.compile(r"<\|[^|>]{0,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|#{2,}", re.IGNORECASE)
_ROLE_LINE = re.compile(r"^\s*(system|assistant|user)\s*[:\n]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_BANNED = ("as an ai", "language model", "i cannot assist", "instructions", "system prompt", "rules:",
           "the rules", "not a character", "as a character", "my character", "in character")


# A reflection that answers the question by restating it: "The most
# important thing I have learned from these (memories) is that ..." keeps
# only what follows; one that is the question itself is dropped.
_LEARNED = re.compile(r"^(?:in one sentence,?\s*)?(?:what is\s+)?the most important thing (?:i|you) ha(?:ve|s) "
                      r"learned(?: from (?:these|this|them|my|your)(?: [a-z]+)?)?\s*(?:is|was|:|\?)?\s*(?:that\s+)?",
                      re.I)


def reflection_text(line: str | None) -> str | None:
    """What a reflection says, without the question it was asked; None when
    nothing but the question (or a few words) is left: a small model often
    answers "what is the most important thing you have learned?" by
    repeating it, and such a memory (importance 8) crowds out real ones."""
    if line is None:
        return None
    text = _LEARNED.sub("", line.strip()).strip(" -:,.")
    if len(text.split()) < 4 or "most important thing" in text.lower():
        return None
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def clean_line(raw: str, speaker: str, others: tuple[str, ...] = (), echo_sources: tuple[str, ...] = ()) -> str | None:
    """The speakable part of a generation, or None when nothing usable is left."""
    text = _TAGS.sub("\n", raw)
    lines = []
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln:
            if lines:
                break  # a blank line ends the reply
            continue
        if _ROLE_LINE.match(ln + "\n"):
            if lines:
                break
            ln = _ROLE_LINE.sub("", ln + "\n").strip()
            if not ln:
                continue
        # another speaker's turn starts: stop there
        if lines and any(ln.lower().startswith(o.lower() + ":") for o in others):
            break
        lines.append(ln)
    text = " ".join(lines)
    # drop our own name (or "Name says") in front, and wrapping quotes
    for name in (speaker, *others):  # "Bram:" or "Pell says:" in front
        text = re.sub(rf"^\s*{re.escape(name)}\s*(says|said)?\s*:\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(rf"^\s*{re.escape(speaker)}\s*(says|said)?\s*[,-]\s*", "", text, flags=re.IGNORECASE)
    text = text.replace('"', "").replace("“", "").replace("”", "").strip().strip("'").strip()
    # sentence by sentence: drop what echoes the prompt or parrots the other
    # speaker, and anything that talks about being a model or its rules
    kept = []
    for sentence in _SENTENCE_END.split(text):
        low = sentence.lower().strip()
        if not low or any(b in low for b in _BANNED) or low.startswith(f"you are {speaker.lower()}"):
            continue
        if any(_echoes(sentence, src, 6) for src in echo_sources):
            continue
        if kept and sentence.strip() in kept:
            continue  # a repeated sentence
        kept.append(sentence.strip())
    text = _shorten(" ".join(kept))
    if not _looks_like_speech(text):
        return None
    return text


def _shorten(text: str) -> str:
    sentences = _SENTENCE_END.split(text)
    out = ""
    for s in sentences[:2]:
        if len(out) + len(s) + 1 > MAX_LINE:
            break
        out = f"{out} {s}".strip()
    if not out:
        cut = text[:MAX_LINE].rsplit(" ", 1)[0]
        out = cut.rstrip(",;:") + "…"
    return out


def _looks_like_speech(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    if letters < 2 or letters < 0.5 * len(text):
        return False
    words = text.lower().split()
    if len(words) >= 6 and len(set(words)) <= len(words) // 3:
        return False  # "the the the the ..."
    return True


def _echoes(text: str, source: str, n: int = 7) -> bool:
    """True when the text repeats any run of n words of the source."""
    src = source.lower().split()
    if len(src) < n:
        return False
    grams = {" ".join(src[i:i + n]) for i in range(len(src) - n + 1)}
    words = text.lower().split()
    return any(" ".join(words[i:i + n]) in grams for i in range(len(words) - n + 1))


_FALLBACKS = {
    "guide": ["Welcome! The market is just east of the square, and the tavern is to the west.",
              "Ask me about any place in the village and I'll point the way."],
    "storyteller": ["Ah, that reminds me of a tale, but let me wet my throat first.",
                    "Stories come best after sundown, friend."],
    "teacher": ["Good question. Let me think about how best to explain it.",
                "Shall we try a little question? What lies north of the square?"],
}
_GENERIC = ["Hmm, let me think about that.", "Good day to you.", "Forgive me, my mind wandered. What was that?",
            "Busy day in the village, isn't it?"]


_GREETING = re.compile(r"\b(hello|hi|hey|greetings|good (morning|day|afternoon|evening)|howdy|welcome)\b", re.I)
_HOW_ARE_YOU = re.compile(r"\bhow (are|is) (you|things|it going|your day)\b|\bhow do you do\b", re.I)


def fallback_line(p: Persona, rng: random.Random, partner: str | None = None,
                  facts: tuple[str, ...] = (), avoid: tuple[str, ...] = (), heard: str = "",
                  activity: str = "") -> str:
    """An in-character answer when the model's line was refused: the facts
    about what was asked when there are any (never an unrelated direction);
    to a greeting or a "how are you", a greeting back by name from the
    persona; else a stock line of the persona's role not said recently."""
    if facts:
        return " ".join(facts[:2])
    who = f", {partner}" if partner else ""
    if _HOW_ARE_YOU.search(heard):
        doing = f" I'm {activity} today." if activity else ""
        return f"Well enough, thank you{who}!{doing}"
    if _GREETING.search(heard):
        hello = rng.choice(["Hello", "Good day", "Welcome"])
        article = "an" if p.occupation[:1].lower() in "aeiou" else "a"
        return f"{hello}{who}! I'm {p.name}, {article} {p.occupation}. What brings you here?"
    options = [o for o in _FALLBACKS.get(p.role, []) + _GENERIC if o not in avoid] or _GENERIC
    line = rng.choice(options)
    if partner and line == "Good day to you.":
        line = f"Good day to you, {partner}."
    return line


# Said, without the model, to someone who must wait behind a crowd.
_HOLDING = ["One at a time, please, {name}; I'll be with you in a moment.",
            "Just a moment, {name}, I'll answer you next.",
            "Bear with me, {name}; so many at once! Your turn is coming."]
# Said to someone past the reply queue's bound (agents/mind.py).
_FULL = ["I'm sorry, {name}, there are too many of you at once. Ask me again in a little while.",
         "Too many voices at once, {name}! Come back to me in a little while."]


def holding_line(rng: random.Random, name: str) -> str:
    return rng.choice(_HOLDING).format(name=name)


def full_line(rng: random.Random, name: str) -> str:
    return rng.choice(_FULL).format(name=name)


def is_holding_line(text: str) -> bool:
    """Whether a line is a holding or come-back-later line (for clients and
    benchmarks that tell a real answer from a request to wait)."""
    patterns = [t.split("{name}") for t in _HOLDING + _FULL]
    return any(text.startswith(a) and text.endswith(b) for a, b in patterns)


def asleep_line(p: Persona, rng: random.Random, name: str) -> str:
    """A sleeping NPC, woken: where and when to find it, from its routine."""
    awake = [r for r in p.routine if "sleep" not in r.activity.casefold()]
    first = min(awake, key=lambda r: r.hour) if awake else None
    later = (f" Find me at the {first.place} after {first.hour} in the morning." if first and first.hour < 12
             else " Come back in the morning.")
    opener = rng.choice(["Mm... what? {name}, I was fast asleep.", "*yawns* Who's there? Oh, {name}. It's late.",
                         "Hm? {name}? I'm in bed, it's the middle of the night."])
    return opener.format(name=name) + later


_FAREWELLS = ["Well, I must get back to work. Good day!", "I should be going. Talk soon.",
              "Ah, look at the time. Until later!", "Good talking with you. Take care."]


def farewell_line(rng: random.Random) -> str:
    return rng.choice(_FAREWELLS)


# Said, without the model, to someone who gave the NPC something (a `give`).
_THANKS = ["Thank you kindly, {name}!", "Why, thank you, {name}! That's generous of you.",
           "For me? Thank you, {name}."]


def thanks_line(rng: random.Random, name: str) -> str:
    return rng.choice(_THANKS).format(name=name)
