"""The typed seams between Hamlet and its models.

Owns: priorities, statuses, result types, and the Protocols the rest of
Hamlet programs against:
  - `LLM`: a language model (the embedded engine under any runner, or the
    remote HTTP backend); `runs_in` says where it runs.
  - `Handle`: one submitted job, polled by a tick loop (`done()`, `result()`).
  - `Steppable`: an `LLM` its caller's loop advances (`step()`).
  - `Embedder` / `EmbeddingTicket`: sentence embeddings for memory relevance
    (agents/embeddings.py).
No torch here: the world server imports this module at start-up.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable


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


# Where a model runs: in the caller's loop ("inline", the caller calls
# step()), on a thread or a worker process of this machine, on a CUDA side
# stream polled by the caller, or behind an HTTP server ("remote").
RunsIn = Literal["inline", "thread", "process", "cuda", "remote"]


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
    # Tokens generated, where `token_ids` cannot say: a remote engine sends
    # text, and its count (the server's `usage.completion_tokens`, else one
    # per streamed piece). None: count `token_ids`. Read it through `tokens`.
    completion_tokens: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @property
    def tokens(self) -> int:
        """Tokens generated, from any engine: len(token_ids) for the embedded
        one, the server's count for a remote one."""
        return len(self.token_ids) if self.completion_tokens is None else self.completion_tokens


@dataclass
class ScoreResult:
    logprobs: list[float]              # one summed log-likelihood per candidate
    status: str = Status.OK
    latency_s: float | None = None
    error: str | None = None
    # Per-candidate token detail: log-probability and character offset (in
    # prompt + candidate) of each scored token (they sum to `logprobs`).
    # Filled by the embedded engine and by RemoteLLM (from echo mode);
    # `llm-serve`'s echo mode and best_normalised (agents/npc_talk.py) read them.
    token_logprobs: list[list[float]] = field(default_factory=list)
    token_offsets: list[list[int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    def best(self) -> int:
        return max(range(len(self.logprobs)), key=self.logprobs.__getitem__)


class OverloadedError(RuntimeError):
    """Raised only by helpers that block; `submit` itself never raises it."""


R = TypeVar("R", covariant=True)


@runtime_checkable
class Handle(Protocol[R]):
    """One submitted job. Nothing blocks: poll `done()`, then read `result()`
    (its status says whether it worked; a refused job is done at once)."""
    job_id: int

    def done(self) -> bool: ...

    def result(self) -> R: ...

    def cancel(self) -> bool: ...


@runtime_checkable
class LLM(Protocol):
    """A language model behind a queue: every call returns a `Handle` at once."""

    @property
    def runs_in(self) -> RunsIn:
        """Where it runs (a plain attribute in implementations)."""
        ...

    def generate(self, prompt: str, *, max_new_tokens: int = 32, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] = (),
                 priority: int = Priority.CONVERSATION, deadline_s: float | None = None,
                 prefix: str | None = None, sentences: int | None = None,
                 ban: Sequence[str] = ()) -> Handle[GenerationResult]:
        """prefix: a leading part of `prompt` worth caching (world text, persona);
        sentences: stop once the text holds this many complete sentences;
        ban: words and phrases the text may not contain (vLLM's `bad_words`;
        agents/inference/bans.py has the limits)."""
        ...

    def score(self, prompt: str, candidates: Sequence[str], *, priority: int = Priority.PLANNING,
              deadline_s: float | None = None, prefix: str | None = None) -> Handle[ScoreResult]:
        """Summed log-likelihood of each candidate as a continuation of `prompt`."""
        ...

    def chat_prompt(self, system: str, turns: list[tuple[str, str]],
                    add_generation_prompt: bool = True) -> str: ...

    def info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@runtime_checkable
class Steppable(LLM, Protocol):
    """An `LLM` advanced by its caller's loop (runs_in "inline" or "cuda";
    under the other runners `step()` only reports whether work remains)."""

    def step(self) -> bool:
        """Advance once; True while work remains."""
        ...


@runtime_checkable
class EmbeddingTicket(Protocol):
    """A query's embedding on its way; `value` is None until done (and stays
    None when the query is to be scored lexically)."""
    value: Any

    def done(self) -> bool: ...


@runtime_checkable
class Embedder(Protocol):
    """Sentence embeddings (unit vectors) for memory relevance."""

    def __call__(self, texts: Sequence[str]) -> list[Any]:
        """Embeddings of `texts`, computed now, in this process."""
        ...

    def request(self, text: str) -> EmbeddingTicket:
        """A query's embedding, computed elsewhere; the tick polls the ticket."""
        ...

    def close(self) -> None: ...
