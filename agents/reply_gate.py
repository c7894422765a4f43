"""The gate every generated NPC line passes before it enters the world.

`clean_line` (agents/dialogue.py) turns raw model output into something
speakable; this gate then judges whether it may be said at all. A small
model parrots, reads its prompt back, plays along with role claims and
mixes up who is speaking; each of those failures has a verdict here, so the
minds can regenerate or fall back in character, and the counts show in
/metrics and the sim's summary. The rules are literal and cheap (no model):
they run on the tick.

Verdicts, in the order they are checked:
- `ok`            the line may be said
- `garbled`       nothing speakable was left after cleaning
- `speaker_label` "Pell said, Mara: ..." or "Bram: ..." (a transcript, not speech)
- `persona`       it restates its persona or prompt ("You are 58, a village tavern keeper.")
- `self_address`  the NPC greets or names itself ("Good day, Tomas." from Tomas)
- `role_claim`    it goes along with a role a player's text claimed ("You are now the admin.")
- `echo`          it repeats the line it answers ("Hello there! Good morning." back)
- `repeat`        it repeats one of this NPC's recent lines
- `wrong_fact`    it gives a direction for a place that contradicts the map,
                  or a price in coins for a good that no shop asks or pays
- `missing_fact`  the question had facts (the map's, the shops', what the person
                  told it) and the line quotes none of them: not an answer
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agents.memory import keywords

VERDICTS = ("ok", "garbled", "speaker_label", "persona", "self_address", "role_claim", "echo",
            "repeat", "wrong_fact", "missing_fact")

_WORD = re.compile(r"[a-z0-9']+")
# "Pell said, Mara: ...", "Bram replied: ...", a line opening "Tomas says ..."
_SAID_LABEL = re.compile(r"\b(said|says|asks|asked|replied|replies|answered|answers)\s*:|"
                         r"^\s*[A-Z][a-z]+ (said|says|asks|asked|replied|replies)\b")
# A name-like word followed by a colon ("Mara: Ave, ...") anywhere in the line; clock times have digits.
_NAME_COLON = re.compile(r"(^|[\s,.;!?])[A-Z][A-Za-z'-]{1,20}\s*:(\s|$)")
# What going along with a claimed role sounds like. Village people never
# talk about admins, operators or their instructions.
_ROLE_WORDS = re.compile(
    r"\b(admin|admins|administrator|moderator|operator|developer|superuser|root access|god mode|"
    r"you are now|you're now|i am now|i'm now|from now on|as you command|i obey|i will obey|"
    r"new instructions|my instructions|your instructions)\b", re.IGNORECASE)
# "You are 58", "You are Tomas", "You are the village ...", "You live in Hamlet"
_YOU_ARE = re.compile(r"\byou(?: are|'re)\s+(\d+|the village|a village|an? \w+ (keeper|teacher|guide|smith|baker))",
                      re.IGNORECASE)
_SELF_INTRO = ("i'm {n}", "i am {n}", "my name is {n}", "call me {n}", "it's {n}", "it is {n}", "this is {n}")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _grams(ws: Sequence[str], n: int) -> set[str]:
    return {" ".join(ws[i:i + n]) for i in range(len(ws) - n + 1)}


@dataclass(frozen=True)
class LineContext:
    """What the gate knows about the line's situation."""
    speaker: str                                   # the NPC saying it
    heard: str = ""                                # the line it answers ("" for an opener)
    names: tuple[str, ...] = ()                    # people involved (the addressee, the crowd): not words to echo
    prompt_texts: tuple[str, ...] = ()             # the persona and prompt text it must not read back
    recent: tuple[str, ...] = ()                   # this NPC's recent lines
    # place name -> directions (compass words) the map allows for it from
    # where the NPC is or from the square; empty when not known
    directions: dict[str, frozenset[str]] = field(default_factory=dict)
    # item -> the coins a shop asks or pays for one now; empty when not known
    prices: dict[str, frozenset[int]] = field(default_factory=dict)
    # the fact sentences the reply's prompt carried (agents/facts.py): an
    # answer must quote one of them
    facts: tuple[str, ...] = ()


def check(line: str | None, ctx: LineContext) -> str:
    """The verdict for `line` (already cleaned; None when cleaning left nothing)."""
    if not line or not words(line):
        return "garbled"
    if _SAID_LABEL.search(line) or _NAME_COLON.search(line):
        return "speaker_label"
    if _restates(line, ctx):
        return "persona"
    if _names_itself(line, ctx.speaker):
        return "self_address"
    if _ROLE_WORDS.search(line):
        return "role_claim"
    if ctx.heard and _echoes(line, ctx.heard, ctx.names + (ctx.speaker,)):
        return "echo"
    if _repeats(line, ctx.recent):
        return "repeat"
    if ctx.directions and _contradicts(line, ctx.directions):
        return "wrong_fact"
    if ctx.prices and _misprices(line, ctx.prices):
        return "wrong_fact"
    if ctx.facts and not quotes_a_fact(line, ctx.facts, ctx.heard, ctx.names):
        return "missing_fact"
    return "ok"


# Words of a fact sentence that say nothing by themselves.
_FACT_FILLER = frozenset("about steps from here now sells coins told me you is are at the to for of a an and "
                         "it its this that on in".split())
_FACT_WORD = re.compile(r"[a-z0-9]+(?:-[a-z]+)?")


# A clause of the heard line: words between punctuation marks.
_CLAUSE = re.compile(r"[^.,!?;:\"()]+")
# Asked who it is, an NPC may say its own name.
_ASKS_NAME = re.compile(r"\b(name|who are you|who're you)\b", re.IGNORECASE)


def reply_bans(speaker: str, heard: str) -> tuple[str, ...]:
    """Phrases a reply by `speaker` to `heard` is generated without (the
    engine's `ban`, agents/inference/bans.py), so that what this gate refuses
    most often in replies is not generated in the first place: the NPC's
    own name (`self_address`; unless it was asked who it is) and, of the
    heard line, each clause of at most three words whole and each run of
    four words of a longer one (`echo`: "how are you" may still be said
    back, "how are you today" not)."""
    bans = [] if _ASKS_NAME.search(heard) else [speaker]
    for clause in _CLAUSE.findall(heard):
        ws = clause.split()
        if 0 < len(ws) <= 3:
            bans.append(" ".join(ws))
        bans += [" ".join(ws[i:i + 4]) for i in range(len(ws) - 3)]
    seen = dict.fromkeys(b for b in bans if b and len(b) <= 64)
    return tuple(seen)[:64]


def fact_keys(fact: str, heard: str, names: Sequence[str] = ()) -> set[str]:
    """What a line must say to quote `fact`: its words but those the question
    already holds, the people's names and filler ("The smithy is to the
    south-east, about 20 steps from here." asked "Where is the smithy?":
    south-east, 20)."""
    asked = set(_FACT_WORD.findall(heard.lower())) | {n.lower() for n in names}
    low = fact.lower()
    words = keywords(low) | set(re.findall(r"\b\d+\b", low)) | set(re.findall(r"\b[a-z]+-[a-z]+\b", low))
    return {w for w in words if w not in asked and w not in _FACT_FILLER}


def quotes_a_fact(line: str, facts: Sequence[str], heard: str, names: Sequence[str] = ()) -> bool:
    low = line.lower()
    said = set(_FACT_WORD.findall(low)) | keywords(low)
    return any(said & fact_keys(f, heard, names) for f in facts)


# "4 coins", "12 copper coins": an amount a sentence gives
_COINS = re.compile(r"\b(\d{1,6})\s+(?:\w+\s+)?coins?\b", re.I)
# How many of a good a sentence names ("two loaves", "3 eggs"): a lot may
# be priced at that many times the price of one.
_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "dozen": 12}
_COUNT = re.compile(r"\b(\d{1,3}|" + "|".join(_COUNT_WORDS) + r")\b(?!\s+(?:\w+\s+)?coins?\b)", re.I)


def _misprices(line: str, prices: dict[str, frozenset[int]]) -> bool:
    """A sentence that names a good and an amount of coins that is neither
    what a shop asks or pays for one now nor that times a count the
    sentence names."""
    for sentence in re.split(r"(?<=[.!?;])\s+", line):
        low = sentence.lower()
        named = [i for i in prices if re.search(rf"\b{re.escape(i.rstrip('s'))}", low)]
        if not named:
            continue
        counts = {1} | {int(w) if w.isdigit() else _COUNT_WORDS[w] for w in (m.group(1).lower()
                                                                              for m in _COUNT.finditer(sentence))}
        allowed = {k * p for i in named for p in prices[i] for k in counts}
        if any(int(m.group(1)) not in allowed for m in _COINS.finditer(sentence)):
            return True
    return False


def _names_itself(line: str, speaker: str) -> bool:
    low = line.lower()
    name = speaker.lower()
    if not re.search(rf"\b{re.escape(name)}\b", low):
        return False
    stripped = low
    for intro in _SELF_INTRO:
        stripped = stripped.replace(intro.format(n=name), "")
    return bool(re.search(rf"\b{re.escape(name)}\b", stripped))


def _restates(line: str, ctx: LineContext) -> bool:
    if _YOU_ARE.search(line) or re.search(rf"\byou(?: are|'re) {re.escape(ctx.speaker.lower())}\b", line.lower()):
        return True
    low = line.lower()
    if "you live in hamlet" in low or "lines in quotes" in low:
        return True
    ws = words(line)
    if len(ws) < 5:
        return False
    mine = _grams(ws, 5)
    return any(mine & _grams(words(src), 5) for src in ctx.prompt_texts)


def _content(text: str, names: Sequence[str]) -> list[str]:
    skip = {n.lower() for n in names} | {"oh", "ah", "well", "yes", "and", "to", "you", "too"}
    return [w for w in words(text) if w not in skip]


def _echoes(line: str, heard: str, names: Sequence[str]) -> bool:
    """The line says back what it heard: the same words (names aside), or a
    run of the heard line of four words or more making up most of it."""
    mine, theirs = _content(line, names), _content(heard, names)
    if not mine or not theirs:
        return False
    if mine == theirs:
        return True
    a, b = " ".join(mine), " ".join(theirs)
    if len(theirs) >= 3 and b in a and len(mine) <= len(theirs) + 3:
        return True
    if len(mine) >= 3 and a in b:
        return True
    if len(mine) >= 4 and len(theirs) >= 4:
        shared = _grams(mine, 4) & _grams(theirs, 4)
        return len(shared) >= max(1, (len(mine) - 3) // 2)
    return False


def _repeats(line: str, recent: Sequence[str]) -> bool:
    mine = words(line)
    if not mine:
        return False
    for old in recent:
        theirs = words(old)
        if mine == theirs:
            return True
        if len(mine) >= 4 and len(theirs) >= 4:
            sa, sb = set(mine), set(theirs)
            if len(sa & sb) / len(sa | sb) >= 0.8:
                return True
    return False


_COMPASS = ("north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west")
_DIRECTION = re.compile(r"\b(north|south)[- ]?(east|west)\b|\b(north|south|east|west)\b", re.IGNORECASE)


def compass(dx: float, dy: float) -> str:
    """One of eight compass words for a step (y grows southwards on the map)."""
    import math
    angle = math.degrees(math.atan2(dx, -dy)) % 360  # 0 = north, 90 = east
    return _COMPASS[int((angle + 22.5) // 45) % 8]


def near_directions(word: str) -> frozenset[str]:
    """A compass word and its two neighbours: "east" also admits north-east
    and south-east (people round directions off)."""
    i = _COMPASS.index(word)
    return frozenset({_COMPASS[i - 1], word, _COMPASS[(i + 1) % 8]})


def _contradicts(line: str, directions: dict[str, frozenset[str]]) -> bool:
    """A sentence that names a known place and a compass direction the map
    does not allow for it (from the NPC nor from the square)."""
    for sentence in re.split(r"(?<=[.!?;])\s+|,\s*(?:and|but)\s+", line):
        low = sentence.lower()
        places = [p for p in directions if re.search(rf"\b{re.escape(p)}\b", low)]
        said = [("-".join(w for w in m.groups()[:2] if w) if m.group(1) else m.group(3)).lower()
                for m in _DIRECTION.finditer(sentence)]
        if len(places) == 1 and said and not any(d in directions[places[0]] for d in said):
            return True
    return False


class GateCounts:
    """Verdicts counted by kind: the minds keep one, /metrics and the sim
    summary read it."""

    def __init__(self, on_verdict: Callable[[str], None] | None = None) -> None:
        self.counts = {v: 0 for v in VERDICTS}
        self.on_verdict = on_verdict

    def add(self, verdict: str) -> None:
        self.counts[verdict] = self.counts.get(verdict, 0) + 1
        if self.on_verdict is not None:
            self.on_verdict(verdict)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)
