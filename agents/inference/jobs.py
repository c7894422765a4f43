"""What travels between an `LLM` client and the engine, wherever it runs.

Owns: the requests (`GenerateRequest`, `ScoreRequest`), job ids, the
engine's events (`Piece`: streamed text; `Done`: a job's result), the
`Deliver` callback type that carries them back, and `failed()`, the result
of a job refused or stopped before it produced anything. All of it pickles
(the worker process sends events over a queue). No torch.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, Union, overload

from .api import GenerationResult, Priority, ScoreResult


@dataclass
class GenerateRequest:
    kind: ClassVar[str] = "generate"
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
    ban: tuple[str, ...] = ()          # phrases the text may not contain (bans.py)


@dataclass
class ScoreRequest:
    kind: ClassVar[str] = "score"
    job_id: int
    prompt: str
    candidates: list[str]
    priority: int = Priority.PLANNING
    deadline: float | None = None
    prefix: str | None = None
    submitted: float = 0.0


Request = Union[GenerateRequest, ScoreRequest]


@dataclass(frozen=True)
class Piece:
    """Text a generation produced since its last piece."""
    job_id: int
    text: str


@dataclass(frozen=True)
class Done:
    """A job's final result (any status)."""
    job_id: int
    result: GenerationResult | ScoreResult


Event = Union[Piece, Done]
# deliver(events, stats): how a runner hands a step's events (and the
# engine's stats, when it has them) to the client, from any thread.
Deliver = Callable[[list[Event], Union[dict, None]], None]

_job_ids = itertools.count(1)


def next_job_id() -> int:
    return next(_job_ids)


@overload
def failed(kind: Literal["generate"], status: str, error: str | None, submitted: float | None = None,
           text: str = "") -> GenerationResult: ...


@overload
def failed(kind: Literal["score"], status: str, error: str | None, submitted: float | None = None,
           text: str = "") -> ScoreResult: ...


@overload
def failed(kind: str, status: str, error: str | None, submitted: float | None = None,
           text: str = "") -> GenerationResult | ScoreResult: ...


def failed(kind: str, status: str, error: str | None, submitted: float | None = None,
           text: str = "") -> GenerationResult | ScoreResult:
    """The result of a job that ended without output (refused, expired,
    cancelled, broken); latency counts from `submitted` if given."""
    latency = time.monotonic() - submitted if submitted else 0.0
    if kind == "score":
        return ScoreResult([], status=status, latency_s=latency, error=error)
    return GenerationResult(text, [], status=status, finish_reason=None, latency_s=latency, error=error)
