"""The agents system of the tick: every NPC's mind, driven through the
inference engine without ever waiting for it.

Each tick (the `agents` phase): deliver last tick's events as perceptions,
turn finished inference jobs into ordinary inputs (a `Say` carries its job
id; a result whose job is no longer the mind's current one is dropped),
then start new jobs within the budgets: replies to people first, NPC
conversation lines next, choices among candidate actions (scored, never
parsed from free text), reflection last. NPCs not busy follow their
routine. An NPC waiting for a reply shows the thinking flag.
"""
from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents import prompts
from agents.dialogue import clean_line, fallback_line, farewell_line
from agents.memory import MemoryStream
from agents.mind import ConversationLog, Mind, PendingJob
from agents.personas import Persona
from agents.routine import game_hour
from server.world.inputs import Input, MoveTo, Say, SetFlags
from server.world.world import FLAG_THINKING, World

# How long a reply waits for its recall query's embedding from the worker
# (~10-20 ms of work): past this the worker is busy or starved, and a person
# is waiting, so relevance is lexical for that reply.
QUERY_WAIT_S = 0.3

log = logging.getLogger("hamlet.minds")

try:  # the engine's priorities; the names are the contract (agents/inference/api.py)
    from agents.inference.api import Priority
except ImportError:  # pragma: no cover - only when the engine is not part of this checkout
    import enum

    class Priority(enum.IntEnum):  # type: ignore[no-redef]
        HUMAN_REPLY, CONVERSATION, PLANNING, REFLECTION = 0, 1, 2, 3


@dataclass(frozen=True)
class MindBudget:
    # Global tokens per minute for everything NPCs generate on their own
    # (conversation, reflection). The CPU engine does roughly 150-400 tok/s;
    # a third of that keeps replies to people fast. Replies to people are
    # counted but never refused.
    tokens_per_minute: float = 4000.0
    # An NPC starts something on its own (a chat, a reflection) at most this often.
    npc_min_interval_s: float = 4.0
    max_lines: int = 6  # lines in one NPC-NPC conversation, both sides together
    pair_cooldown_ticks: int = 2400  # two real minutes at 20 Hz before the same pair chats again
    line_gap_ticks: int = 30  # pacing between lines (1.5 s at 20 Hz)
    player_idle_ticks: int = 600  # a conversation with a person ends after 30 s of silence
    chat_range: int = 6  # tiles: NPCs this close may start a conversation
    # A reply to a person: one sentence (below), rarely over 20 tokens; the cap
    # bounds the wait when the model rambles (~40 ms a token on the CPU).
    reply_tokens: int = 24
    line_tokens: int = 32
    # A reply to a person ends with its first full sentence: a person is
    # waiting, and each token costs ~35-40 ms at batch 1 on the CPU (a 32-token
    # reply alone took ~1.2 s). NPC small talk may run to two.
    reply_sentences: int = 1
    line_sentences: int = 2
    reflect_tokens: int = 48
    # Wall-clock deadlines: a reply later than this is worse than the
    # fallback line. None (the headless sim's lockstep mode) waits for it.
    reply_deadline_s: float | None = 30.0
    line_deadline_s: float | None = 30.0


class TokenBucket:
    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = per_minute
        self.tokens = per_minute
        self.clock = clock
        self.at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def can_spend(self, n: int) -> bool:
        self._refill()
        return self.tokens >= n

    def spend(self, n: int) -> None:
        self._refill()
        self.tokens -= n


class MindsSystem:
    def __init__(self, personas: list[Persona], llm: Any, *, seed: int = 0, budget: MindBudget = MindBudget(),
                 clock: Callable[[], float] = time.monotonic, embedder=None) -> None:
        self.llm = llm
        self.budget = budget
        self.clock = clock
        self.tokens = TokenBucket(budget.tokens_per_minute, clock)
        self.rng = random.Random(seed ^ 0xA11CE)  # never the world's RNG: replay does not run minds
        self.embedder = embedder
        self.minds = {p.name.casefold(): Mind(p, MemoryStream(p.name, embedder)) for p in personas}
        self.by_entity: dict[int, Mind] = {}
        # Events seen at the end of the last tick, delivered at the next
        # agents phase. A tick holds a handful; 512 covers a crowded square.
        self._perceived: deque[dict] = deque(maxlen=512)
        self._taken = 0  # this tick's events already perceived in its agents phase
        self.transcripts: list[ConversationLog] = []
        self.completed: list[tuple[int, str, Any]] = []  # (priority, kind, result) for statistics
        self.people_waiting = False  # some NPC is preparing a reply to a person
        self._seeded = False

    # -- hooks ---------------------------------------------------------------
    def observe(self, world: World) -> None:
        """End-of-tick hook: what happened after this tick's agents phase (the
        minds' own speech, arrivals) is perceived in the next one."""
        self._perceived.extend(world.events[self._taken:])
        self._taken = 0

    def __call__(self, world: World) -> list[Input]:
        self._bind(world)
        out: list[Input] = []
        # This tick's events so far (a person's speech, applied in the inputs
        # phase) are perceived now rather than a tick later: a reply starts 50 ms sooner.
        self._perceived.extend(world.events)
        self._taken = len(world.events)
        self._perceive(world)
        self._collect(world, out)
        self._decide(world, out)
        return out

    # -- binding minds to entities ------------------------------------------
    def _bind(self, world: World) -> None:
        for e in world.entities.values():
            if e.kind == "npc" and e.id not in self.by_entity:
                mind = self.minds.get(e.name.casefold())
                if mind is not None:
                    mind.entity = e.id
                    self.by_entity[e.id] = mind
        if not self._seeded:
            for mind in self.minds.values():
                if not mind.memory.memories:
                    for text in mind.persona.memories:
                        mind.memory.add(world.game_minutes, "seed", text, 5)
            self._seeded = True

    # -- perception ----------------------------------------------------------
    def _perceive(self, world: World) -> None:
        now = world.game_minutes
        while self._perceived:
            ev = self._perceived.popleft()
            speaker = world.entities.get(ev["from"])
            for hearer in world.hearers(ev["x"], ev["y"]):
                mind = self.by_entity.get(hearer.id)
                if mind is None or hearer.id == ev["from"]:
                    continue
                if ev["kind"] == "say":
                    self._hear(world, mind, ev, speaker, now)
                elif ev["kind"] in ("arrive", "depart"):
                    verb = "arrived" if ev["kind"] == "arrive" else "left"
                    is_player = speaker is not None and speaker.kind == "player"
                    mind.memory.add(now, "observation", f"{ev['name']} {verb}.", 3 if is_player else 1,
                                    embed=False)

    def _hear(self, world: World, mind: Mind, ev: dict, speaker, now: float) -> None:
        text, name = ev["text"], ev["name"]
        addressed = ev.get("to") == mind.entity or mind.name.casefold() in text.casefold()
        from_player = speaker is not None and speaker.kind == "player"
        mind.memory.add(now, "observation", f"{name} said {prompts.quote(text)}" +
                        (" to me." if ev.get("to") == mind.entity else "."),
                        7 if addressed and from_player else 4 if from_player else 3)
        conv = mind.conversation
        if from_player and addressed:
            mind.queue_reply(ev["from"], name, text)
            if mind.job is not None and mind.job.kind in ("choose", "reflect"):
                mind.job.handle.cancel()  # a person outranks musing; the result is dropped
                mind.job = None
            if conv is None or conv.partner != ev["from"]:
                self._end(world, mind)  # a person outranks NPC small talk
                log_ = ConversationLog.start([mind.name, name], True, now)
                conv = mind.begin_conversation(ev["from"], name, True, log_, False, world.tick)
                self.transcripts.append(log_)
            conv.log.lines.append((now, name, text))
            conv.last_tick = world.tick
        elif conv is not None and conv.partner == ev["from"] and not conv.with_player:
            # the shared log already holds the line: the speaker's mind wrote it
            conv.my_turn = True
            conv.next_tick = world.tick + self.budget.line_gap_ticks
            conv.last_tick = world.tick
            if len(conv.log.lines) >= self.budget.max_lines:
                self._end(world, mind)

    def _end(self, world: World, mind: Mind) -> None:
        done = mind.end_conversation(world.tick, world.game_minutes, self.budget.pair_cooldown_ticks)
        if done is not None:
            mind.memory.add(world.game_minutes, "dialogue",
                            f"I talked with {', '.join(n for n in done.participants if n != mind.name)}.", 4)
        if mind.job is not None and mind.job.kind in ("opener", "line", "farewell"):
            mind.job.handle.cancel()  # its result will be dropped as stale
            mind.job = None

    # -- finished jobs -------------------------------------------------------
    def _collect(self, world: World, out: list[Input]) -> None:
        for mind in self.by_entity.values():
            job = mind.job
            if job is None or not job.handle.done():
                continue
            mind.job = None
            result = job.handle.result()
            self.completed.append((job.context.get("priority", 0), job.kind, result))
            e = world.entities.get(mind.entity)
            if e is None:
                continue
            if e.flags & FLAG_THINKING:
                out.append(SetFlags(e.id, e.flags & ~FLAG_THINKING))
            if job.kind == "choose":
                self._chosen(world, mind, job, result)
            elif job.kind == "reflect":
                if result.ok:
                    line = clean_line(result.text, mind.name)
                    if line:
                        mind.memory.add(world.game_minutes, "reflection", line, 8)
                mind.memory.reflected()
            else:
                self._speak(world, mind, job, result, out)

    def _speak(self, world: World, mind: Mind, job: PendingJob, result, out: list[Input]) -> None:
        ctx = job.context
        partner = world.entities.get(ctx["partner"])
        others = tuple(n for n in (ctx.get("partner_name"),) if n)
        conv = mind.conversation
        heard = conv.history[-1][1] if conv is not None and conv.history else ""
        # no prompt echo, and no parroting of the line just heard
        line = clean_line(result.text, mind.name, others, (prompts.system_prompt(mind.persona), heard)) \
            if result.ok else None
        if line is None:
            if job.kind == "reply":  # a person always gets an answer
                line = fallback_line(mind.persona, self.rng, ctx.get("partner_name"))
            elif job.kind in ("line", "farewell") and conv is not None:
                line = farewell_line(self.rng)  # end an NPC chat gracefully rather than oddly
                job = PendingJob(job.handle, "farewell", ctx)
            else:
                self._end(world, mind)
                return
        me = world.entities[mind.entity]
        to = partner.id if partner is not None and world.in_hearing(me, partner) else None
        out.append(Say(mind.entity, line, to, job=job.handle.job_id))
        mind.memory.add(world.game_minutes, "dialogue", f"I said {prompts.quote(line)} to {ctx.get('partner_name')}.", 3)
        if conv is not None and conv.partner == ctx["partner"]:
            conv.log.lines.append((world.game_minutes, mind.name, line))
            conv.my_turn = False
            conv.last_tick = world.tick
            if job.kind == "farewell" or (not conv.with_player and len(conv.log.lines) >= self.budget.max_lines):
                self._end(world, mind)

    def _chosen(self, world: World, mind: Mind, job: PendingJob, result) -> None:
        if not result.ok:
            return
        best = _best_normalised(result)
        action = job.context["actions"][best]
        if action[0] == "greet":
            other = self.by_entity.get(action[1])
            if other is None or not other.free_for_chat(world.tick, mind.entity) or mind.conversation:
                return
            a, b = world.entities.get(mind.entity), world.entities.get(other.entity)
            if a is None or b is None or not world.in_hearing(a, b):
                return
            log_ = ConversationLog.start([mind.name, other.name], False, world.game_minutes)
            self.transcripts.append(log_)
            mind.begin_conversation(other.entity, other.name, False, log_, True, world.tick)
            other.begin_conversation(mind.entity, mind.name, False, log_, False, world.tick)
        elif action[0] == "walk":
            mind.heading_to = action[1]

    # -- starting jobs -------------------------------------------------------
    def _decide(self, world: World, out: list[Input]) -> None:
        from agents.mind_decide import decide  # the per-NPC policy, kept apart for size
        self.people_waiting = any(m.job is not None and m.job.kind == "reply" for m in self.by_entity.values())
        for mind in self.by_entity.values():
            if mind.entity in world.entities:
                decide(self, world, mind, out)

    def submit_generation(self, world: World, mind: Mind, kind: str, turns, priority: Priority,
                          max_tokens: int, deadline_s: float | None, context: dict, out: list[Input]) -> None:
        system = prompts.system_prompt(mind.persona)
        prompt = self.llm.chat_prompt(system, turns)
        prefix = self.llm.chat_prompt(system, [], add_generation_prompt=False)
        sentences = {"reply": self.budget.reply_sentences, "reflect": None}.get(kind, self.budget.line_sentences)
        handle = self.llm.generate(prompt, max_new_tokens=max_tokens, temperature=0.7, top_p=0.9,
                                   seed=self.rng.randrange(2**31), stop=("\n", "<|im_end|>"),
                                   priority=priority, deadline_s=deadline_s,
                                   prefix=prefix if prompt.startswith(prefix) else None, sentences=sentences)
        self.tokens.spend(max_tokens)
        if kind == "reply" and not self.people_waiting:
            self.preempt_for_people(world, mind, out)
        mind.job = PendingJob(handle, kind, {**context, "priority": int(priority)})
        e = world.entities[mind.entity]
        if not e.flags & FLAG_THINKING:
            out.append(SetFlags(e.id, e.flags | FLAG_THINKING))

    def query_embedding(self, mind: Mind, query: str) -> tuple[bool, Any]:
        """(ready, embedding or None) for a reply's recall. The embedding is
        asked of the worker and the mind waits for it, QUERY_WAIT_S at most
        (then relevance is lexical): never computed on the tick."""
        request = getattr(self.embedder, "request", None)
        if request is None:
            return True, (self.embedder([query])[0] if self.embedder is not None else None)
        now = time.monotonic()
        if mind.query is None or mind.query[0].text != query:
            mind.query = (request(query), now)
        ticket, asked = mind.query
        if not ticket.done() and now - asked < QUERY_WAIT_S:
            return False, None
        mind.query = None
        return True, ticket.value

    def preempt_for_people(self, world: World, replying: Mind, out: list[Input]) -> None:
        """A person is waiting for an NPC: NPC small talk, choices and
        reflections in flight are cancelled (their results are dropped) so the
        engine's whole batch serves the reply; the conversations just resume
        afterwards, since each mind still holds whose turn it is."""
        self.people_waiting = True
        for mind in self.by_entity.values():
            job = mind.job
            if mind is replying or job is None or job.kind == "reply":
                continue
            job.handle.cancel()
            mind.job = None
            e = world.entities.get(mind.entity)
            if e is not None and e.flags & FLAG_THINKING:
                out.append(SetFlags(e.id, e.flags & ~FLAG_THINKING))

    def submit_choice(self, world: World, mind: Mind, situation: str, actions: list[tuple], labels: list[str]) -> None:
        prompt = prompts.choice_prompt(mind.persona, world.clock(), mind.activity, situation)
        handle = self.llm.score(prompt, [" " + label for label in labels], priority=Priority.PLANNING,
                                deadline_s=self.budget.line_deadline_s)
        mind.job = PendingJob(handle, "choose", {"actions": actions, "priority": int(Priority.PLANNING)})

    def follow_routine(self, world: World, mind: Mind, out: list[Input]) -> None:
        e = world.entities[mind.entity]
        if e.path or world.tick % 20:
            return
        entry = mind.persona.activity_at(game_hour(world))
        mind.activity = entry.activity
        target = mind.heading_to or entry.place
        place = world.map.places.get(target)
        if place is None or place.contains(e.x, e.y):
            if mind.heading_to and place is not None:
                mind.heading_to = None  # arrived where it decided to go
            return
        tx, ty = place.entry[0] + self.rng.randint(-2, 2), place.entry[1] + self.rng.randint(-2, 2)
        if not (world.map.walkable(tx, ty) and place.contains(tx, ty)):
            tx, ty = place.entry
        out.append(MoveTo(e.id, tx, ty))

    # -- persistence ---------------------------------------------------------
    def close(self) -> None:
        """Stop the embedding worker, if any (the language model is the caller's)."""
        close = getattr(self.embedder, "close", None)
        if close is not None:
            close()

    def unsaved_memories(self) -> list[tuple[str, Any]]:
        out = []
        for mind in self.minds.values():
            out += [(mind.name, m) for m in mind.memory.unsaved]
            mind.memory.unsaved = []
        return out


def _best_normalised(result) -> int:
    """Index of the best candidate by mean log-probability per token, so that
    longer phrasings are not penalised for their length."""
    scores = []
    for i, total in enumerate(result.logprobs):
        n = len(result.token_logprobs[i]) if getattr(result, "token_logprobs", None) else 1
        scores.append(total / max(1, n))
    return max(range(len(scores)), key=scores.__getitem__)
