"""Moderation of what goes on the notice board: a bounded filter that every
notice passes before an NPC pins it.

Two checks, cheapest first. The word list (`agents/data/moderation.toml`:
words, phrases, link patterns), matched by whole words after undoing common
disguises (`sh1t`, `f.u.c.k`, `f u c k`); a match is withheld at once.
Then the model's judgement: the log-likelihood of " insulting" against
" friendly" after the notice (`judge_prompt`, `JUDGE_CANDIDATES`,
`judged_harmful`): with the embedded 135M model a second opinion that
catches about half of the hostile notices the lists miss, not a filter
to rely on alone (measured in agents/data/moderation.toml). The work is
bounded: a notice is at most MAX_NOTICE_TEXT characters before either
check runs. What is withheld is kept in a bounded log for the operators
(`ModerationLog`, served at GET /moderation behind the admin token) and
written to the `hamlet.moderation` logger.
"""
from __future__ import annotations

import logging
import re
import tomllib
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from server.world.board import MAX_NOTICE_TEXT

DEFAULT_RULES = Path(__file__).with_name("data") / "moderation.toml"
log = logging.getLogger("hamlet.moderation")

# Digits and signs people put for letters to slip past a word list.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_WORD = re.compile(r"[a-z]+")
# Separators put inside a word to break it up: "f.u.c.k", "s*h*i*t".
_INSIDE = re.compile(r"(?<=[a-z])[.*_\-'](?=[a-z])")
# Withheld notices the operators can read back: a day of a busy village's
# requests, small enough to hold in memory; older ones are in the log file.
MAX_WITHHELD = 256


@dataclass(frozen=True)
class Rules:
    words: frozenset[str]
    phrases: tuple[tuple[str, ...], ...]
    patterns: tuple[re.Pattern[str], ...]
    model_margin: float = 1.1


def load_rules(path: str | Path | None = None) -> Rules:
    p = Path(path) if path else DEFAULT_RULES
    data = tomllib.loads(p.read_text(encoding="utf-8"))
    try:
        return Rules(frozenset(str(w).lower() for w in data.get("words", [])),
                     tuple(tuple(str(ph).lower().split()) for ph in data.get("phrases", [])),
                     tuple(re.compile(str(x), re.I) for x in data.get("patterns", [])),
                     float(data.get("model_margin", 1.1)))
    except (re.error, TypeError, ValueError) as exc:
        raise ValueError(f"{p}: {exc}") from exc


def _normalise(text: str) -> tuple[list[str], list[str]]:
    """The text's words, with separators inside a word removed ("f.u.c.k"
    is "fuck"), and the runs of single letters spelled out with spaces
    ("f u c k"), joined."""
    low = text.lower().translate(_LEET)
    words = [w for token in low.split() for w in _WORD.findall(_INSIDE.sub("", token))]
    runs, run = [], ""
    for w in words + [""]:
        if len(w) == 1:
            run += w
            continue
        if len(run) > 2:
            runs.append(run)
        run = ""
    return words, runs


def word_check(rules: Rules, text: str) -> str | None:
    """Why `text` may not go on the board by the lists, or None."""
    if not 0 < len(text) <= MAX_NOTICE_TEXT:
        return f"not 1 to {MAX_NOTICE_TEXT} characters"
    for pattern in rules.patterns:
        if pattern.search(text):
            return "a link or address"
    words, runs = _normalise(text)
    for w in words:
        if w in rules.words:
            return f"the word {w!r}"
    for run in runs:  # any listed word inside "a f u c k" (a run is at most 70 letters)
        for w in rules.words:
            if w in run:
                return f"the word {w!r}"
    for phrase in rules.phrases:
        n = len(phrase)
        if any(tuple(words[i:i + n]) == phrase for i in range(len(words) - n + 1)):
            return f"the phrase {' '.join(phrase)!r}"
    return None


def judge_prompt(text: str) -> str:
    """What the model reads before " insulting" or " friendly". (Of the
    phrasings tried on the 135M model, a plain label separated harmful
    from benign notices best; a yes/no question did no better than chance.)"""
    return f'Notice: "{text}"\nThis notice is'


JUDGE_CANDIDATES = [" insulting", " friendly"]


def judged_harmful(logprobs: list[float], margin: float) -> bool:
    """The model's verdict: " insulting" beats " friendly" by more than `margin`."""
    return len(logprobs) == 2 and logprobs[0] - logprobs[1] > margin


@dataclass(frozen=True)
class Withheld:
    tick: int
    clock: str     # the game clock, for people reading the log
    author: str    # who asked
    writer: str    # the NPC asked to pin it
    text: str
    reason: str    # the list's match, or "the model judged it harmful"


class ModerationLog:
    """What was withheld, newest last, at most MAX_WITHHELD."""

    def __init__(self) -> None:
        self.withheld: deque[Withheld] = deque(maxlen=MAX_WITHHELD)
        self.checked = 0
        self.total_withheld = 0

    def add(self, item: Withheld) -> None:
        self.withheld.append(item)
        self.total_withheld += 1
        log.warning("withheld a notice from %s (asked of %s): %s: %r", item.author, item.writer, item.reason,
                    item.text)

    def report(self) -> dict:
        return {"checked": self.checked, "withheld_total": self.total_withheld,
                "withheld": [asdict(w) for w in self.withheld]}
