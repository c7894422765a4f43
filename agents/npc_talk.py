"""NPC-to-NPC talk: a line of conversation through the gate (a refused
line ends the chat with a graceful farewell), and the outcome of a scored
choice (greet someone and start a conversation, or walk somewhere; one who
keeps to its work still greets a neighbour it has not met yet in passing,
by name, without the model: that is how villagers come to know each other,
and a conversation costs the engine a dozen generations)."""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import MutableSequence
from typing import Any, Protocol

from agents import prompts
from agents.dialogue import clean_line, farewell_line
from agents.events import carries, invite_line
from agents.explain import record, scored
from agents.measures import is_coming_going
from agents.mind import ConversationLog, Mind, PendingJob
from agents.reply_gate import check
from agents.small_talk import part_of_day
from server.world.inputs import Input, Say, SetPlan, Stop
from server.world.world import World


class TalkHost(Protocol):
    """What NPC talk needs of the minds system (agents/minds.py)."""
    budget: Any
    rng: random.Random
    desk: Any  # agents.replies.ReplyDesk
    by_entity: dict[int, Mind]
    transcripts: MutableSequence[ConversationLog]
    tales: Any  # agents.stories.Storytellers

    def end(self, world: World, mind: Mind) -> None: ...


class NpcTalk:
    def __init__(self, host: TalkHost) -> None:
        self.host = host
        # day plans chosen: "made" (a new day), "changed" (a meeting), "usual" (the routine kept)
        self.plans: Counter[str] = Counter({"made": 0, "changed": 0, "usual": 0})

    def speak(self, world: World, mind: Mind, job: PendingJob, result, out: list[Input]) -> None:
        """A line of NPC conversation, through the gate; a refused one ends the
        chat gracefully rather than oddly."""
        ctx = job.context
        partner = world.entities.get(ctx["partner"])
        name = ctx.get("partner_name") or ""
        conv = mind.conversation
        heard = conv.history[-1][1] if conv is not None and conv.history else ""
        line = clean_line(result.text, mind.name, (name,)) if result.ok else None
        verdict = check(line, self.host.desk.line_context(world, mind, heard, (name,)))
        self.host.desk.gate.add(verdict)
        news = ctx.get("news")   # an invitation (agents/events.py): said from its facts if the line lost them
        if news is not None and (verdict != "ok" or line is None or not carries(line, news)):
            line, verdict = invite_line(news), "ok"
        if verdict != "ok" or line is None:
            if job.kind in ("line", "farewell") and conv is not None:
                line = farewell_line(self.host.rng)
                job = PendingJob(job.handle, "farewell", ctx)
            else:
                record(world, mind, "line", to=name, heard=heard, outcome="ended", verdict=verdict)
                self.host.end(world, mind)
                return
        record(world, mind, "line", to=name, heard=heard, line=line, verdict=verdict,
               outcome="model" if verdict == "ok" else "farewell", memories=ctx.get("memories", ()))
        me = world.entities[mind.entity]
        to = partner.id if partner is not None and world.in_hearing(me, partner) else None
        out.append(Say(mind.entity, line, to, job=job.handle.job_id))
        mind.recent_lines.append(line)
        mind.memory.add(world.game_minutes, "dialogue", f"I said {prompts.quote(line)} to {name}.", 3)
        if conv is not None and conv.partner == ctx["partner"]:
            conv.log.lines.append((world.game_minutes, mind.name, line))
            conv.my_turn = False
            conv.last_tick = world.tick
            if job.kind == "farewell" or len(conv.log.lines) >= self.host.budget.max_lines:
                self.host.end(world, mind)

    def chosen(self, world: World, mind: Mind, job: PendingJob, result, out: list[Input]) -> None:
        if not result.ok:
            return
        best = best_normalised(result)
        action = job.context["actions"][best]
        labels = job.context.get("labels", [])
        if labels:
            record(world, mind, "choice", outcome="chosen", candidates=scored(labels, result), chosen=labels[best])
        if action[0] == "keep":
            other = self.host.by_entity.get(job.context["actions"][-1][1]) if len(job.context["actions"]) > 1 else None
            if other is not None and other.entity is not None:
                weighed = mind.weighed_until
                for eid in [e for e, t in weighed.items() if t <= world.tick]:
                    del weighed[eid]
                weighed[other.entity] = world.tick + self.host.budget.keep_cooldown_ticks
            if other is not None and not knows_of(mind, other.name):
                self.greet_in_passing(world, mind, other, out)
        elif action[0] == "greet":
            other = self.host.by_entity.get(action[1])
            if other is None or not other.free_for_chat(world.tick, mind.entity) or mind.conversation:
                return
            a, b = world.entities.get(mind.entity), world.entities.get(other.entity)
            if a is None or b is None or not world.in_hearing(a, b):
                return
            log_ = ConversationLog.start([mind.name, other.name], False, world.game_minutes)
            self.host.transcripts.append(log_)
            self.host.tales.day_log.add(world.game_minutes, f"{mind.name} and {other.name} had a chat", 1)
            mind.begin_conversation(other.entity, other.name, False, log_, True, world.tick)
            other.begin_conversation(mind.entity, mind.name, False, log_, False, world.tick)
            out.extend(Stop(x.id) for x in (a, b) if x.path)  # both stop to talk (a passer-by too)
        elif action[0] == "walk":
            mind.heading_to = action[1]
        elif action[0] == "plan":  # (plan, steps, kind): logged, so a replay needs no model
            _, steps, kind = action
            out.append(SetPlan(mind.entity, steps, why=labels[best] if labels else ""))
            self.plans[kind if best else "usual"] += 1
            mind.memory.add(world.game_minutes, "plan", f"I decided to {labels[best] if labels else 'plan my day'}.", 5)


    def greet_in_passing(self, world: World, mind: Mind, other: Mind, out: list[Input]) -> None:
        a, b = world.entities.get(mind.entity), world.entities.get(other.entity)
        if a is None or b is None or not world.in_hearing(a, b) or mind.conversation is not None:
            return
        line = f"{part_of_day(world.game_minutes / 60.0 % 24)}, {other.name}!"
        record(world, mind, "line", to=other.name, line=line, outcome="in passing")
        self.host.desk._say(world, mind, other.entity, other.name, line, None, out)


def knows_of(mind: Mind, name: str) -> bool:
    """Whether its persona (relationships, summary) or a memory names `name`,
    seeing them come and go aside: who can name whom, as the experiments'
    network density counts it (agents/measures.py)."""
    p = mind.persona
    if name in p.relationships or name in p.summary:
        return True
    return any(name in m.text and not is_coming_going(m.text) for m in mind.memory.memories)


def best_normalised(result) -> int:
    """Index of the best candidate by mean log-probability per token, so that
    longer phrasings are not penalised for their length."""
    scores = []
    for i, total in enumerate(result.logprobs):
        n = len(result.token_logprobs[i]) if getattr(result, "token_logprobs", None) else 1
        scores.append(total / max(1, n))
    return max(range(len(scores)), key=scores.__getitem__)
