"""Answering people: every person who addresses an NPC gets an answer, in
arrival order, addressed to them.

The minds system (`agents/minds.py`) calls in here to carry out the reply
intents of `agents/mind_decide.py`: start a reply for a waiting person
(several at once; the engine batches them in one step), answer as someone
woken when the NPC sleeps, tell those behind a crowd to wait, tell those
past the queue's bound to come back; and, when a reply's generation
finishes, pass it through the gate (`agents/reply_gate.py`), regenerate
once if refused, else fall back in character (facts first), and say it.
Answers that are actions (a shop's trade, a guided walk) are
`agents/action_desk.py`'s; notices, lessons and small talk have desks of
their own too.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any, Protocol

from agents import prompts
from agents.action_desk import ActionDesk
from agents.board_talk import NoticeDesk, board_facts
from agents.dialogue import asleep_line, clean_line, fallback_line, full_line, holding_line
from agents.explain import record
from agents.guide import guide_actions
from agents.school import Lesson
from agents.school_desk import SchoolDesk
from agents.small_talk_desk import SmallTalkDesk
from agents.facts import allowed_directions, facts_for, hours_facts, news_facts, shop_prices, told_facts
from agents.inference.api import Priority
from agents.mind import Mind, PendingJob, WaitingPerson
from agents.reply_candidates import Candidates, generations
from agents.reply_gate import GateCounts, LineContext, check, reply_bans
from agents.shop_talk import shop_actions
from server.world.inputs import Input, Say
from server.world.world import World



class ReplyHost(Protocol):
    """What the desk needs of the minds system (agents/minds.py)."""
    budget: Any  # agents.minds.MindBudget
    llm: Any     # the LLM (agents.inference.api.LLM); shop answers are scored with it
    lessons: tuple[Lesson, ...]  # a teacher's (agents/school.py)
    tales: Any   # agents.stories.Storytellers: the day's events
    minds: dict[str, Mind]
    people_waiting: bool
    clock: Any  # () -> seconds, the minds' clock

    def submit(self, mind: Mind, kind: str, turns: list[tuple[str, str]], priority: Priority, max_tokens: int,
               deadline_s: float | None, temperature: float = 0.7, shared: str | None = None,
               ban: tuple[str, ...] = ()) -> Any: ...

    def preempt_for_people(self, world: World, replying: Mind, out: list[Input]) -> None: ...

# A refused reply is generated again this many times before the fallback:
# each try costs a person ~1-3 s of waiting on the CPU.
REPLY_RETRIES = 1

# With several people waiting, each reply's prompt carries this many lines of
# the talk around the NPC and memories (else 6 and 4): on the CPU a crowd's
# replies spend most of their time in prefill, ~250 tokens each at full size.
CROWD_HISTORY = 2
CROWD_MEMORIES = 2
# ... and is cut at this many tokens (else budget.reply_tokens, 24): a wave's
# last rows decide when the crowd's last person is answered, and a reply
# that has not ended its first sentence within ~15 words is rambling anyway.
CROWD_REPLY_TOKENS = 20

# What happened to each person's turn, counted for /metrics and the sim:
# model (the model's line passed the gate), fallback (refused or failed:
# an in-character line from facts or the persona), held (told to wait),
# full (past the queue's bound, told to come back), asleep (woken), shop
# (a shopkeeper's scored answer about its trade: agents/shop_talk.py),
# guide (asked to take someone somewhere: agents/guide.py), school (a
# teacher's lesson, judgement or report: agents/school.py), notice (asked to
# pin a notice: pinned, withheld or asked what it says: agents/board_talk.py),
# chosen (small talk answered with the line the model's score preferred:
# agents/small_talk.py).
OUTCOMES = ("model", "chosen", "fallback", "held", "full", "asleep", "shop", "guide", "school", "notice")


class ReplyDesk:
    """The people side of the minds system: its counters and its actions."""

    def __init__(self, system: ReplyHost, rng: random.Random) -> None:
        self.system = system
        self.rng = rng
        self.gate = GateCounts()
        self.outcomes: Counter[str] = Counter({o: 0 for o in OUTCOMES})
        self.notices = NoticeDesk(self)  # notices asked for, and the moderation log
        self.school = SchoolDesk(self)   # a teacher's lessons, judgements and reports
        self.small_talk = SmallTalkDesk(self)  # greetings, thanks, goodbyes: a scored choice
        self.action_desk = ActionDesk(self)  # a shop's trade or a guided walk: a scored choice

    # -- people arrive ---------------------------------------------------------
    def heard(self, world: World, mind: Mind, speaker: int, name: str, text: str, out: list[Input]) -> bool:
        """Someone addressed `mind`; False when the queue is full (they are told so)."""
        if mind.queue_reply(speaker, name, text, world.tick, self.system.clock()) != "full":
            return True
        self.outcomes["full"] += 1
        line = full_line(self.rng, name)
        self._say(world, mind, speaker, name, line, None, out)
        record(world, mind, "reply", to=name, heard=text, line=line, outcome="full")
        return False

    def hold(self, world: World, mind: Mind, person: WaitingPerson, out: list[Input]) -> None:
        person.held = True
        self.outcomes["held"] += 1
        line = holding_line(self.rng, person.name)
        self._say(world, mind, person.speaker, person.name, line, None, out)
        record(world, mind, "reply", to=person.name, heard=person.text, line=line, outcome="held")

    def answer_asleep(self, world: World, mind: Mind, person: WaitingPerson, out: list[Input]) -> None:
        mind.forget_waiting(person.speaker)
        self.outcomes["asleep"] += 1
        line = asleep_line(mind.persona, self.rng, person.name)
        self._say(world, mind, person.speaker, person.name, line, None, out)
        record(world, mind, "reply", to=person.name, heard=person.text, line=line, outcome="asleep")

    # -- a reply is generated --------------------------------------------------
    def answer(self, world: World, mind: Mind, person: WaitingPerson, q_emb, out: list[Input]) -> None:
        system = self.system
        e = world.entities[mind.entity]
        if system.lessons and mind.persona.role == "teacher" and self.school.answer(world, mind, person, out):
            return
        if self.notices.answer(world, mind, person, out):
            return
        actions = (guide_actions(world, e, person.name, person.text)
                   or shop_actions(world, e, world.entities.get(person.speaker), person.name, person.text))
        if actions:
            self.action_desk.answer(world, mind, person, actions, out)
            return
        if self.small_talk.answer(world, mind, person, out):
            return
        query = f"{person.name} {person.text}"
        mind.queries.pop(query, None)
        conv = mind.conversation
        history = [h for h in (conv.history if conv is not None else []) if h != (person.name, person.text)]
        crowd = len(mind.waiting) + len(mind.reply_jobs) > 1
        people = [m.name for m in system.minds.values() if m is not mind]
        hours = hours_facts([m.persona for m in system.minds.values()], set(world.map.places), person.text)
        # asked when, the answer is the hours, not the way there
        facts = (hours + board_facts(world, person.text)
                 + ([] if hours else facts_for(world, e.x, e.y, person.text, people))
                 + told_facts(mind.memory, person.name, person.text)
                 + news_facts(system.tales.day_log.today(world.game_minutes), person.text))[:5]
        shared = None
        recalled: tuple[str, ...] = ()
        if crowd:  # everyone in the crowd shares the context: the engine computes it once
            shared = self._crowd_context(world, mind)
            turns = [("user", shared + prompts.reply_question(person.name, person.text, facts))]
        else:
            mind.crowd_context = None
            memories = mind.memory.retrieve(query, world.game_minutes, k=4, q_emb=q_emb)
            recalled = tuple(m.text for m in memories)
            turns = prompts.reply_turns(mind.persona, world.clock(), mind.activity, memories, history,
                                        person.name, person.text, facts)
        b = system.budget
        tokens = min(b.reply_tokens, CROWD_REPLY_TOKENS) if crowd else b.reply_tokens
        n = 1 if crowd else max(1, b.reply_candidates)
        if n > 1:
            shared = turns[-1][1]   # the whole prompt is the cached prefix: prefilled once for all
        handles = [system.submit(mind, "reply", turns, Priority.HUMAN_REPLY, tokens, b.reply_deadline_s,
                                 temperature=0.7 + 0.2 * person.attempts, shared=shared,
                                 ban=reply_bans(mind.name, person.text)) for _ in range(n)]
        if n == 1:
            handle = handles[0]
        else:
            lctx = self.line_context(world, mind, person.text, (person.name,), tuple(facts))
            handle = Candidates(handles, lambda r, me=mind.name, who=person.name: r.ok and check(
                clean_line(r.text, me, (who,)), lctx) == "ok")
        if not system.people_waiting:
            system.preempt_for_people(world, mind, out)
        mind.reply_jobs[person.speaker] = PendingJob(handle, "reply", {
            "partner": person.speaker, "partner_name": person.name, "heard": person.text,
            "facts": tuple(facts), "memories": recalled, "priority": int(Priority.HUMAN_REPLY)})

    def _crowd_context(self, world: World, mind: Mind) -> str:
        """The context of the replies `mind` starts for a crowd: the last
        CROWD_HISTORY lines around it (the other people's, and maybe the
        person's own, which the gate's echo check then guards) and
        CROWD_MEMORIES memories of its own (recent and important: no one
        person's question picks them). The same text for each, so their
        prompts share it as a cached prefix, until no one waits
        (`Mind.forget_waiting`): the clock in it may lag a few game minutes,
        which a greeting does not notice."""
        if mind.crowd_context is not None:
            return mind.crowd_context
        conv = mind.conversation
        history = (conv.history if conv is not None else [])[-CROWD_HISTORY:]   # the crowd's own lines among them
        memories = mind.memory.retrieve(mind.activity, world.game_minutes, k=CROWD_MEMORIES, q_emb=None)
        mind.crowd_context = prompts.reply_context(world.clock(), mind.activity, memories, history)
        return mind.crowd_context

    def _log_line(self, world: World, mind: Mind, line: str) -> None:
        conv = mind.conversation
        if conv is not None and conv.with_player:
            conv.log.lines.append((world.game_minutes, mind.name, line))
            conv.last_tick = world.tick

    def finished(self, world: World, mind: Mind, job: PendingJob, result, out: list[Input]) -> None:
        ctx = job.context
        speaker, name = ctx["partner"], ctx["partner_name"]
        if job.kind == "quiz":
            self.school.finished(world, mind, job, result, out)
            return
        if job.kind == "notice":
            self.notices.finished(world, mind, job, result, out)
            return
        if job.kind == "small_talk":
            self.small_talk.finished(world, mind, job, result, out)
            return
        if job.kind == "shop":
            self.action_desk.finished(world, mind, job, result, out)
            return
        person = next((p for p in mind.waiting if p.speaker == speaker), None)
        lctx = self.line_context(world, mind, ctx["heard"], (name,), ctx.get("facts", ()))
        handle, line, verdict = job.handle, None, "garbled"
        for handle, result in generations(job.handle):   # the first candidate the gate passes
            line = clean_line(result.text, mind.name, (name,)) if result.ok else None
            verdict = check(line, lctx)
            self.gate.add(verdict)
            if verdict == "ok" and line is not None:
                break
        if verdict != "ok" or line is None:
            if person is not None and person.text != ctx["heard"]:
                return  # they said something new meanwhile: that is answered next
            # a line without the facts is answered from them at once: another try rarely quotes them
            if (result.ok and person is not None and person.attempts < REPLY_RETRIES and self._may_retry(person)
                    and verdict != "missing_fact"):
                person.attempts += 1  # stays in line: generated again next tick
                return
            line = fallback_line(mind.persona, self.rng, name, ctx.get("facts", ()), tuple(mind.recent_lines),
                                 heard=ctx["heard"], activity=mind.activity)
            self.outcomes["fallback"] += 1
            outcome = "fallback"
        else:
            self.outcomes["model"] += 1
            outcome = "model"
        record(world, mind, "reply", to=name, heard=ctx["heard"], line=line, outcome=outcome, verdict=verdict,
               facts=ctx.get("facts", ()), memories=ctx.get("memories", ()))
        mind.forget_waiting(speaker)
        self._say(world, mind, speaker, name, line, handle.job_id, out)
        self._log_line(world, mind, line)

    def _may_retry(self, person: WaitingPerson) -> bool:
        """A second try costs a whole generation more: worth it only while the
        person has not waited long (budget.reply_retry_within_s; None: always)."""
        within = self.system.budget.reply_retry_within_s
        return within is None or self.system.clock() - person.since_s < within

    def line_context(self, world: World, mind: Mind, heard: str, names: tuple[str, ...],
                     facts: tuple[str, ...] = ()) -> LineContext:
        e = world.entities[mind.entity]
        return LineContext(speaker=mind.name, heard=heard, names=names,
                           prompt_texts=(prompts.system_prompt(mind.persona),),
                           recent=tuple(mind.recent_lines), directions=allowed_directions(world, e.x, e.y),
                           prices=shop_prices(world), facts=facts)

    def _say(self, world: World, mind: Mind, speaker: int, name: str, line: str, job: int | None,
             out: list[Input]) -> None:
        me = world.entities[mind.entity]
        partner = world.find_entity(speaker)  # may stand across a region border
        to = partner.id if partner is not None and world.in_hearing(me, partner) else None
        out.append(Say(mind.entity, line, to, job=job))
        mind.recent_lines.append(line)
        mind.memory.add(world.game_minutes, "dialogue", f"I said {prompts.quote(line)} to {name}.", 3)
