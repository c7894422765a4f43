"""Talk about the notice board: "put up a notice: lost grey cat near the
pond" and "is there any work?".

Asked to pin a notice, an NPC checks the words against the moderation
lists (agents/moderation.py), then asks the model's judgement; a notice
that passes both becomes a `PinNotice` input (the world keeps it, within
the board's bounds) and the NPC says so; one that fails is withheld, the
NPC says it will not pin it, and the operators find it in the moderation
log. A failed judgement (a deadline passed) pins nothing: nothing goes on
the board unchecked. "Any work?" is answered from the board's open quests
(`board_facts`), which the reply prompt quotes and the gate checks.
"""
from __future__ import annotations

import re
from typing import Any, Protocol

from agents.explain import record, scored
from agents.inference.api import Priority
from agents.mind import Mind, PendingJob, WaitingPerson
from agents.moderation import (JUDGE_CANDIDATES, ModerationLog, Rules, Withheld, judge_prompt, judged_harmful,
                               load_rules, word_check)
from server.world.inputs import Input, PinNotice
from server.world.world import World

# "put up a notice: ...", "could you write a note saying ...", "pin this on the board: ..."
_PIN = re.compile(
    r"\b(?:put up|put|post|pin|write|hang up|hang|stick up)\s+(?:up\s+)?(?:a|an|my|this|the)?\s*"
    r"(?:notice|note|sign|card)\b(?:\s+(?:up|for me|on the (?:notice )?board|please))*\s*"
    r"(?:[:,\-]|\bsaying\b|\bthat says\b|\bthat reads\b|\breading\b|\bwhich says\b)?\s*(?P<text>.*)$",
    re.I | re.S)
_WORK = re.compile(r"\b(any (work|jobs?|quests?|errands?|tasks?)|work for me|(a|some) (job|quest|errand|task)|"
                   r"quests?|errands?|notice ?board|the board|notices|(you|anyone|anybody) need anything|"
                   r"earn (some )?coins)\b", re.I)
# Quests quoted as facts in one reply: a small model's context is short.
MAX_QUEST_FACTS = 3


def notice_request(text: str) -> str | None:
    """The notice's words when `text` asks to pin one ("" when it asks
    without saying what), else None."""
    m = _PIN.search(text)
    if m is None:
        return None
    text = m.group("text").strip().strip("\"'“”‘’").strip()
    return text if re.search(r"[^\W_]", text) else ""  # "?" says nothing


def board_facts(world: World, text: str) -> list[str]:
    """For "any work?" or "what's on the board?": the open quests in words."""
    if not _WORK.search(text):
        return []
    quests = sorted(world.board.quests.values(), key=lambda q: q.id)[:MAX_QUEST_FACTS]
    if not quests:
        return ["There are no quests on the notice board now."]
    return [f"On the notice board: {q.text}" for q in quests]


def remember_board_news(world: World, by_entity: dict[int, Mind], day_log: Any) -> None:
    """This tick's quests posted and closed: the poster remembers them, and
    the day's log keeps the posting and the answer (for the evening's tale;
    the answer's trade event reaches the log as any trade does)."""
    now = world.game_minutes
    for q in world.board.news:
        mind = by_entity.get(q.poster)
        if q.state == "open":
            day_log.add(now, f"{q.poster_name} asked on the notice board for {q.n} {q.item}", 2)
            if mind is not None:
                mind.memory.add(now, "event", f"I asked on the notice board for {q.n} {q.item}, "
                                              f"for {q.reward} coins.", 4, embed=False)
        elif mind is not None and q.state == "done":
            mind.memory.add(now, "event", f"Someone brought me the {q.n} {q.item} I asked for on the board.", 5,
                            embed=False)


def board_summary(world: World, log: ModerationLog) -> dict[str, int]:
    """The board's figures for a sim's summary.json."""
    b = world.board
    return {"quests_posted": b.posted, "quests_completed": b.done, "quests_open": len(b.quests),
            "notices_pinned": b.pinned, "notices_checked": log.checked, "notices_withheld": log.total_withheld}


class DeskHost(Protocol):
    """What this needs of the reply desk (agents/replies.py)."""
    system: Any
    outcomes: Any

    def _say(self, world: World, mind: Mind, speaker: int, name: str, line: str, job: int | None,
             out: list[Input]) -> None: ...

    def _log_line(self, world: World, mind: Mind, line: str) -> None: ...


class NoticeDesk:
    """Notices asked of NPCs: checked, pinned or withheld."""

    def __init__(self, desk: DeskHost, rules: Rules | None = None) -> None:
        self.desk = desk
        self.rules = rules if rules is not None else load_rules()
        self.log = ModerationLog()

    def answer(self, world: World, mind: Mind, person: WaitingPerson, out: list[Input]) -> bool:
        """False when the line asks for no notice (an ordinary reply follows)."""
        text = notice_request(person.text)
        if text is None:
            return False
        name = person.name
        if not text:
            self._done(world, mind, person.speaker, name, person.text, out, None,
                       f"Happy to, {name}. Tell me what it should say: \"put up a notice: ...\"", "asked")
            return True
        self.log.checked += 1
        reason = word_check(self.rules, text)
        if reason is not None:
            self._withhold(world, mind, person.speaker, name, person.text, text, reason, None, out, ())
            return True
        handle = self.desk.system.llm.score(judge_prompt(text), JUDGE_CANDIDATES, priority=Priority.HUMAN_REPLY,
                                            deadline_s=self.desk.system.budget.reply_deadline_s)
        mind.reply_jobs[person.speaker] = PendingJob(handle, "notice", {
            "partner": person.speaker, "partner_name": name, "heard": person.text, "notice": text,
            "priority": int(Priority.HUMAN_REPLY)})
        return True

    def finished(self, world: World, mind: Mind, job: PendingJob, result: Any, out: list[Input]) -> None:
        ctx = job.context
        speaker, name, text, heard = ctx["partner"], ctx["partner_name"], ctx["notice"], ctx["heard"]
        candidates = scored([c.strip() for c in JUDGE_CANDIDATES], result)
        job_id = job.handle.job_id
        if not (result.ok and result.logprobs):
            self._done(world, mind, speaker, name, heard, out, job_id,
                       f"I can't see to that just now, {name}. Ask me again in a moment.", "unchecked", candidates)
            return
        if judged_harmful(result.logprobs, self.rules.model_margin):
            self._withhold(world, mind, speaker, name, heard, text, "the model judged it hostile", job_id, out,
                           candidates)
            return
        out.append(PinNotice(mind.entity, speaker, name, text))
        mind.memory.add(world.game_minutes, "event", f"I pinned a notice for {name} on the board: \"{text}\".", 4)
        self.desk.system.tales.day_log.add(world.game_minutes, f"{name} put up a notice with {mind.name}", 2)
        self._done(world, mind, speaker, name, heard, out, job_id,
                   f"Done, {name}: your notice is up on the notice board.", "pinned", candidates)

    def _withhold(self, world: World, mind: Mind, speaker: int, name: str, heard: str, text: str, reason: str,
                  job: int | None, out: list[Input], candidates: tuple) -> None:
        self.log.add(Withheld(world.tick, world.clock(), name, mind.name, text, reason))
        self._done(world, mind, speaker, name, heard, out, job,
                   f"I'd rather not put that on the board, {name}.", "withheld", candidates)

    def _done(self, world: World, mind: Mind, speaker: int, name: str, heard: str, out: list[Input],
              job: int | None, line: str, chosen: str, candidates: tuple = ()) -> None:
        mind.forget_waiting(speaker)
        self.desk.outcomes["notice"] += 1
        self.desk._say(world, mind, speaker, name, line, job, out)
        self.desk._log_line(world, mind, line)
        record(world, mind, "notice", to=name, heard=heard, line=line, outcome="notice", candidates=candidates,
               chosen=chosen)
