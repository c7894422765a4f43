"""What an idle or conversing NPC starts next, in order of precedence:
reply to a person; the next line of its NPC conversation; end a
conversation that went quiet; reflect; choose (by scoring) whether to greet
someone nearby or to keep its plan; otherwise follow its routine."""
from __future__ import annotations

from typing import TYPE_CHECKING

from agents import prompts
from agents.mind import Mind
from server.world.inputs import Input, Stop
from server.world.world import World

if TYPE_CHECKING:
    from agents.minds import MindsSystem


def decide(system: MindsSystem, world: World, mind: Mind, out: list[Input]) -> None:
    from agents.minds import Priority

    b = system.budget
    e = world.entities[mind.entity]
    if mind.job is not None:
        return
    now = world.game_minutes
    conv = mind.conversation
    if mind.replies:
        speaker, name, text = mind.replies[-1]
        if e.path:
            out.append(Stop(e.id))  # a person speaking to it interrupts its walk
        query = f"{name} {text}"
        ready, q_emb = system.query_embedding(mind, query)
        if not ready:
            return  # its embedding comes from the worker within a tick or two
        mind.replies.clear()  # the latest line is answered; older ones are part of the history
        history = conv.history[:-1] if conv is not None else []
        memories = mind.memory.retrieve(query, now, k=4, q_emb=q_emb)
        turns = prompts.reply_turns(mind.persona, world.clock(), mind.activity, memories, history, name, text)
        system.submit_generation(world, mind, "reply", turns, Priority.HUMAN_REPLY, b.reply_tokens,
                                 b.reply_deadline_s, {"partner": speaker, "partner_name": name}, out)
        return
    if system.people_waiting and not (conv is not None and conv.with_player):
        # replies to people first: no new small talk, choices or reflection meanwhile
        if conv is None:
            system.follow_routine(world, mind, out)
        return
    if conv is not None:
        if conv.with_player:
            if world.tick - conv.last_tick > b.player_idle_ticks:
                system._end(world, mind)
            return
        partner = world.entities.get(conv.partner)
        if partner is None or not world.in_hearing(e, partner):
            system._end(world, mind)
            return
        if world.tick - conv.last_tick > b.player_idle_ticks:  # the partner fell silent
            system._end(world, mind)
            return
        if not conv.my_turn or world.tick < conv.next_tick:
            return
        if e.path:
            out.append(Stop(e.id))
        if not system.tokens.can_spend(b.line_tokens):
            system._end(world, mind)
            return
        context = {"partner": conv.partner, "partner_name": conv.partner_name}
        if not conv.log.lines:
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
        system.submit_generation(world, mind, kind, turns, Priority.CONVERSATION, b.line_tokens,
                                 b.line_deadline_s, context, out)
        return
    clock_now = system.clock()
    if clock_now >= mind.next_initiative_at:
        if mind.memory.reflection_due() and system.tokens.can_spend(b.reflect_tokens):
            mind.next_initiative_at = clock_now + b.npc_min_interval_s
            turns = prompts.reflection_turns(mind.persona, mind.memory.recent(12))
            system.submit_generation(world, mind, "reflect", turns, Priority.REFLECTION, b.reflect_tokens,
                                     b.line_deadline_s, {"partner": -1}, out)
            return
        other = _chat_partner(system, world, mind)
        if other is not None and system.tokens.can_spend(b.line_tokens * 2):
            mind.next_initiative_at = clock_now + b.npc_min_interval_s
            actions = [("keep",), ("greet", other.entity)]
            labels = [f"keep {mind.activity}.", f"greet {other.name} and have a chat."]
            system.submit_choice(world, mind, f"{other.name} is standing nearby.", actions, labels)
            return
    system.follow_routine(world, mind, out)


def _chat_partner(system: MindsSystem, world: World, mind: Mind) -> Mind | None:
    e = world.entities[mind.entity]
    r2 = system.budget.chat_range ** 2
    for eid in world.grid.near(e.x, e.y, system.budget.chat_range):
        other = system.by_entity.get(eid)
        if other is None or other is mind or not other.free_for_chat(world.tick, mind.entity):
            continue
        if mind.cooldown_until.get(eid, 0) > world.tick:
            continue
        o = world.entities[eid]
        if (o.x - e.x) ** 2 + (o.y - e.y) ** 2 <= r2:
            return other
    return None
