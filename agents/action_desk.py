"""Answers that are actions, at the reply desk: a shopkeeper's trade
(agents/shop_talk.py) or a guided walk (agents/guide.py). One candidate
action is done at once; among several the model's `score` chooses (the
first, the most helpful, if scoring fails). The action's own line is said
and, for a sale or a purchase, the offer the person may accept is made;
the candidates and their scores are recorded (GET /npc/NAME).
"""
from __future__ import annotations

from typing import Any

from agents import prompts
from agents.explain import record, scored
from agents.inference.api import Priority
from agents.mind import Mind, PendingJob, WaitingPerson
from agents.npc_talk import best_normalised
from agents.shop_talk import ShopAction, situation
from server.world.inputs import Input, MakeOffer
from server.world.world import World


class ActionDesk:
    def __init__(self, desk: Any) -> None:
        self.desk = desk  # agents.replies.ReplyDesk: its system, counters and speech

    def answer(self, world: World, mind: Mind, person: WaitingPerson, actions: list[ShopAction],
               out: list[Input]) -> None:
        """One candidate: done now. Several: the model scores them."""
        if len(actions) == 1:
            self._do(world, mind, person.speaker, person.name, actions[0], None, out, person.text,
                     ((actions[0].label, 0.0),))
            return
        system = self.desk.system
        e = world.entities[mind.entity]
        prompt = prompts.choice_prompt(mind.persona, world.clock(), mind.activity,
                                       situation(world, e, person.name, person.text, actions))
        handle = system.llm.score(prompt, [" " + a.label for a in actions], priority=Priority.HUMAN_REPLY,
                                  deadline_s=system.budget.reply_deadline_s)
        mind.reply_jobs[person.speaker] = PendingJob(handle, "shop", {
            "partner": person.speaker, "partner_name": person.name, "heard": person.text, "actions": actions,
            "priority": int(Priority.HUMAN_REPLY)})

    def finished(self, world: World, mind: Mind, job: PendingJob, result, out: list[Input]) -> None:
        """Do the best-scored action, or the most helpful one if scoring failed."""
        ctx = job.context
        actions = ctx["actions"]
        chosen = actions[best_normalised(result)] if result.ok and result.logprobs else actions[0]
        self._do(world, mind, ctx["partner"], ctx["partner_name"], chosen, job.handle.job_id, out, ctx["heard"],
                 scored([a.label for a in actions], result))

    def _do(self, world: World, mind: Mind, speaker: int, name: str, action: ShopAction, job: int | None,
            out: list[Input], heard: str, candidates: tuple[tuple[str, float], ...]) -> None:
        """Say the action's line and, for a sale, make the offer the person may accept."""
        guiding = action.kind in ("guide", "direct", "here")
        record(world, mind, "guide" if guiding else "shop", to=name, heard=heard, line=action.line,
               outcome="guide" if guiding else "shop", candidates=candidates, chosen=action.label)
        mind.forget_waiting(speaker)
        self.desk.outcomes["guide" if guiding else "shop"] += 1
        if action.kind == "guide" and action.item is not None:  # a real walk, the person following
            mind.heading_to = action.item
            mind.guiding = (speaker, name, action.item, world.tick)
        self.desk._say(world, mind, speaker, name, action.line, job, out)
        if action.kind == "offer" and action.item is not None:
            out.append(MakeOffer(mind.entity, speaker, give=((action.item, action.n),), want_coins=action.coins))
        elif action.kind == "buy_offer" and action.item is not None:
            out.append(MakeOffer(mind.entity, speaker, coins=action.coins, want=((action.item, action.n),)))
        self.desk._log_line(world, mind, action.line)
