"""What an NPC does next, as intents (agents/intents.py), in order of
precedence: answer the people waiting for it (in arrival order, several at
once, a holding line to those behind a crowd); the next line of its NPC
conversation; end a conversation that went quiet; reflect; choose (by
scoring) whether to greet someone nearby or to keep its plan; otherwise
follow its routine. Nothing here submits a job or touches the world: the
minds system carries the intents out."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from agents import prompts
from agents.inference.api import Priority
from agents.events import invite_turns
from agents.plans import day_candidates, event_candidates, meeting_candidates, routine_steps, step_at
from agents.intents import (Answer, AnswerAsleep, Choose, EndConversation, FollowRoutine, Generate, Hold,
                            Intent, StopWalking)
from agents.mind import MAX_PARALLEL_REPLIES, Mind
from server.world.world import World


class DecideContext(Protocol):
    """What the policy may read of the minds system."""
    budget: Any  # agents.minds.MindBudget
    tokens: Any  # agents.minds.TokenBucket
    clock: Callable[[], float]
    people_waiting: bool

    def query_embedding(self, mind: Mind, query: str) -> tuple[bool, Any]: ...

    by_entity: dict[int, Mind]


def is_asleep(activity: str) -> bool:
    return "sleep" in activity.casefold()


def decide(ctx: DecideContext, world: World, mind: Mind) -> list[Intent]:
    e = world.entities[mind.entity]
    if mind.serving_people:
        return _serve_people(ctx, world, mind, bool(e.path))
    if mind.job is not None:
        return []
    b = ctx.budget
    now = world.game_minutes
    conv = mind.conversation
    if ctx.people_waiting and not (conv is not None and conv.with_player):
        # replies to people first: no new small talk, choices or reflection meanwhile
        return [FollowRoutine()] if conv is None else []
    if conv is None or conv.with_player:  # a day's plan or a meeting: not in the middle of NPC small talk
        planning = _plan(world, mind)
        if planning is not None:
            return [planning]
    if mind.guiding is not None:
        return [FollowRoutine()]  # taking someone somewhere: keep walking (minds.py says when it arrives)
    if conv is not None:
        if conv.with_player:  # over when the person falls silent, leaves, or walks out of earshot
            person = world.find_entity(conv.partner)  # or just across a region border
            gone = person is None or not world.in_hearing(e, person)
            return [EndConversation()] if gone or world.tick - conv.last_tick > b.player_idle_ticks else []
        partner = world.entities.get(conv.partner)
        if partner is None or not world.in_hearing(e, partner):
            return [EndConversation()]
        if _fell_silent(world, conv, ctx.by_entity.get(conv.partner), b.player_idle_ticks):
            return [EndConversation()]
        if _due_elsewhere(world, mind, conv):
            return [EndConversation()]
        if not conv.my_turn or world.tick < conv.next_tick:
            return []
        if not ctx.tokens.can_spend(b.line_tokens):
            return [EndConversation()]
        context: dict = {"partner": conv.partner, "partner_name": conv.partner_name}
        memories = []
        news = mind.events.news_for(conv.partner_name, now) if not conv.log.lines else None
        if news is not None:  # an event to come: it tells its partner and invites them (agents/events.py)
            mind.events.told_to(news, conv.partner_name)
            memories = mind.memory.retrieve(news.source, now, k=2)
            turns = invite_turns(mind.persona, world.clock(), mind.activity, news, memories, conv.partner_name)
            context["news"], kind = news, "opener"
        elif not conv.log.lines:
            memories = mind.memory.retrieve(conv.partner_name, now, k=3)
            turns = prompts.opener_turns(mind.persona, world.clock(), mind.activity, memories, conv.partner_name)
            kind = "opener"
        elif len(conv.log.lines) >= b.max_lines - 1:
            turns, kind = prompts.farewell_turns(mind.persona, conv.history, conv.partner_name), "farewell"
        else:
            last_speaker, last_text = conv.history[-1]
            memories = mind.memory.retrieve(f"{last_speaker} {last_text}", now, k=3)
            turns = prompts.reply_turns(mind.persona, world.clock(), mind.activity, memories,
                                        conv.history[:-1], last_speaker, last_text)
            kind = "line"
        context["memories"] = tuple(m.text for m in memories)  # for why it said it (agents/explain.py)
        stop: list[Intent] = [StopWalking()] if e.path else []
        return stop + [Generate(kind, turns, Priority.CONVERSATION, b.line_tokens, b.line_deadline_s, context)]
    clock_now = ctx.clock()
    if clock_now >= mind.next_initiative_at:
        if mind.memory.reflection_due() and ctx.tokens.can_spend(b.reflect_tokens):
            mind.next_initiative_at = clock_now + b.npc_min_interval_s
            turns = prompts.reflection_turns(mind.persona, mind.memory.recent(12))
            return [Generate("reflect", turns, Priority.REFLECTION, b.reflect_tokens, b.line_deadline_s,
                             {"partner": -1})]
        other = chat_partner(world, mind, ctx.by_entity, b.chat_range)
        if other is not None and ctx.tokens.can_spend(b.line_tokens * 2):
            mind.next_initiative_at = clock_now + b.npc_min_interval_s
            actions = [("keep",), ("greet", other.entity)]
            labels = [f"keep {mind.activity}.", f"greet {other.name} and have a chat."]
            return [Choose(f"{other.name} is standing nearby.", actions, labels)]
    return [FollowRoutine()]


LINE_KINDS = ("opener", "line", "farewell")


def _fell_silent(world: World, conv, partner: Mind | None, idle_ticks: int) -> bool:
    """Nothing said in the conversation for `idle_ticks`, and the partner is
    not generating its line (where the model's lines take game time, a line
    can take longer than that). Either side's last line counts: one said
    this tick is heard only at the next."""
    if partner is not None and partner.job is not None and partner.job.kind in LINE_KINDS:
        return False
    last = conv.last_tick
    theirs = partner.conversation if partner is not None else None
    if theirs is not None and theirs.log is conv.log:
        last = max(last, theirs.last_tick)
    return world.tick - last > idle_ticks


def _due_elsewhere(world: World, mind: Mind, conv) -> bool:
    """Its plan (or routine) moved on to another step since the conversation
    began: it has somewhere to be. Where the model's lines take game time (a
    paced headless run), a conversation would otherwise outlast the hour."""
    steps = world.plans.get(mind.entity) or routine_steps(mind.persona)
    began = conv.log.started / 60.0 % 24
    return step_at(steps, began) != step_at(steps, world.game_minutes / 60.0 % 24)


def _plan(world: World, mind: Mind) -> Intent | None:
    """Plan a new day once awake, or decide on a meeting a person asked for
    (agents/plans.py): the candidates scored, the choice a SetPlan input."""
    today = int(world.game_minutes // 1440)
    current = world.plans.get(mind.entity) or routine_steps(mind.persona)
    if mind.meeting is not None:
        name, place, hour = mind.meeting
        mind.meeting = None
        cands = meeting_candidates(current, name, place, hour)
        return Choose(f"{name} asked {mind.name} to meet at the {place} at {hour:02d}:00.",
                      [("plan", steps, "changed") for _, steps in cands], [label for label, _ in cands])
    ev = mind.events.pending
    if ev is not None and mind.plan_day == today and not is_asleep(mind.activity):
        mind.events.pending = None   # heard of today, after its day was planned: go, or keep the plan?
        if step_at(current, ev.hour)[1] != ev.place and ev.minute > world.game_minutes:
            cands = event_candidates(current, ev)
            return Choose(f"{mind.name} heard: {prompts.quote(ev.source)}",
                          [("plan", steps, "event") for _, steps in cands], [label for label, _ in cands])
    if mind.plan_day != today and not is_asleep(mind.activity):
        mind.plan_day = today
        mind.events.pending = None   # today's events are among the day's candidates
        cands = day_candidates(mind.persona, set(world.map.places), mind.events.on_day(today))
        if len(cands) > 1:
            return Choose(f"A new day begins for {mind.name}.", [("plan", steps, "made") for _, steps in cands],
                          [label for label, _ in cands])
    return None


def _serve_people(ctx: DecideContext, world: World, mind: Mind, walking: bool) -> list[Intent]:
    """Start answers for the first people in line, up to MAX_PARALLEL_REPLIES
    in flight; one holding line a tick to someone who must wait behind them."""
    out: list[Intent] = [StopWalking()] if walking else []
    free = MAX_PARALLEL_REPLIES - len(mind.reply_jobs)
    asleep = is_asleep(mind.activity)
    held = False
    blocked = False  # an earlier person's recall is not ready: keep arrival order
    position = len(mind.reply_jobs)  # people ahead, being answered now
    # a crowd's replies recall from a context they share (agents/replies.py),
    # not from each person's question: no query embedding to wait for
    crowd = len(mind.waiting) + len(mind.reply_jobs) > 1
    for person in mind.waiting:
        if person.speaker in mind.reply_jobs:
            continue
        if asleep:
            out.append(AnswerAsleep(person))
            continue
        if free > 0:
            free -= 1
            ready, q_emb = (True, None) if crowd else ctx.query_embedding(mind, f"{person.name} {person.text}")
            if ready and not blocked:
                out.append(Answer(person, q_emb))
                position += 1
                continue
            blocked = True
        if position >= MAX_PARALLEL_REPLIES and not person.held and not held:
            out.append(Hold(person))
            held = True
        position += 1
    return out


def chat_partner(world: World, mind: Mind, by_entity: dict[int, Mind], chat_range: int) -> Mind | None:
    """An NPC within `chat_range` free to chat with `mind` (no cooldown between them)."""
    e = world.entities[mind.entity]
    r2 = chat_range ** 2
    for eid in world.grid.near(e.x, e.y, chat_range):
        other = by_entity.get(eid)
        if other is None or other is mind or not other.free_for_chat(world.tick, mind.entity):
            continue
        if mind.cooldown_until.get(eid, 0) > world.tick or mind.weighed_until.get(eid, 0) > world.tick:
            continue
        o = world.entities[eid]
        if (o.x - e.x) ** 2 + (o.y - e.y) ** 2 <= r2:
            return other
    return None
