"""The small interface the rest of Hamlet uses to talk to a language model.

Owns: priorities, request and result types, and the `LLM` protocol that the
embedded engine (any runner) and the remote HTTP backend both implement.
No torch here: the world server imports this module at start-up.
"""
from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .handle import Handle


class Priority(enum.IntEnum):
    """Lower value = more urgent."""
    HUMAN_REPLY = 0
    CONVERSATION = 1
    PLANNING = 2
    REFLECTION = 3


class Status:
    OK = "ok"
    DEADLINE = "deadline"
    CANCELLED = "cancelled"
    OVERLOADED = "overloaded"
    ERROR = "error"


@dataclass
class GenerationResult:
    text: str
    token_ids: list[int]
    status: str = Status.OK
    finish_reason: str | None = None   # "stop" (EOS or stop string), "length", or None if not finished
    ttft_s: float | None = None        # submit -> first token
    latency_s: float | None = None     # submit -> done
    error: str | None = None
    prompt_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


@dataclass
class ScoreResult:
    logprobs: list[float]              # one summed log-likelihood per candidate
    status: str = Status.OK
    latency_s: float | None = None
    error: str | None = None
    # Per-candidate token detail: log-probability and character offset (in
    # prompt + candidate) of each scored token. Used by `llm-serve`'s echo mode.
    token_logprobs: list[list[float]] = field(default_factory=list)
    token_offsets: list[list[int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    def best(self) -> int:
        return max(range(len(self.logprobs)), key=self.logprobs.__getitem__)


@dataclass
class GenerateRequest:
    job_id: int
    prompt: str
    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    priority: int = Priority.CONVERSATION
    deadline: float | None = None      # absolute, time.monotonic() clock (system-wide on Linux)
    prefix: str | None = None
    submitted: float = 0.0             # time.monotonic() at submit
    stream: bool = True                # send text pieces as they are produced
    sentences: int | None = None       # stop after this many complete sentences (sampling.py)


@dataclass
class ScoreRequest:
    job_id: int
    prompt: str
    candidates: list[str]
    priority: int = Priority.PLANNING
    deadline: float | None = None
    prefix: str | None = None
    submitted: float = 0.0


_job_ids = itertools.count(1)


def next_job_id() -> int:
    return next(_job_ids)


class OverloadedError(RuntimeError):
    """Raised only by helpers that block; `submit` itself never raises it."""


class LLM(Protocol):
    def generate(self, prompt: str, *, max_new_tokens: int = 32, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] = (),
                 priority: Priority = Priority.CONVERSATION, deadline_s: float | None = None,
                 prefix: str | None = None) -> Handle: ...

    def score(self, prompt: str, candidates: Sequence[str], *, priority: Priority = Priority.PLANNING,
              deadline_s: float | None = None, prefix: str | None = None) -> Handle: ...

    def chat_prompt(self, system: str, turns: list[tuple[str, str]],
                    add_generation_prompt: bool = True) -> str: ...

    def info(self) -> dict: ...

    def close(self) -> None: ...
