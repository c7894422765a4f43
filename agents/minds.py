"""The agents system of the tick: every NPC's mind, driven through the
inference engine without ever waiting for it.

Each tick (the `agents` phase): deliver last tick's events as perceptions,
turn finished inference jobs into ordinary inputs (a `Say` carries its job
id; a result whose job is no longer the mind's current one is dropped),
then carry out what each mind decides (agents/mind_decide.py returns
intents): replies to everyone waiting first (agents/replies.py), NPC
conversation lines next, choices among candidate actions (scored, never
parsed from free text), reflection last. NPCs not busy follow their
routine. An NPC preparing a line shows the thinking flag. Every generated
line passes the gate (agents/reply_gate.py) before it is said.

This module owns that tick: binding minds to entities, collecting finished
jobs, deciding and carrying out, the thinking mark, a reply's recall
embedding, statistics and persistence. Starting jobs on the language model
(a line, a choice, warming prefixes, preempting NPC work for people) is
mixed in from agents/minds_jobs.py (`MindsJobs`).
"""
from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from agents.board_talk import remember_board_news
from agents.budget import MindBudget, TokenBucket
from agents.dialogue import clean_line, reflection_text
from agents.errands import Errands
from agents.inference.api import LLM, Embedder
from agents.intents import (Answer, AnswerAsleep, Choose, EndConversation, FollowRoutine, Generate, Hold,
                            Intent, StopWalking)
from agents.job_tally import JobTally
from agents.memory import MemoryStream
from agents.mind import ConversationLog, Mind, PendingJob, seed_memories, take_unsaved_memories
from agents.mind_decide import decide
from agents.minds_jobs import MindsJobs
from agents.personas import Persona
from agents.replies import ReplyDesk
from agents.npc_talk import NpcTalk
from agents.perception import Perception
from agents.guide import GUIDE_TICKS, arrival_line
from agents.plans import step_at
from agents.routine import game_hour, routine_move
from agents.school import Lesson, load_lessons
from agents.stories import Storytellers
from server.world.inputs import Input, Say, SetFlags, Stop
from server.world.world import FLAG_THINKING, World

# How long a reply waits for its recall query's embedding from the worker
# (~10-20 ms of work): past this the worker is busy or starved, and a person
# is waiting, so relevance is lexical for that reply.
QUERY_WAIT_S = 0.3
# Conversation logs kept for figures and transcripts in a long-running server
# or region: the latest this many (a village of 25 holds ~100 a game day). A
# sim replaces the deque with a list: its report needs every one, and its
# duration bounds them.
TRANSCRIPTS_KEPT = 1000

log = logging.getLogger("hamlet.minds")

class MindsSystem(MindsJobs):
    def __init__(self, personas: list[Persona], llm: LLM, *, seed: int = 0, budget: MindBudget = MindBudget(),
                 clock: Callable[[], float] = time.monotonic, embedder: Embedder | None = None,
                 lessons: tuple[Lesson, ...] | None = None) -> None:
        self.llm = llm
        # a teacher's lessons (agents/school.py): the shipped ones when a persona teaches
        self.lessons = lessons if lessons is not None else (
            load_lessons() if any(p.role == "teacher" for p in personas) else ())
        self.budget = budget
        self.warming: list[Any] = []  # handles of warm_prefixes' requests, until done
        self.clock = clock  # every wait and budget here reads this clock, never time.* directly
        self.tokens = TokenBucket(budget.tokens_per_minute, clock)
        self.rng = random.Random(seed ^ 0xA11CE)  # never the world's RNG: replay does not run minds
        self.embedder = embedder
        self.minds = {p.name.casefold(): Mind(p, MemoryStream(p.name, embedder)) for p in personas}
        self.by_entity: dict[int, Mind] = {}
        # Events seen at the end of the last tick, delivered at the next
        # agents phase. A tick holds a handful; 512 covers a crowded square.
        self._perceived: deque[dict] = deque(maxlen=512)
        self._taken = 0  # this tick's events already perceived in its agents phase
        self.transcripts: deque[ConversationLog] | list[ConversationLog] = deque(maxlen=TRANSCRIPTS_KEPT)
        self.tally = JobTally()  # every finished job, counted for statistics (bounded: agents/job_tally.py)
        self.people_waiting = False  # some NPC is generating a reply to a person
        self.desk = ReplyDesk(self, self.rng)
        self.tales = Storytellers()  # the day's events and the evening's tale (agents/stories.py)
        self.senses = Perception(self)  # what the minds see and hear (agents/perception.py)
        self.talk = NpcTalk(self)
        self.errands = Errands()  # quests of others it could answer (agents/errands.py)
        self._seeded = False

    @property
    def gate(self):
        """The gate's verdicts so far (agents/reply_gate.GateCounts)."""
        return self.desk.gate

    # -- hooks ---------------------------------------------------------------
    def observe(self, world: World) -> None:
        """End-of-tick hook: what happened after this tick's agents phase (the
        minds' own speech, arrivals) is perceived in the next one."""
        self._perceived.extend(world.events[self._taken:])
        self._taken = 0
        remember_board_news(world, self.by_entity, self.tales.day_log)
        for q in world.board.news:
            if q.state == "open":
                self.errands.notice(world, self.by_entity, q)

    def __call__(self, world: World) -> list[Input]:
        self._bind(world)
        out: list[Input] = []
        # This tick's events so far (a person's speech, applied in the inputs
        # phase) are perceived now rather than a tick later: a reply starts 50 ms sooner.
        self._perceived.extend(world.events)
        self._taken = len(world.events)
        self.senses.perceive(world, self._perceived, out)
        self._collect(world, out)
        self._decide(world, out)
        self.tales.tick(world, self.by_entity, out)
        self._show_thinking(world, out)
        return out

    # -- binding minds to entities ------------------------------------------
    def _bind(self, world: World) -> None:
        for e in world.entities.values():
            if e.kind == "npc" and e.id not in self.by_entity:
                mind = self.minds.get(e.name.casefold())
                if mind is not None:
                    mind.entity = e.id
                    self.by_entity[e.id] = mind
                    # the day it arrives it keeps its routine (or the plan the world holds);
                    # it plans the next days when it wakes (agents/plans.py)
                    mind.plan_day = int(world.game_minutes // 1440)
        if not self._seeded:
            seed_memories(self.minds.values(), world.game_minutes)
            self._seeded = True

    def end(self, world: World, mind: Mind) -> None:
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
            if mind.entity not in world.entities:
                continue
            for speaker, job in list(mind.reply_jobs.items()):
                if job.handle.done():
                    del mind.reply_jobs[speaker]
                    result = job.handle.result()
                    self.tally.add(job.context["priority"], job.kind, result)
                    self.desk.finished(world, mind, job, result, out)
            job = mind.job
            if job is None or not job.handle.done():
                continue
            mind.job = None
            result = job.handle.result()
            self.tally.add(job.context.get("priority", 0), job.kind, result)
            if job.kind == "choose":
                self.talk.chosen(world, mind, job, result, out)
            elif job.kind == "reflect":
                if result.ok:
                    line = reflection_text(clean_line(result.text, mind.name))
                    if line:
                        mind.memory.add(world.game_minutes, "reflection", line, 8)
                mind.memory.reflected()
            else:
                self.talk.speak(world, mind, job, result, out)

    # -- deciding and carrying out -------------------------------------------
    def _decide(self, world: World, out: list[Input]) -> None:
        self.people_waiting = any(m.reply_jobs for m in self.by_entity.values())
        hold = getattr(self.embedder, "hold_memories", None)   # the worker's embedder; not a plain callable
        if hold is not None:
            hold(self.people_waiting)
        for mind in self.by_entity.values():
            if mind.entity in world.entities:
                hour = game_hour(world)
                plan = world.plans.get(mind.entity)
                mind.activity = step_at(plan, hour)[2] if plan else mind.persona.activity_at(hour).activity
                intents = decide(self, world, mind)
                if intents == [FollowRoutine()] and not self.people_waiting and mind.job is None:
                    intents = self.errands.step(world, mind, intents, out)  # a quest it could answer
                for intent in intents:
                    self._carry_out(world, mind, intent, out)

    def _carry_out(self, world: World, mind: Mind, intent: Intent, out: list[Input]) -> None:
        match intent:
            case Answer(person, q_emb):
                self.desk.answer(world, mind, person, q_emb, out)
            case AnswerAsleep(person):
                self.desk.answer_asleep(world, mind, person, out)
            case Hold(person):
                self.desk.hold(world, mind, person, out)
            case StopWalking():
                out.append(Stop(mind.entity))
            case Generate(kind, turns, priority, max_tokens, deadline_s, context):
                handle = self.submit(mind, kind, turns, priority, max_tokens, deadline_s)
                mind.job = PendingJob(handle, kind, {**context, "priority": int(priority)})
            case Choose(situation, actions, labels):
                self.submit_choice(world, mind, situation, actions, labels)
            case EndConversation():
                self.end(world, mind)
            case FollowRoutine():
                move = routine_move(world, mind, self.rng)
                if move is not None:
                    out.append(move)
                if mind.guiding is not None:
                    self._guided(world, mind, out)

    def _guided(self, world: World, mind: Mind, out: list[Input]) -> None:
        """A guided walk arrived (routine_move cleared `heading_to`): say so;
        one that takes too long is given up quietly."""
        person, name, place, began = mind.guiding
        if mind.heading_to is None:
            mind.guiding = None
            me, them = world.entities[mind.entity], world.find_entity(person)
            line = arrival_line(name, place)
            out.append(Say(mind.entity, line, them.id if them is not None and world.in_hearing(me, them) else None))
            mind.recent_lines.append(line)
            mind.memory.add(world.game_minutes, "action", f"I took {name} to the {place}.", 4)
        elif world.tick - began > GUIDE_TICKS:
            mind.guiding = None
            mind.heading_to = None

    def _show_thinking(self, world: World, out: list[Input]) -> None:
        """The thinking mark: on while someone waits for the NPC or a line of
        its own is being generated."""
        for mind in self.by_entity.values():
            e = world.entities.get(mind.entity)
            if e is None:
                continue
            thinking = mind.serving_people or (mind.job is not None and mind.job.kind != "choose")
            if bool(e.flags & FLAG_THINKING) != thinking:
                out.append(SetFlags(e.id, e.flags ^ FLAG_THINKING))

    def query_embedding(self, mind: Mind, query: str) -> tuple[bool, Any]:
        """(ready, embedding or None) for a reply's recall. The embedding is
        asked of the worker and the mind waits for it, QUERY_WAIT_S at most
        (then relevance is lexical): never computed on the tick."""
        request = getattr(self.embedder, "request", None)
        if request is None:
            return True, (self.embedder([query])[0] if self.embedder is not None else None)
        now = self.clock()
        if query not in mind.queries:
            while len(mind.queries) >= 2 * len(mind.waiting) + 2:  # tickets of people no longer waiting
                mind.queries.pop(next(iter(mind.queries)))
            mind.queries[query] = (request(query), now)
        ticket, asked = mind.queries[query]
        if not ticket.done() and now - asked < QUERY_WAIT_S:
            return False, None
        return True, ticket.value

    # -- statistics and persistence -------------------------------------------
    def stats(self) -> dict[str, dict[str, int]]:
        """The gate's verdicts and what became of each person's turn."""
        return {"gate": self.desk.gate.as_dict(), "replies": dict(self.desk.outcomes),
                "stories": {"told": self.tales.told, "events_of_the_day": len(self.tales.day_log.events)},
                "plans": dict(self.talk.plans)}

    def close(self) -> None:
        """Stop the embedding worker, if any (the language model is the caller's)."""
        close = getattr(self.embedder, "close", None)
        if close is not None:
            close()

    def unsaved_memories(self) -> list[tuple[str, Any]]:
        return take_unsaved_memories(self.minds.values())
