"""The jobs the minds start on the language model, mixed into `MindsSystem`
(minds.py) as `MindsJobs`: a line's generation (`submit`, its prompt's
cached prefix and its sentence limit), a choice among candidate actions
(`submit_choice`, scored), the persona prefixes cached ahead of small talk
(`warm_prefixes`, `warm`), and NPC work cancelled so that replies to people
get the whole batch (`preempt_for_people`).
"""
from __future__ import annotations

import random
from typing import Any

from agents import prompts
from agents.budget import MindBudget, TokenBucket
from agents.inference.api import LLM, Priority
from agents.mind import Mind, PendingJob
from server.world.inputs import Input
from server.world.world import World


class MindsJobs:
    # What the jobs use of the minds' system (set up by MindsSystem.__init__).
    llm: LLM
    budget: MindBudget
    rng: random.Random
    tokens: TokenBucket
    minds: dict[str, Mind]
    by_entity: dict[int, Mind]
    warming: list[Any]
    people_waiting: bool

    def submit(self, mind: Mind, kind: str, turns, priority: Priority, max_tokens: int,
               deadline_s: float | None, temperature: float = 0.7, shared: str | None = None,
               ban: tuple[str, ...] = ()):
        """Start a generation for `mind`; returns its handle. `shared`: text of
        the turns that other requests share (a crowd's context): the cached
        prefix reaches to its end. `ban`: phrases the line may not contain."""
        system = prompts.system_prompt(mind.persona)
        prompt = self.llm.chat_prompt(system, turns)
        prefix = self.llm.chat_prompt(system, [], add_generation_prompt=False)
        at = prompt.find(shared, len(prefix)) if shared else -1
        if at >= 0:
            prefix = prompt[:at + len(shared)]
        sentences = {"reply": self.budget.reply_sentences, "reflect": None}.get(kind, self.budget.line_sentences)
        extra = {"ban": ban} if ban else {}
        handle = self.llm.generate(prompt, max_new_tokens=max_tokens, temperature=temperature, top_p=0.9,
                                   seed=self.rng.randrange(2**31), stop=("\n", "<|im_end|>"),
                                   priority=priority, deadline_s=deadline_s,
                                   prefix=prefix if prompt.startswith(prefix) else None, sentences=sentences,
                                   **extra)
        self.tokens.spend(max_tokens)
        return handle

    def warm_prefixes(self) -> None:
        """Ask the engine, ahead of NPC small talk, to cache each NPC's system
        prompt (a one-token generation, its result dropped): a crowd's shared
        context then extends the persona's cached keys and values (~90 tokens
        to prefill) instead of starting from nothing (~270: measured ~1.1 s
        against ~0.4 s a crowd and NPC on the 2-core CPU)."""
        for mind in self.minds.values():
            system = prompts.system_prompt(mind.persona)
            prefix = self.llm.chat_prompt(system, [], add_generation_prompt=False)
            self.warming.append(self.llm.generate(self.llm.chat_prompt(system, [("user", "Hello.")]), max_new_tokens=1,
                              priority=Priority.CONVERSATION, prefix=prefix))

    @property
    def warm(self) -> bool:
        """The prefixes asked for by `warm_prefixes` are cached (or failed)."""
        self.warming = [h for h in self.warming if not h.done()]
        return not self.warming

    def preempt_for_people(self, world: World, replying: Mind, out: list[Input]) -> None:
        """A person is waiting for an NPC: NPC small talk, choices and
        reflections in flight are cancelled (their results are dropped) so the
        engine's whole batch serves the replies; the conversations just resume
        afterwards, since each mind still holds whose turn it is."""
        self.people_waiting = True
        for mind in self.by_entity.values():
            if mind is not replying and mind.job is not None:
                mind.job.handle.cancel()
                mind.job = None

    def submit_choice(self, world: World, mind: Mind, situation: str, actions: list[tuple], labels: list[str]) -> None:
        prompt = prompts.choice_prompt(mind.persona, world.clock(), mind.activity, situation)
        handle = self.llm.score(prompt, [" " + label for label in labels], priority=Priority.PLANNING,
                                deadline_s=self.budget.line_deadline_s)
        mind.job = PendingJob(handle, "choose", {"actions": actions, "labels": labels,
                                                 "priority": int(Priority.PLANNING)})
