"""Reading an OpenAI-compatible server's answers, for `RemoteLLM`.

Owns: one event of a completions or chat stream (`stream_event`: its text
piece, finish reason and `usage` token count; `stream_error`) and an echo-mode answer as a
`ScoreResult` (`score_result`: per candidate, the log-probabilities of the
tokens at or after the end of the prompt, their sum and their offsets, as
the embedded engine reports them). An answer missing a field or of the
wrong shape raises `BadAnswer` saying what is wrong; the job fails with it
(not retried: the same server would answer the same).
"""
from __future__ import annotations

import json
from typing import Any

from .api import ScoreResult, Status


class BadAnswer(ValueError):
    """The server's answer is not the shape the request asks for."""


def stream_event(event: Any, max_tokens: Any = None) -> tuple[str | None, str | None, int | None]:
    """(text piece, finish_reason, usage.completion_tokens) of one SSE event;
    each None where the event has none. `max_tokens`: the request's bound."""
    if not isinstance(event, dict):
        raise BadAnswer("a stream event is not a JSON object")
    choices = event.get("choices") or []      # the final usage event has none
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise BadAnswer("a stream event's choices is not a list of objects")
    choice = choices[0] if choices else {}
    piece = choice.get("text")
    if piece is None:
        delta = choice.get("delta") or {}
        piece = delta.get("content") if isinstance(delta, dict) else None
    if piece is not None and not isinstance(piece, str):
        raise BadAnswer(f"a stream event's text is {type(piece).__name__}, not a string")
    finish = choice.get("finish_reason")
    usage = event.get("usage")                # null in vLLM's other events
    return piece, finish if isinstance(finish, str) else None, None if usage is None else _count(usage, max_tokens)


def stream_error(event: dict) -> tuple[str, str] | None:
    """(status, message) of an error event, None for any other event."""
    if "error" not in event:
        return None
    err = event["error"]
    kind = err.get("type") if isinstance(err, dict) else None
    return (kind if kind in (Status.DEADLINE, Status.OVERLOADED, Status.CANCELLED) else Status.ERROR), str(err)


def _count(usage: Any, max_tokens: Any) -> int:
    n = usage.get("completion_tokens") if isinstance(usage, dict) else None
    top = max_tokens if isinstance(max_tokens, int) and max_tokens >= 0 else None
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or (top is not None and n > top):
        raise BadAnswer(f"usage.completion_tokens is {n!r}, not a count of 0..{top if top is not None else 'n'}")
    return n


def score_result(raw: bytes, candidates: int, prompt_len: int, latency_s: float) -> ScoreResult:
    """The scores of `candidates` continuations of a prompt of `prompt_len`
    characters, from an echo-mode answer (one choice per prompt + candidate)."""
    try:
        reply = json.loads(raw)
    except ValueError:
        raise BadAnswer("the score answer is not JSON") from None
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or len(choices) != candidates:
        got = len(choices) if isinstance(choices, list) else "no"
        raise BadAnswer(f"the score answer has {got} choices for {candidates} candidates")
    per: dict[int, list[tuple[float, int]]] = {}
    for choice in choices:
        index = choice.get("index") if isinstance(choice, dict) else None
        if not isinstance(index, int) or not 0 <= index < candidates or index in per:
            raise BadAnswer(f"the score answer's choice indices are not 0..{candidates - 1} once each")
        per[index] = _scored(choice.get("logprobs"), index, prompt_len)
    lps = [[v for v, _ in per[i]] for i in range(candidates)]
    return ScoreResult([sum(v) for v in lps], Status.OK, latency_s, token_logprobs=lps,
                       token_offsets=[[off for _, off in per[i]] for i in range(candidates)])


def _scored(lp: Any, index: int, prompt_len: int) -> list[tuple[float, int]]:
    """(log-probability, offset) of choice `index`'s tokens past the prompt."""
    values = lp.get("token_logprobs") if isinstance(lp, dict) else None
    offsets = lp.get("text_offset") if isinstance(lp, dict) else None
    if not isinstance(values, list) or not isinstance(offsets, list) or len(values) != len(offsets):
        raise BadAnswer(f"choice {index}: logprobs.token_logprobs and logprobs.text_offset "
                        "are not two lists of one length")
    out = []
    for v, off in zip(values, offsets):
        if not isinstance(off, int) or not (v is None or isinstance(v, (int, float))):
            raise BadAnswer(f"choice {index}: a token's offset or log-probability is not a number")
        if v is not None and off >= prompt_len:
            out.append((float(v), off))
    return out
