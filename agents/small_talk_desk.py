"""Small talk at the reply desk: a greeting, a "how are you", thanks or a
goodbye is answered with the line the model's `score` prefers among the
in-character lines of agents/small_talk.py that the gate passes; the
candidates and their scores are recorded (GET /npc/NAME, the transcript).
"""
from __future__ import annotations

from typing import Any

from agents import prompts
from agents.explain import record, scored
from agents.inference.api import Priority
from agents.mind import Mind, PendingJob, WaitingPerson
from agents.npc_talk import best_normalised
from agents.reply_gate import check
from agents.small_talk import small_talk_kind, small_talk_lines
from server.world.inputs import Input
from server.world.world import World


# Lines scored per answer: each costs its ~12 tokens in the one forward (six
# after a ~100-token context: ~170 tokens, a fifth of a second here); the
# rest of the pool is offered next time.
MAX_CANDIDATES = 6


class SmallTalkDesk:
    def __init__(self, desk: Any) -> None:
        self.desk = desk  # agents.replies.ReplyDesk: its system, counters and speech

    def answer(self, world: World, mind: Mind, person: WaitingPerson, out: list[Input]) -> bool:
        """Start choosing the answer to small talk; False when the line is not
        small talk, or when the NPC has a crowd to answer: there its replies
        are generated together, rows of the same decode steps, while each
        choice is a forward of its own (measured with bench/crowd.py, 30
        people at 6 NPCs: p95 18.9-20.8 s with choices, 12.6 s without)."""
        kind = small_talk_kind(person.text)
        if kind is None or len(mind.waiting) + len(mind.reply_jobs) > 1:
            return False
        name = person.name
        knows = any(name in m.text for m in mind.memory.memories if m.minute < world.game_minutes - 1)
        lctx = self.desk.line_context(world, mind, person.text, (name,))
        every = small_talk_lines(mind.persona, name, kind, world.game_minutes / 60.0 % 24, mind.activity, knows)
        passed = [line for line in every if check(line, lctx) == "ok"]
        pool = passed if len(passed) >= 2 else every     # said them all lately: repeating beats rambling
        lines = self.desk.rng.sample(pool, min(MAX_CANDIDATES, len(pool)))
        system = self.desk.system
        conv = mind.conversation
        history = [h for h in (conv.history if conv is not None else []) if h != (name, person.text)][-2:]
        context = prompts.reply_context(world.clock(), mind.activity, [], history)
        persona = prompts.system_prompt(mind.persona)
        prompt = system.llm.chat_prompt(persona, [("user", context + prompts.reply_question(name, person.text))])
        prefix = system.llm.chat_prompt(persona, [], add_generation_prompt=False)
        at = prompt.find(context, len(prefix))
        prefix = prompt[:at + len(context)] if at >= 0 else prefix
        handle = system.llm.score(prompt, lines, priority=Priority.HUMAN_REPLY,
                                  deadline_s=system.budget.reply_deadline_s,
                                  prefix=prefix if prompt.startswith(prefix) else None)
        if not system.people_waiting:
            system.preempt_for_people(world, mind, out)
        mind.reply_jobs[person.speaker] = PendingJob(handle, "small_talk", {
            "partner": person.speaker, "partner_name": name, "heard": person.text, "lines": lines,
            "priority": int(Priority.HUMAN_REPLY)})
        return True

    def finished(self, world: World, mind: Mind, job: PendingJob, result, out: list[Input]) -> None:
        """Say the best-scored line (the first one if scoring failed)."""
        ctx = job.context
        lines = ctx["lines"]
        ok = result is not None and result.ok and len(result.logprobs) == len(lines)
        line = lines[best_normalised(result)] if ok else lines[0]
        record(world, mind, "reply", to=ctx["partner_name"], heard=ctx["heard"], line=line, outcome="chosen",
               candidates=scored(lines, result), chosen=line)
        mind.forget_waiting(ctx["partner"])
        self.desk.outcomes["chosen"] += 1
        self.desk._say(world, mind, ctx["partner"], ctx["partner_name"], line, job.handle.job_id, out)
        self.desk._log_line(world, mind, line)
